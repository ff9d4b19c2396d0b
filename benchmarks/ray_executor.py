"""Throughput of weight-sharing finetuning under the local executor and on a local Ray cluster of 1
and 2 workers, in one run, and the Ray executor's cost per task.

    python benchmarks/ray_executor.py --data-root /tmp/data                   # the toy config, 12 archs
    python benchmarks/ray_executor.py --data-root /tmp/data --archs 24 --steps 40 --shards 4

One supernet of ``configs/ws-toy-cpu.toml`` (seed 0) is trained once, locally; then the same
finetuning tasks (``--shards`` per seed, :func:`harness.experiments.weight_sharing.finetune_task`)
run from a copy of that run folder under each executor, timed from submission to the last log
(a Ray cluster's start is timed apart; its workers' start, importing torch, is in the figure, as
in a real run). The logs of every executor are checked to equal the local one's bit for bit.

The local cluster's workers run at this process's priority, as :class:`RayExecutor` starts them (Ray's default
of 15 makes them yield to any other load, which on a shared machine swamped the figures).

Cost per task: an empty task's round trip (one ``Executor.run`` of one task: the progress actor,
the task, the wait) and the time per task of 50 empty tasks in one ``run``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from harness.experiments import weight_sharing as ws
from harness.experiments.executors import Executor, LocalExecutor, RayExecutor, Task, TaskResources
from harness.supernet.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _noop(report: object) -> None:
    """An empty task."""


def _finetune(executor: Executor, cfg, archs, out: Path) -> float:
    """Seconds to finetune every arch of seed 0 in ``out`` (none logged yet) with ``executor``."""
    shards = cfg.executor.shards
    tasks = [Task(ws.finetune_task, (cfg, 0, archs, out, (i, shards)), label=f"ws finetune seed 0 shard {i}/{shards}")
             for i in range(shards)]
    started = time.perf_counter()
    executor.run(tasks, ws.task_resources(cfg))
    return time.perf_counter() - started


def _logs(out: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(p).drop(columns="seconds") for p in sorted(ws.log_dir(out, 0).glob("arch-*.parquet"))]
    return pd.concat(frames, ignore_index=True)


def _task_costs(executor: Executor) -> tuple[float, float]:
    """(one empty task's round trip, seconds per task of 50 empty tasks in one run), best of 3."""
    resources = TaskResources(num_cpus=1)
    executor.run([Task(_noop)], resources)  # a worker started
    single, batch = [], []
    for _ in range(3):
        started = time.perf_counter()
        executor.run([Task(_noop)], resources)
        single.append(time.perf_counter() - started)
        started = time.perf_counter()
        executor.run([Task(_noop)] * 50, resources)
        batch.append((time.perf_counter() - started) / 50)
    return min(single), min(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--archs", type=int, default=12, help="archs finetuned (the toy config's 12)")
    parser.add_argument("--steps", type=int, default=20, help="finetuning steps per arch (the toy config's 20)")
    parser.add_argument("--shards", type=int, default=4, help="finetuning tasks")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = parser.parse_args()

    cfg = load_config(REPO / "configs" / "ws-toy-cpu.toml").with_overrides(
        data={"root": str(args.data_root)}, supernet={"seeds": [0]},
        finetune={"n_archs": args.archs, "steps": args.steps, "eval_every": args.steps}, executor={"shards": args.shards},
        report={"sum_step": min(10, args.steps)},
    )
    work = Path(args.out or tempfile.mkdtemp(prefix="ray-bench-"))
    base = work / "base"
    archs = ws.prepare(cfg, base)
    started = time.perf_counter()
    ws.train(cfg, 0, base, progress=False)
    print(f"toy supernet (C={cfg.network.channels}, N={cfg.network.cells_per_stage}, {cfg.data.limit_train} images, "
          f"{cfg.supernet.epochs} epochs) trained in {time.perf_counter() - started:.1f} s; finetuning {args.archs} archs x "
          f"{args.steps} steps in {args.shards} tasks; {os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    rows, reference = [], None
    # the local executor first and last: how far this machine's speed drifted during the run
    for label, workers in (("local executor", None), ("Ray, 1 worker", 1), ("Ray, 2 workers", 2), ("local executor, again", None)):
        out = work / label.replace(" ", "-").replace(",", "")
        shutil.copytree(base, out)
        started = time.perf_counter()
        with (LocalExecutor() if workers is None else RayExecutor(local_cpus=workers)) as executor:
            start = time.perf_counter() - started
            seconds = _finetune(executor, cfg, archs, out)
            costs = _task_costs(executor) if workers is not None else (float("nan"), float("nan"))
        logs = _logs(out)
        if reference is None:
            reference = logs
        pd.testing.assert_frame_equal(logs, reference, check_exact=True)  # bit for bit, whatever the executor
        rows.append({"executor": label, "cluster start s": start, "finetuning s": seconds,
                     "archs/s": args.archs / seconds, "empty task round trip ms": 1e3 * costs[0],
                     "ms per task, 50 in one run": 1e3 * costs[1]})
    table = pd.DataFrame(rows).set_index("executor")
    table["speed-up"] = table["archs/s"] / table["archs/s"].iloc[0]
    print(table.round(3).to_string())
    print("logs of every executor equal the local executor's bit for bit")
    if args.out is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
