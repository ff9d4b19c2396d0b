"""``harness plot RUN``: correlation-vs-epoch figure (PNG + PDF) of a finished run."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from harness.experiments.correlation import load_results
from harness.ranking import METRICS
from harness.tomlfile import read_toml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="plot a correlate run: mean +- std per estimator vs epoch")
    parser.add_argument("run", type=Path, help="run folder, e.g. results/fig4.4a-cifar10-hp200")
    parser.add_argument("--metric", default="spearman", choices=METRICS,
                        help="the run's column to plot (default spearman; the run must have recorded it)")
    parser.add_argument("--fraction", action="store_true", help="x = fraction of training, log scale (thesis style)")
    parser.add_argument("--out", type=Path, default=None, help="file stem (default RUN/<metric>[-fraction])")
    parser.set_defaults(func=run)


def _title(run: Path) -> str:
    """The run id, and the config's description when it has one (first sentence, wrapped)."""
    config = run / "config.toml"
    description = str(read_toml(config).get("description", "")) if config.is_file() else ""
    first = description.split(". ")[0].strip()
    return "\n".join(textwrap.wrap(f"{run.name}: {first}" if first else run.name, 70))


def run(args: argparse.Namespace) -> int:
    from harness import plots

    results = load_results(args.run)
    fig = plots.correlation_vs_epoch(results, args.metric, fraction=args.fraction, title=_title(args.run))
    stem = args.out or args.run / (args.metric + ("-fraction" if args.fraction else ""))
    paths = plots.save(fig, stem)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0
