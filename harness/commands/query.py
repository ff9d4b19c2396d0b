"""``harness query``: what a benchmark holds, on the command line (see :data:`DESCRIPTION`).

``--format csv|json`` writes long records (see :mod:`harness.commands.query_output`), ``table`` (the
default) is for reading on a terminal.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.adapters.nb101 import Nb101Benchmark
from harness.adapters.nb1shot1 import Nb1Shot1Benchmark
from harness.adapters.nb201 import NB201Benchmark
from harness.benchmark import Benchmark, Capabilities, Column, QueryResult, Seed, epoch_span
from harness.commands.query_output import (
    ARCH_FIELDS,
    CURVE_FIELDS,
    EPOCHS_NOTE,
    FORMATS,
    MAX_TABLE_EPOCHS,
    TOP_FIELDS,
    ArchRef,
    arch_record,
    arch_table,
    curve_record,
    curve_records,
    curve_table,
    seed_labels,
    write_records,
)
from harness.errors import HarnessError
from harness.registry import available_benchmarks, canonical_name, load_benchmark

DESCRIPTION = """\
without --dataset: the benchmark's capabilities (every column)
--dataset --split [--schedule --metric]: curves of one column for the --arch archs, or the --top N
--info --arch A: every column recorded for arch A, every seed and epoch
--list: the archs with data; --lookup X: an arch id in its other forms
--format csv or json: one record per value (dataset, schedule, split, metric, arch_index, arch, seed,
epoch, value; empty / null where missing); table (default): for reading"""
EPOCHS_FORMS = "'last', one epoch N, or an inclusive range A:B with A <= B"
DEFAULT_METRIC = "accuracy"
LIST_CHUNK = 4096  # --list names this many archs at a time, so that its first lines come at once
UNINDEXED_SAMPLE = 1000  # archs --top ranks in a space without an index (NB301), drawn with seed 0
NARROWING = ("dataset", "schedule", "split", "metric")
# (flag, attribute) of the options that shape a query, in the order errors name them
QUERY_OPTIONS = (("--arch", "arch"), ("--epochs", "epochs"), ("--top", "top"), ("--split", "split"),
                 ("--schedule", "schedule"), ("--metric", "metric"), ("--mean", "mean"), ("--dataset", "dataset"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query", help="query a benchmark (no arguments: list what it holds)", add_help=False,
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-h", "--help", action=_HelpWithBenchmarkValues,
                        help="show this help, with the valid --dataset/--schedule/--split/--metric of each benchmark")
    parser.add_argument("benchmark", type=_benchmark_name, choices=available_benchmarks(), metavar="BENCHMARK",
                        help="%(choices)s (aliases such as nas-bench-201 work too)")
    parser.add_argument("--root", type=Path, default=None, help="converted store (default: embedded data)")
    parser.add_argument("--dataset")
    parser.add_argument("--metric", help=f"default {DEFAULT_METRIC}")
    parser.add_argument("--split")
    parser.add_argument("--schedule")
    parser.add_argument("--arch", action="append",
                        help="arch id (index, NB201 arch string or 6-op tuple, NB101 module hash, DARTS genotype); "
                             "repeatable (default: 0)")
    parser.add_argument("--epochs", default=None, help="'last', one epoch, or a range A:B (default: all)")
    parser.add_argument("--mean", action="store_true", help="average over seeds")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default; for reading), or csv / json: one record per value")
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--top", type=int, default=None, metavar="N",
                       help="the N best archs with data by this column (seed mean, last epoch); not with --arch/--epochs")
    views.add_argument("--info", action="store_true",
                       help="every column recorded for the --arch archs, every seed and epoch "
                            "(narrowed by --dataset, --schedule, --split, --metric)")
    views.add_argument("--list", action="store_true", help="index and id of every arch with data")
    views.add_argument("--lookup", action="append", metavar="ARCH",
                       help="an arch id in its other form: NB201 index <-> arch string or 6-op tuple, NB101 row <-> "
                            "module hash, NB1Shot1 index -> configuration, NB301 genotype -> canonical genotype; repeatable")
    parser.set_defaults(func=run)


class _HelpWithBenchmarkValues(argparse.Action):
    """``-h``: the help, ending with each benchmark's valid names, read from its embedded data only then."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.epilog = benchmark_values()
        parser.print_help()
        parser.exit()


def benchmark_values() -> str:
    """The --dataset, --schedule, --split and --metric values in each benchmark's embedded data
    (benchmarks with the same values share an entry)."""
    entries: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    failures = []
    for name in available_benchmarks():
        try:
            caps = load_benchmark(name).capabilities()
        except (HarnessError, OSError) as err:
            failures.append(f"  {name}: its embedded data cannot be opened: {err}")
            continue
        entries.setdefault((caps.datasets, caps.schedules, caps.splits, caps.metrics), []).append(name)
    lines = ["valid values in the embedded data (not every combination exists: 'harness query BENCH' lists the",
             "columns; a converted store, --root STORE, holds more):"]
    for values, names in entries.items():
        lines.append(f"  {', '.join(names)}")
        lines.extend(f"    --{field:<9} {', '.join(valid)}" for field, valid in zip(NARROWING, values))
    return "\n".join(lines + failures)


def _benchmark_name(text: str) -> str:
    try:
        return canonical_name(text)
    except HarnessError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    bench = load_benchmark(args.benchmark, args.root)
    if args.list or args.lookup:
        _refuse_options(args, "--list" if args.list else "--lookup", allowed=())
        return _archs(bench, args)
    if args.info:
        _refuse_options(args, "--info", allowed=("arch", *NARROWING))
        if not args.arch:
            raise HarnessError("--info needs --arch (an arch id, repeatable): it shows everything recorded for those archs")
        return _info(bench, _narrowed_columns(bench.capabilities(), args), _arch_refs(bench, args.arch, "--arch"),
                     args.format)
    caps = bench.capabilities()
    if args.dataset is None:
        asked = _given(args, allowed=())
        if asked:
            raise HarnessError(f"{' and '.join(asked)} {'needs' if len(asked) == 1 else 'need'} --dataset (one of "
                               f"{', '.join(caps.datasets)}); without it, query prints the benchmark's capabilities")
        if args.format != "table":
            raise HarnessError(f"--format {args.format} applies to curves (--dataset ...), --top, --info, --list and "
                               "--lookup; the capabilities listing (no --dataset) is text")
        print(caps.describe())
        return 0
    if args.split is None:
        raise HarnessError(f"pass --split; {args.benchmark} splits: {caps.splits}")
    column = caps.column(args.dataset, args.metric or DEFAULT_METRIC, args.split, args.schedule)
    if args.top is not None:
        return _top(bench, column, args)
    return _curves(bench, column, args)


def _given(args: argparse.Namespace, allowed: Sequence[str]) -> list[str]:
    """The query options given on the command line, but for the ``allowed`` ones."""
    return [flag for flag, name in QUERY_OPTIONS if name not in allowed and getattr(args, name) not in (None, False)]


def _refuse_options(args: argparse.Namespace, view: str, allowed: Sequence[str]) -> None:
    """Raise naming the query options given that ``view`` does not use, and those it does."""
    given = _given(args, allowed)
    if given:
        takes = ", ".join(flag for flag, name in QUERY_OPTIONS if name in allowed) or "only --root and --format"
        raise HarnessError(f"{view} does not take {', '.join(given)}; it takes {takes}")


def _archs(bench: Benchmark, args: argparse.Namespace) -> int:
    """``--list`` (every arch with data, written as it is named) or ``--lookup``."""
    if args.list:
        indices = bench.archs_with_data(progress=True)
        refs: Iterable[ArchRef] = (ref for start in range(0, len(indices), LIST_CHUNK)
                                   for ref in _refs(bench, indices[start:start + LIST_CHUNK]))
    else:
        refs = _arch_refs(bench, args.lookup, "--lookup")
    if args.format != "table":
        write_records(map(arch_record, refs), ARCH_FIELDS, args.format, sys.stdout)
        return 0
    n_archs = bench.capabilities().n_archs
    sys.stdout.writelines(line + "\n" for line in arch_table(refs, len(str(n_archs - 1)) if n_archs else 1))
    return 0


def _curves(bench: Benchmark, column: Column, args: argparse.Namespace) -> int:
    """The curves of ``column`` for the ``--arch`` archs (default: arch 0)."""
    epochs = None if args.epochs is None else _parse_epochs(args.epochs, column)
    if not args.arch and bench.capabilities().n_archs is None:
        raise HarnessError(f"pass --arch: {bench.name} archs have no index to default to (or rank a sample with --top)")
    refs = _arch_refs(bench, args.arch or ["0"], "--arch")
    result = bench.query(_keys(refs), column.dataset, column.metric, column.split, column.schedule, epochs=epochs,
                         reduce="mean" if args.mean else None)
    if args.format != "table":
        records = (record for position, ref in enumerate(refs) for record in curve_records(result, position, ref))
        write_records(records, CURVE_FIELDS, args.format, sys.stdout)
        return 0
    seeds = f"mean over {_labels(column.seeds)}" if args.mean else _labels(result.seeds)
    lines = [f"{column}  seeds={seeds}  epochs={_epochs_text(result.epochs)}  [{_direction(column)}]"]
    if len(result.epochs) > MAX_TABLE_EPOCHS:
        lines.append(EPOCHS_NOTE)
    for position, ref in enumerate(refs):
        rows = [((seed,), values) for seed, values in zip(seed_labels(result.seeds), result.values[position])]
        lines += [ref.label, *curve_table(["seed"], rows, result.epochs)]
    print("\n".join(lines))
    return 0


def _top(bench: Benchmark, column: Column, args: argparse.Namespace) -> int:
    """The ``--top`` best archs by the seed mean at the last epoch, among the archs with data."""
    if args.top < 1:
        raise HarnessError(f"--top {args.top}: N must be at least 1")
    if args.arch or args.epochs is not None:
        raise HarnessError("--top ranks every arch at the last epoch; it cannot be combined with --arch or --epochs")
    n_archs = bench.capabilities().n_archs
    last = column.epochs[-1] if column.epochs else None
    pool = bench.archs_with_data(progress=True) if n_archs is not None else bench.sample(UNINDEXED_SAMPLE, 0)
    result = bench.query(pool, column.dataset, column.metric, column.split, column.schedule, epochs=last, reduce="mean")
    scores = result.values[:, 0, 0]
    order = np.argsort(scores if column.minimize else -scores, kind="stable")
    order = order[~np.isnan(scores[order])]
    best = order[: args.top]
    seed = "mean" if len(column.seeds) > 1 else (column.seeds[0] if column.seeds else None)
    refs = _refs(bench, pool[best])
    if args.format != "table":
        records = ({"rank": rank, **curve_record(column, ref, seed, last, scores[position])}
                   for rank, (position, ref) in enumerate(zip(best, refs), start=1))
        write_records(records, TOP_FIELDS, args.format, sys.stdout)
        return 0
    ranked = f"{len(order):,} archs with data"
    if n_archs is None:
        ranked += f" among {UNINDEXED_SAMPLE:,} sampled with seed 0"
    elif len(order) < n_archs:
        ranked += f" (of {n_archs:,})"
    qualifiers = ["seed mean"] * (len(column.seeds) > 1) + [f"epoch {last}"] * (last is not None)
    print(f"top {len(best):,} of {ranked} by {column}" + (f" ({', '.join(qualifiers)})" if qualifiers else "") + ":")
    for rank, (position, ref) in enumerate(zip(best, refs), start=1):
        print(f"{rank:3d}. {scores[position]:8.3f}  {ref.label}")
    return 0


def _info(bench: Benchmark, columns: list[Column], refs: list[ArchRef], output_format: str) -> int:
    """Every seed and epoch of ``columns`` for the archs ``refs``, arch by arch."""
    keys = _keys(refs)
    results = [bench.query(keys, c.dataset, c.metric, c.split, c.schedule) for c in columns]
    if output_format != "table":
        records = (record for position, ref in enumerate(refs) for result in results
                   for record in curve_records(result, position, ref))
        write_records(records, CURVE_FIELDS, output_format, sys.stdout)
        return 0
    groups: dict[tuple[str, str, tuple[Seed, ...], tuple[int, ...]], list[QueryResult]] = {}
    for result in results:
        groups.setdefault((result.column.dataset, result.column.schedule, result.seeds, result.epochs), []).append(result)
    lines = []
    for position, ref in enumerate(refs):
        lines.append(f"{ref.label}: {len(columns)} columns of {bench.name}")
        if position == 0 and any(len(result.epochs) > MAX_TABLE_EPOCHS for result in results):
            lines.append(EPOCHS_NOTE)
        for (dataset, schedule, seeds, epochs), members in groups.items():
            lines.append(f"  {dataset}/{schedule}  seeds={_labels(seeds)}  epochs={_epochs_text(epochs)}")
            rows = [((f"{result.column.split}/{result.column.metric}", seed), values) for result in members
                    for seed, values in zip(seed_labels(result.seeds), result.values[position])]
            lines += curve_table(["split/metric", "seed"], rows, epochs, indent="    ")
    print("\n".join(lines))
    return 0


def _narrowed_columns(caps: Capabilities, args: argparse.Namespace) -> list[Column]:
    """The columns --info shows: all of them, or those of the --dataset, --schedule, --split, --metric given."""
    columns = list(caps.columns)
    named: list[str] = []
    for field in NARROWING:
        wanted = getattr(args, field)
        if wanted is None:
            continue
        matching = [c for c in columns if getattr(c, field) == wanted]
        if not matching:
            raise caps.unknown(f"{field} for {' '.join([caps.benchmark, *named])}", wanted,
                               (getattr(c, field) for c in columns))
        columns, named = matching, [*named, wanted]
    return columns


def arch_texts(bench: Benchmark, keys: np.ndarray) -> list[str]:
    """The native text of each arch: NB201 arch string, NB101 module hash, NB1Shot1 configuration (of an
    index), or the DARTS genotype of an NB301 encoding; an index out of range raises."""
    if isinstance(bench, NB201Benchmark):
        return [bench.arch_strings[row] for row in bench.resolve(keys)]
    if isinstance(bench, Nb101Benchmark):
        return bench.hash_of(keys)
    if isinstance(bench, Nb1Shot1Benchmark):
        return [str(bench.space.config(int(index))) for index in keys]
    return [bench.arch_label(key) for key in keys]


def _refs(bench: Benchmark, keys: np.ndarray) -> list[ArchRef]:
    """Refs of archs given by index (an indexed space) or by encoding (NB301)."""
    indexed = bench.capabilities().n_archs is not None
    return [ArchRef(int(key) if indexed else None, text, key) for key, text in zip(keys, arch_texts(bench, keys))]


def _arch_refs(bench: Benchmark, texts: Sequence[str], flag: str) -> list[ArchRef]:
    """Refs of archs named on the command line (``flag`` names the option in errors)."""
    return _refs(bench, np.stack([_arch_key(bench, text, flag) for text in texts]))


def _arch_key(bench: Benchmark, text: str, flag: str) -> Any:
    """The index (indexed spaces) or encoding (NB301) of the one arch ``text`` names."""
    value = _arch_value(text)
    if isinstance(value, int) and bench.capabilities().n_archs is not None:
        return value
    rows = bench.resolve(value)
    if len(rows) != 1:
        raise HarnessError(f"{flag} {text!r} names {len(rows)} archs; give one per {flag}")
    return rows[0]


def _arch_value(text: str) -> int | tuple[str, ...] | str:
    """An arch id as typed: an integer, a tuple of op names written as a Python tuple, or the text itself."""
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("("):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
            return value
    return text


def _keys(refs: list[ArchRef]) -> np.ndarray:
    return np.stack([ref.key for ref in refs])


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


def _labels(labels: Sequence[object]) -> str:
    return ",".join(str(label) for label in labels) or "-"


def _epochs_text(epochs: tuple[int, ...]) -> str:
    return f"{epoch_span(epochs)} ({len(epochs)})" if epochs else "-"


def _direction(column: Column) -> str:
    return "min" if column.minimize else "max"
