"""``harness query``: curves or finals of one metric for some architectures, or a benchmark's capabilities."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.benchmark import Column
from harness.errors import HarnessError
from harness.registry import load_benchmark

EPOCHS_FORMS = "'last', one epoch N, or an inclusive range A:B with A <= B"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("query", help="query a benchmark (no arguments: list what it holds)")
    parser.add_argument("benchmark", help="nb201, nb101, nb1shot1-1/2/3, nb301")
    parser.add_argument("--root", type=Path, default=None, help="converted store (default: embedded data)")
    parser.add_argument("--dataset")
    parser.add_argument("--metric", default="accuracy")
    parser.add_argument("--split")
    parser.add_argument("--schedule")
    parser.add_argument("--arch", action="append", default=[], help="arch id (index, arch string); repeatable")
    parser.add_argument("--epochs", default=None, help="'last', one epoch, or a range A:B (default: all)")
    parser.add_argument("--mean", action="store_true", help="average over seeds")
    parser.add_argument("--top", type=int, default=None,
                        help="print the N best archs by this metric (seed mean, last epoch); not with --arch/--epochs")
    parser.set_defaults(func=run)


def _parse_arch(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_epochs(text: str, column: Column) -> int | list[int] | None:
    """``--epochs``: 'last', one epoch ``N`` or an inclusive range ``A:B``."""
    if text == "last":
        return column.epochs[-1] if column.epochs else None
    try:
        if ":" not in text:
            return int(text)
        start, stop = (int(x) for x in text.split(":"))
    except ValueError:
        raise HarnessError(f"--epochs {text!r} is not {EPOCHS_FORMS}") from None
    if stop < start:
        raise HarnessError(f"--epochs {text!r} is an empty range (B < A); give {EPOCHS_FORMS}")
    return list(range(start, stop + 1))


def run(args: argparse.Namespace) -> int:
    bench = load_benchmark(args.benchmark, args.root)
    caps = bench.capabilities()
    if args.dataset is None:
        asked = [flag for flag, given in (("--arch", args.arch), ("--epochs", args.epochs is not None),
                                          ("--top", args.top is not None), ("--split", args.split is not None)) if given]
        if asked:
            raise HarnessError(f"{' and '.join(asked)} {'needs' if len(asked) == 1 else 'need'} --dataset (one of "
                               f"{', '.join(caps.datasets)}); without it, query prints the benchmark's capabilities")
        print(caps.describe())
        return 0
    if args.split is None:
        raise HarnessError(f"pass --split; {args.benchmark} splits: {caps.splits}")
    column = caps.column(args.dataset, args.metric, args.split, args.schedule)
    if args.top is not None:
        if args.top < 1:
            raise HarnessError(f"--top {args.top}: N must be at least 1")
        if args.arch or args.epochs is not None:
            raise HarnessError("--top ranks every arch at the last epoch; it cannot be combined with --arch or --epochs")
        last = column.epochs[-1] if column.epochs else None
        rows = np.arange(caps.n_archs) if caps.n_archs is not None else bench.sample(1000, 0)
        result = bench.query(rows, args.dataset, args.metric, args.split, args.schedule, epochs=last, reduce="mean")
        scores = result.values[:, 0, 0]
        order = np.argsort(scores if column.minimize else -scores, kind="stable")
        order = order[~np.isnan(scores[order])]
        pool = "archs with data" if caps.n_archs is not None else "archs with data among 1,000 sampled with seed 0"
        averaged = "seed mean, " if len(column.seeds) > 1 else ""
        print(f"top {min(args.top, len(order))} of {len(order)} {pool} by {column} ({averaged}epoch {last}):")
        order = order[: args.top]
        for rank, pos in enumerate(order, start=1):
            print(f"{rank:3d}. {scores[pos]:8.3f}  {bench.arch_label(rows[pos])}")
        return 0
    epochs = None if args.epochs is None else _parse_epochs(args.epochs, column)
    archs = [_parse_arch(a) for a in args.arch] or [0]
    result = bench.query(archs, args.dataset, args.metric, args.split, args.schedule, epochs=epochs,
                         reduce="mean" if args.mean else None)
    print(f"{column}  epochs={list(result.epochs) or '-'}  seeds={list(result.seeds) or '-'}")
    with np.printoptions(precision=4, suppress=True, linewidth=120, threshold=2000):
        for arch, block in zip(result.archs, result.values):
            print(f"{bench.arch_label(arch)}:")
            print(block)
    return 0
