"""``harness correlate --config FILE``: the correlation-vs-epoch experiment from a TOML config."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from harness import tables
from harness.experiments.config import load_config
from harness.experiments.correlation import run_correlation


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("correlate", help="rank correlation of estimators vs epoch (TOML config)")
    parser.add_argument("--config", type=Path, required=True, help="config file, e.g. configs/fig4.4a-cifar10-hp200.toml")
    parser.add_argument("--root", type=Path, default=None, help="converted store (overrides the config's root)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default ./results)")
    parser.add_argument("--run-id", default=None, help="run folder name (default: the config's name)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    result = run_correlation(config, args.out, root=args.root, run_id=args.run_id, progress=not args.no_progress)
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
    return 0
