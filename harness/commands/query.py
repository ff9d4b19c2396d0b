"""``harness query``: curves or finals of one metric for some architectures, or a benchmark's capabilities."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.registry import load_benchmark


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
    parser.add_argument("--top", type=int, default=0, help="print the N best archs by this metric at the last epoch")
    parser.set_defaults(func=run)


def _parse_arch(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def run(args: argparse.Namespace) -> int:
    bench = load_benchmark(args.benchmark, args.root)
    caps = bench.capabilities()
    if args.dataset is None:
        print(caps.describe())
        return 0
    if args.split is None:
        from harness.errors import HarnessError

        raise HarnessError(f"pass --split; {args.benchmark} splits: {caps.splits}")
    column = caps.column(args.dataset, args.metric, args.split, args.schedule)
    epochs: int | list[int] | None
    if args.epochs is None:
        epochs = None
    elif args.epochs == "last":
        epochs = column.epochs[-1] if column.epochs else None
    elif ":" in args.epochs:
        start, stop = (int(x) for x in args.epochs.split(":"))
        epochs = list(range(start, stop + 1))
    else:
        epochs = int(args.epochs)
    if args.top:
        last = column.epochs[-1] if column.epochs else None
        rows = np.arange(caps.n_archs) if caps.n_archs is not None else bench.sample(1000, 0)
        result = bench.query(rows, args.dataset, args.metric, args.split, args.schedule, epochs=last, reduce="mean")
        scores = result.values[:, 0, 0]
        order = np.argsort(scores if column.minimize else -scores, kind="stable")
        order = order[~np.isnan(scores[order])][: args.top]
        print(f"top {args.top} of {len(rows)} archs by {column} (seed mean, epoch {last}):")
        for rank, pos in enumerate(order, start=1):
            print(f"{rank:3d}. {scores[pos]:8.3f}  {bench.arch_label(rows[pos])}")
        return 0
    archs = [_parse_arch(a) for a in args.arch] or [0]
    result = bench.query(archs, args.dataset, args.metric, args.split, args.schedule, epochs=epochs,
                         reduce="mean" if args.mean else None)
    print(f"{column}  epochs={list(result.epochs) or '-'}  seeds={list(result.seeds) or '-'}")
    with np.printoptions(precision=4, suppress=True, linewidth=120, threshold=2000):
        for arch, block in zip(result.archs, result.values):
            print(f"{bench.arch_label(arch)}:")
            print(block)
    return 0
