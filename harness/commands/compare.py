"""``harness compare``: zero-cost proxies, params and FLOPs vs real accuracy, from embedded data.

Writes ``compare-<benchmark>/`` under ``--out``: ``compare.parquet``/``compare.csv`` (every figure,
rows by Spearman rho within each dataset), ``compare.md`` (what is printed) and ``compare.tex`` (one
table per dataset), ``dropped.csv`` (the archs left out for a missing value, and which estimator lacks
it) and the figure ``compare.png``/``.pdf``. Without ``--out``, nb201 goes to ``results/`` (the
committed ``results/compare-nb201/``) and nb101/nb301 to ``runs/``, which git ignores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from harness import tables
from harness.experiments.compare import REFERENCE_SOURCE, Comparison, compare_zero_cost
from harness.zerocost import BENCHMARKS, DATASETS

# Where results go without --out: only NB201's comparison is committed (the README quotes it); the
# others go to runs/, which .gitignore ignores (its line "/runs/").
COMMITTED_OUT, IGNORED_OUT = Path("results"), Path("runs")
DEFAULT_OUT = {"nb201": COMMITTED_OUT, "nb101": IGNORED_OUT, "nb301": IGNORED_OUT}
ALL_DATASETS = tuple(dict.fromkeys(d for names in DATASETS.values() for d in names))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="rank zero-cost proxies, params and FLOPs against real accuracy (embedded data, no download)",
    )
    parser.add_argument("--benchmark", default="nb201", choices=BENCHMARKS, help="zero-cost table (default nb201)")
    per_benchmark = "; ".join(f"{b}: {', '.join(DATASETS[b])}" for b in BENCHMARKS)
    parser.add_argument("--dataset", action="append", default=None, choices=ALL_DATASETS,
                        help=f"dataset (repeatable; default: all of the benchmark's; {per_benchmark})")
    parser.add_argument("--k", type=int, default=10, help="k of top-k and precision@k (default 10)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws for the Spearman CI")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    defaults = ", ".join(f"{folder}/ for {b}" for b, folder in DEFAULT_OUT.items())
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder that receives compare-<benchmark>/ (default: {defaults}; "
                             "results/compare-nb201/ is committed, runs/ is ignored by git)")
    parser.add_argument("--no-plot", action="store_true", help="skip the figure")
    parser.set_defaults(func=run)


def _dataset_table(scores: pd.DataFrame, k: int, style: tables.Style, reference_note: str) -> str:
    """One dataset's rows; with a published reference, its rho and ours minus it beside our Spearman."""
    columns = {"spearman": "Spearman", "nbsz_spearman": "NBSZ", "spearman_minus_nbsz": "ours - NBSZ",
               "kendall": "Kendall", "top_k": f"top-{k} acc", "precision_at_k": f"precision@{k}"}
    shown = scores.set_index("estimator")[[c for c in columns if c in scores]].rename(columns=columns)
    reference = [c for c in ("NBSZ", "ours - NBSZ") if c in shown]
    return tables.render(shown, style=style, digits=3, row_label="estimator", column_digits={"NBSZ": 2} if reference else None,
                         no_best=reference, note=reference_note)


def _reference_note(comparison: Comparison, dataset: str, benchmark: str) -> str:
    """Where the reference column comes from, and its estimators that have no row here (zen)."""
    if comparison.reference is None:
        return f"No published per-estimator figures are embedded for {benchmark}: no reference column."
    published = comparison.reference[comparison.reference["dataset"] == dataset]
    ours = set(comparison.scores.loc[comparison.scores["dataset"] == dataset, "estimator"])
    extra = [f"{row.estimator} {row.nbsz_spearman:.2f}" for row in published.itertuples() if row.estimator not in ours]
    note = f"NBSZ: Spearman rho published by {REFERENCE_SOURCE}; ours - NBSZ is the difference."
    return note + (f" NBSZ also reports {', '.join(extra)}: not in the released table, so not ranked here." if extra else "")


def _dropped_line(dropped: pd.DataFrame) -> str:
    """The archs of one dataset left out for a missing value, by name, or '' when none were."""
    names = []
    for row in dropped.to_dict("records"):
        arch = f"`{row['arch']}`"  # NASLib's key: the one name NB101/NB301 rows have
        if "arch_str" in row:
            arch = f"NB201 index {row['index']} `{row['arch_str']}` (NASLib key {row['arch']})"
        names.append(f"{arch}: no {row['missing']}")
    return f"Dropped, not imputed: {'; '.join(names)}.\n\n" if names else ""


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    comparison = compare_zero_cost(args.benchmark, args.dataset, k=args.k, n_boot=args.bootstrap, seed=args.seed)
    frame = comparison.scores
    out = (DEFAULT_OUT[args.benchmark] if args.out is None else args.out) / f"compare-{args.benchmark}"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "compare.parquet", index=False)
    frame.to_csv(out / "compare.csv", index=False)
    comparison.dropped.to_csv(out / "dropped.csv", index=False)
    markdown, latex = [], []
    for dataset, part in frame.groupby("dataset", sort=False):
        n, dropped = int(part["n_archs"].iloc[0]), int(part["n_dropped"].iloc[0])
        head = f"{args.benchmark} {dataset}: {n} archs vs final validation accuracy"
        head += f" ({dropped} dropped: missing a value)" if dropped else ""
        best = f"best possible top-{args.k} acc {part['best_top_k'].iloc[0]:.2f}"
        note = _reference_note(comparison, str(dataset), args.benchmark)
        names = _dropped_line(comparison.dropped[comparison.dropped["dataset"] == dataset])
        markdown.append(f"### {head}; {best}\n\n{names}" + _dataset_table(part, args.k, "markdown", note))
        latex.append(_dataset_table(part, args.k, "latex", note))
    text = "\n\n".join(markdown)
    (out / "compare.md").write_text(text + "\n")
    (out / "compare.tex").write_text("\n\n".join(latex) + "\n")
    print(text)
    if not args.no_plot:
        from harness import plots

        fig = plots.compare_bars(frame, title=f"{args.benchmark}: Spearman rho with 95% bootstrap CI")
        paths = plots.save(fig, out / "compare")
        print(f"\nfigure: {paths[0]} (+ .pdf)")
    seconds = time.perf_counter() - start
    print(f"results: {out}/compare.{{parquet,csv,md,tex}}, dropped archs: {out}/dropped.csv  ({seconds:.1f} s)")
    if args.out is None and DEFAULT_OUT[args.benchmark] == IGNORED_OUT:
        print("(runs/ is ignored by git: only results/compare-nb201/ is committed; pass --out to write elsewhere)")
    return 0
