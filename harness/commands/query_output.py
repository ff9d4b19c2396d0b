"""What ``harness query`` prints: long records (csv, json) and terminal tables.

``csv`` and ``json`` are tidy: one record per value, each naming its column (dataset, schedule,
split, metric), its architecture (index and native text), seed and epoch. A missing value is an
empty csv field or a json ``null``, as is a seed or epoch axis the column does not have. Values keep
full float64 precision. ``table`` is for reading: aligned blocks (per arch for curves, per dataset and
schedule for ``--info``) with a row per seed (and split/metric) and a column per epoch, at most
:data:`MAX_TABLE_EPOCHS` of them; missing values are shown as ``-``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from harness.benchmark import Column, QueryResult, Seed

FORMATS = ("table", "csv", "json")
CURVE_FIELDS = ("dataset", "schedule", "split", "metric", "arch_index", "arch", "seed", "epoch", "value")
TOP_FIELDS = ("rank", *CURVE_FIELDS)
ARCH_FIELDS = ("arch_index", "arch")
MAX_TABLE_EPOCHS = 6
MIN_VALUE_WIDTH = 8  # value columns at least this wide, so that the blocks of one table mostly line up
EPOCHS_NOTE = (f"(at most {MAX_TABLE_EPOCHS} epochs of a curve shown: the first, every k-th and the last; "
               "all: --format csv or json)")

Record = dict[str, Any]


@dataclass(frozen=True)
class ArchRef:
    """One architecture as the user sees it."""

    index: int | None  # None in an unindexed space (NB301)
    text: str  # native form: NB201 arch string, NB101 module hash, NB1Shot1 configuration, DARTS genotype
    key: Any  # what ``Benchmark.query`` takes: the index, or NB301's encoding

    @property
    def label(self) -> str:
        return self.text if self.index is None else f"[{self.index}] {self.text}"


def curve_record(column: Column, arch: ArchRef, seed: Seed | None, epoch: int | None, value: float) -> Record:
    return {"dataset": column.dataset, "schedule": column.schedule, "split": column.split, "metric": column.metric,
            "arch_index": arch.index, "arch": arch.text, "seed": seed, "epoch": epoch, "value": _number(value)}


def curve_records(result: QueryResult, position: int, arch: ArchRef) -> Iterator[Record]:
    """The records of the arch at ``position`` of ``result``: every seed and epoch it was asked for."""
    for seed, row in zip(result.seeds or (None,), result.values[position]):
        for epoch, value in zip(result.epochs or (None,), row):
            yield curve_record(result.column, arch, seed, epoch, value)


def arch_record(arch: ArchRef) -> Record:
    return {"arch_index": arch.index, "arch": arch.text}


def write_records(records: Iterable[Record], fields: Sequence[str], output_format: str, out: TextIO) -> None:
    """``records`` as csv (a header, then one line each) or as a json array (one record per line)."""
    if output_format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows([record[field] for field in fields] for record in records)
        return
    separator = "\n"
    out.write("[")
    for record in records:
        out.write(separator + json.dumps({field: record[field] for field in fields}))
        separator = ",\n"
    out.write("\n]\n")


def shown_epoch_positions(epochs: Sequence[int]) -> list[int]:
    """Positions of the epochs a table shows: all of them, or, past :data:`MAX_TABLE_EPOCHS`, the
    first, the multiples of a step spreading about that many over the span, and the last."""
    if len(epochs) <= MAX_TABLE_EPOCHS:
        return list(range(len(epochs)))
    step = math.ceil((epochs[-1] - epochs[0] + 1) / (MAX_TABLE_EPOCHS - 1))
    last = len(epochs) - 1
    return [p for p, epoch in enumerate(epochs) if p in (0, last) or epoch % step == 0]


def curve_table(labels: Sequence[str], rows: Sequence[tuple[Sequence[str], np.ndarray]], epochs: Sequence[int],
                indent: str = "  ") -> list[str]:
    """Aligned lines: a header naming the row ``labels`` and the epochs shown, then one line per row
    (its label values, then its values at those epochs; a column without epochs has one value)."""
    positions = shown_epoch_positions(epochs) if epochs else [0]
    if epochs:
        header = [*labels[:-1], f"{labels[-1]} \\ epoch", *(str(epochs[p]) for p in positions)]
    else:
        header = [*labels, "value"]
    lines = [header, *([*names, *(_cell(values[p]) for p in positions)] for names, values in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    widths[len(labels):] = [max(width, MIN_VALUE_WIDTH) for width in widths[len(labels):]]
    return [indent + "  ".join(cell.ljust(width) if i < len(labels) else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(line, widths)))
            for line in lines]


def seed_labels(seeds: Sequence[Seed]) -> list[str]:
    """Row labels of a curve's seeds (``-`` for a column that does not depend on the seed)."""
    return [str(seed) for seed in seeds] or ["-"]


def arch_table(archs: Iterable[ArchRef], index_width: int) -> Iterator[str]:
    """``index  text`` lines under a header, indices right-aligned (``-`` where the space has none)."""
    width = max(len("index"), index_width)
    yield f"{'index'.rjust(width)}  arch"
    for arch in archs:
        yield f"{'-' if arch.index is None else arch.index:>{width}}  {arch.text}"


def _cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.6g}"


def _number(value: float) -> float | None:
    """``value`` as a float, or None where it is missing (NaN)."""
    return None if math.isnan(value) else float(value)
