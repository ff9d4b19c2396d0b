"""``harness correlate --config FILE [--config FILE ...]``: the correlation-vs-epoch experiment from
TOML configs, each one a task of an executor (this process by default, or a Ray cluster with
``--executor ray``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from harness import tables
from harness.errors import HarnessError
from harness.experiments.config import CorrelationConfig, load_config
from harness.experiments.correlation import RunResult, run_correlation, run_id_for
from harness.experiments.executors import EXECUTORS, Progress, Report, Task, TaskResources, make_executor


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("correlate", help="rank correlation of estimators vs epoch (TOML configs)")
    parser.add_argument("--config", type=Path, required=True, action="append",
                        help="config file, e.g. configs/fig4.4a-cifar10-hp200.toml; repeat it for a sweep (one task each)")
    parser.add_argument("--root", type=Path, default=None, help="converted store (overrides the configs' root)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default ./results)")
    parser.add_argument("--run-id", default=None, help="run folder name (default: the config's name; one config only)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where the configs run: this process, one "
                        "after the other (default), or a Ray cluster, one task each")
    parser.add_argument("--ray-address", default=None,
                        help="the Ray cluster to join (default: RAY_ADDRESS, else a local cluster is started)")
    parser.add_argument("--task-cpus", type=int, default=None, help="CPUs (threads) per config; default: this machine's "
                        "cores up to 8 locally, 1 per task on Ray")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def correlate_task(report: Report, config: CorrelationConfig, out: Path, root: Path | None, run_id: str | None,
                   workers: int | None, progress: bool) -> RunResult:
    """Task: one config's run (:func:`run_correlation`) written under ``out``; reports ``("config", 1)``."""
    result = run_correlation(config, out, root=root, run_id=run_id, progress=progress, workers=workers)
    report("config", 1)
    return result


def run(args: argparse.Namespace) -> int:
    configs = [load_config(path) for path in args.config]
    if args.run_id is not None and len(configs) > 1:
        raise HarnessError(f"--run-id names one run folder, but {len(configs)} configs were given; "
                           "with several each run is named by its config's name")
    if args.task_cpus is not None and args.task_cpus < 1:
        raise HarnessError(f"--task-cpus must be an integer >= 1, got {args.task_cpus}")
    folders: dict[str, Path] = {}
    for path, config in zip(args.config, configs):
        name = args.run_id or run_id_for(config)
        if name in folders:
            raise HarnessError(f"{folders[name]} and {path} would both write {args.out / name}; give the configs distinct names")
        folders[name] = path
    progress = not args.no_progress
    with make_executor(args.executor, args.ray_address) as executor:
        workers = args.task_cpus if args.task_cpus is not None or not executor.remote else 1
        tasks = [Task(correlate_task, (config, args.out, args.root, args.run_id, workers, progress and not executor.remote),
                      label=f"correlate {name}") for name, config in zip(folders, configs)]
        bar = Progress(f"correlate ({executor.name})", {"config": len(tasks)}, enabled=progress and executor.remote)
        try:
            results = executor.run(tasks, TaskResources(num_cpus=float(workers or 1)), bar)
        finally:
            bar.close()
    for config, result in zip(configs, results):
        _print_summary(config, result)
    return 0


def _print_summary(config: CorrelationConfig, result: RunResult) -> None:
    final = result.results[result.results["epoch"] == result.results["epoch"].max()]
    metric = "spearman" if "spearman" in final else final.columns[-1]
    mean, std = tables.mean_std(final, "estimator", metric)
    summary = pd.DataFrame({"mean": mean, "std": std})
    print(f"{config.name}: {len(result.results)} rows in {result.info['seconds']:.2f} s -> {result.out_dir}")
    if result.info.get("dropped_no_truth_or_curve"):
        print(f"  pool: {result.info['pool_size']} archs with a truth and a curve; "
              f"{result.info['dropped_no_truth_or_curve']} dropped for lacking one")
    for label, reason in result.info["skipped_estimators"].items():
        print(f"  skipped {label}: {reason}")
    print(f"{metric} at the last epoch (mean, std with ddof=0 over {config.sampling.repetitions} repetitions):")
    print(summary.round(3).to_string())
