"""``harness data convert BENCH SRC DEST``: convert official files into the columnar store."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.store import ColumnarStore

CONVERTERS = {"nb201": "harness.adapters.nb201", "nb101": "harness.adapters.nb101"}
VERIFY_HELP = (
    "Recompute the sha256 of every file of a store and compare it with the manifest: the integrity check. "
    "Opening a store (queries, load_benchmark) checks only each array's size and .npy header, so bytes "
    "changed inside an array (a bad disk, a bad copy) are found only by this command."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="convert and check benchmark files")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    convert = actions.add_parser("convert", help="convert official files into a memory-mapped store")
    convert.add_argument("benchmark", choices=sorted(CONVERTERS), help="the benchmark the official files belong to")
    convert.add_argument("src", type=Path, help="official file or directory")
    convert.add_argument("dest", type=Path, help="store directory to create")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing store at DEST")
    convert.set_defaults(func=run_convert)
    verify = actions.add_parser(
        "verify", help="recompute the sha256 of every file of a store (the integrity check)", description=VERIFY_HELP
    )
    verify.add_argument("store", type=Path, help="store directory written by harness data convert")
    verify.set_defaults(func=run_verify)


def run_convert(args: argparse.Namespace) -> int:
    if not args.src.exists():
        raise HarnessError(f"source {args.src} does not exist")
    module = importlib.import_module(CONVERTERS[args.benchmark])
    start = time.perf_counter()
    try:
        dest = module.convert(args.src, args.dest, overwrite=args.overwrite)
    except KeyboardInterrupt:  # the store is written to a temporary folder and renamed only when complete
        raise KeyboardInterrupt(f"no store was written at {args.dest}") from None
    print(f"wrote {dest} in {time.perf_counter() - start:.1f} s")
    print(
        f"integrity check: harness data verify {dest} (sha256 of every file); "
        "opening the store checks only each array's size and header"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    store = ColumnarStore(args.store)
    store.verify()
    print(f"{args.store}: {len(store.columns)} columns, checksums OK")
    return 0
