"""``harness data convert BENCH SRC DEST``: convert official files into the columnar store."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from harness.errors import HarnessError, choices
from harness.store import ColumnarStore

CONVERTERS = {"nb201": "harness.adapters.nb201", "nb101": "harness.adapters.nb101"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="convert and check benchmark files")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    convert = actions.add_parser("convert", help="convert official files into a memory-mapped store")
    convert.add_argument("benchmark", help=f"one of {sorted(CONVERTERS)}")
    convert.add_argument("src", type=Path, help="official file or directory")
    convert.add_argument("dest", type=Path, help="store directory to create")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing store at DEST")
    convert.set_defaults(func=run_convert)
    verify = actions.add_parser("verify", help="recompute the checksums of a store")
    verify.add_argument("store", type=Path)
    verify.set_defaults(func=run_verify)


def run_convert(args: argparse.Namespace) -> int:
    if args.benchmark not in CONVERTERS:
        raise choices("benchmark to convert", args.benchmark, sorted(CONVERTERS))
    if not args.src.exists():
        raise HarnessError(f"source {args.src} does not exist")
    module = importlib.import_module(CONVERTERS[args.benchmark])
    start = time.perf_counter()
    dest = module.convert(args.src, args.dest, overwrite=args.overwrite)
    print(f"wrote {dest} in {time.perf_counter() - start:.1f} s")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    store = ColumnarStore(args.store)
    store.verify()
    print(f"{args.store}: {len(store.columns)} columns, checksums OK")
    return 0
