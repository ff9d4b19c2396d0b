"""``harness table RUN``: Markdown + LaTeX "mean (std)" table of a finished run, best in bold.

An estimator that ranks exactly as the ground truth (NB301's ValAcc at epoch 98) is marked with a
dagger and never bolded, whichever metric is tabled (:func:`harness.tables.ranks_as_truth`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import tables
from harness.experiments.correlation import load_results
from harness.ranking import METRICS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("table", help="table of a correlate run: mean (std) at chosen epochs")
    parser.add_argument("run", type=Path, help="run folder, e.g. results/fig4.4a-cifar10-hp200")
    parser.add_argument("--metric", default="spearman", choices=METRICS,
                        help="the run's column to table (default spearman; the run must have recorded it)")
    parser.add_argument("--epochs", type=_epochs, default=None, help="comma-separated epochs (default: 5/10/25/50/100 %% of training)")
    parser.add_argument("--digits", type=int, default=3, help="decimal places (default 3)")
    parser.set_defaults(func=run)


def _epochs(text: str) -> list[int]:
    """``--epochs``: comma-separated integers, e.g. ``1,10,200``."""
    try:
        return [int(e) for e in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated integer epochs such as 1,10,200, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    results = load_results(args.run)
    info = args.run / "run.json"
    lower = bool(json.loads(info.read_text()).get("truth_minimize", False)) if info.is_file() else False
    options = {"epochs": args.epochs, "digits": args.digits, "truth_lower_is_better": lower}
    markdown = tables.correlation_table(results, args.metric, style="markdown", **options)
    latex = tables.correlation_table(results, args.metric, style="latex", **options)
    (args.run / f"table-{args.metric}.md").write_text(markdown + "\n")
    (args.run / f"table-{args.metric}.tex").write_text(latex + "\n")
    print(markdown)
    print(f"\nwrote {args.run}/table-{args.metric}.md and .tex")
    return 0
