"""``harness compare``: zero-cost proxies, params and FLOPs vs real accuracy, from embedded data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from harness import tables
from harness.experiments.compare import compare_zero_cost
from harness.zerocost import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="rank zero-cost proxies, params and FLOPs against real accuracy (embedded data, no download)",
    )
    parser.add_argument("--benchmark", default="nb201", choices=BENCHMARKS, help="zero-cost table (default nb201)")
    parser.add_argument("--dataset", action="append", default=None, help="dataset (repeatable; default: all)")
    parser.add_argument("--k", type=int, default=10, help="k of top-k and precision@k (default 10)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws for the Spearman CI")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default ./results)")
    parser.add_argument("--no-plot", action="store_true", help="skip the figure")
    parser.set_defaults(func=run)


def _dataset_table(frame: pd.DataFrame, k: int, style: tables.Style) -> str:
    shown = frame.set_index("estimator")[["spearman", "kendall", "top_k", "precision_at_k"]]
    shown.columns = ["Spearman", "Kendall", f"top-{k} acc", f"precision@{k}"]
    return tables.render(shown, style=style, digits=3, row_label="estimator")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    frame = compare_zero_cost(args.benchmark, args.dataset, k=args.k, n_boot=args.bootstrap, seed=args.seed)
    out = args.out / f"compare-{args.benchmark}"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "compare.parquet", index=False)
    frame.to_csv(out / "compare.csv", index=False)
    markdown, latex = [], []
    for dataset, part in frame.groupby("dataset", sort=False):
        n, dropped = int(part["n_archs"].iloc[0]), int(part["n_dropped"].iloc[0])
        head = f"{args.benchmark} {dataset}: {n} archs vs final validation accuracy"
        head += f" ({dropped} dropped: missing a value)" if dropped else ""
        best = f"best possible top-{args.k} acc {part['best_top_k'].iloc[0]:.2f}"
        markdown.append(f"### {head}; {best}\n\n" + _dataset_table(part, args.k, "markdown"))
        latex.append(_dataset_table(part, args.k, "latex"))
    text = "\n\n".join(markdown)
    (out / "compare.md").write_text(text + "\n")
    (out / "compare.tex").write_text("\n\n".join(latex) + "\n")
    print(text)
    if not args.no_plot:
        from harness import plots

        fig = plots.compare_bars(frame, title=f"{args.benchmark}: Spearman rho with 95% bootstrap CI")
        paths = plots.save(fig, out / "compare")
        print(f"\nfigure: {paths[0]} (+ .pdf)")
    print(f"results: {out}/compare.{{parquet,csv,md,tex}}  ({time.perf_counter() - start:.1f} s)")
    return 0
