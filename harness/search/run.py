"""A search run folder: the config (``config.json``) and, per seed, the checkpoint and the per-epoch
log of :func:`harness.search.loop.search` (``search-seed{seed}.pt``, ``search-seed{seed}.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.atomic import write_atomic
from harness.errors import HarnessError
from harness.experiments.executors import Executor, LocalExecutor, Progress, Report, Task, TaskResources
from harness.search.config import TRAINING_ONLY, SearchConfig, changed_search_settings
from harness.search.layout import log_path
from harness.search.spaces import get_search_space


def run_search(cfg: SearchConfig, out: Path, seeds: Sequence[int] | None = None, executor: Executor | None = None,
               progress: bool = True) -> list[Path]:
    """Search (or resume) every seed of ``seeds`` (default ``search.seeds``) into ``out``, one task
    per seed (:func:`search_task`) on ``executor`` (default: this process, one seed after the
    other; a Ray executor runs them side by side); returns their log paths. Each seed's streams
    depend on the seed and epoch only, so where and in which order the tasks run changes nothing.
    A folder holding another config's search is refused, and so is a ``search.truth_root`` that does not open."""
    executor = LocalExecutor() if executor is None else executor
    if cfg.search.truth_root is not None:  # a store that does not open is refused before the folder records it
        get_search_space(cfg.space).truth_benchmark(cfg.search.truth_root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recorded = out / "config.json"
    if recorded.is_file():
        changes = changed_search_settings(json.loads(recorded.read_text()), cfg)
        if changes:
            raise HarnessError(f"{out} holds a search under other settings ({'; '.join(changes)}); use a new folder")
    write_atomic(recorded, lambda tmp: tmp.write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n"))
    seeds = list(cfg.search.seeds if seeds is None else seeds)
    tasks = [Task(search_task, (cfg, seed, out), label=f"search {cfg.search.algorithm} seed {seed}") for seed in seeds]
    done = sum(len(json.loads(log_path(out, seed).read_text())) for seed in seeds if log_path(out, seed).is_file())
    bar = Progress(f"search {cfg.name} ({executor.name})", {"epoch": len(seeds) * cfg.search.epochs, "search": len(seeds)},
                   done={"epoch": done}, enabled=progress)
    try:
        return executor.run(tasks, task_resources(cfg), bar)
    finally:
        bar.close()


def task_resources(cfg: SearchConfig) -> TaskResources:
    """What a seed's task reserves on a cluster: ``device.threads`` CPUs; one GPU on CUDA, none on
    the CPU, and for ``auto`` one where the cluster has GPUs."""
    device = cfg.device.device
    gpus = None if device == "auto" else 0.0 if device == "cpu" else 1.0
    return TaskResources(num_cpus=float(cfg.device.threads), num_gpus=gpus)


def search_task(report: Report, cfg: SearchConfig, seed: int, out: Path) -> Path:
    """Task: search (or resume) ``seed`` where the task runs (device, images and the space's embedded truth
    benchmark resolved there); reports ``("search", 1)`` and returns the seed's log path."""
    from harness.search.loop import search
    from harness.supernet.train import cpu_threads, load_images, resolve_device

    ws = cfg.ws_config()
    train, valid = load_images(ws, resolve_device(ws))
    with cpu_threads(ws):
        search(cfg, seed, train, None if cfg.search.algorithm in TRAINING_ONLY else valid, out, report=report)
    report("search", 1)
    return log_path(out, seed)
