"""The NASLib zero-cost tables (NAS-Bench-Suite-Zero) for NB101, NB201 and NB301.

Source format (automl/NASLib, NAS-Bench-Suite-Zero, Krishnakumar et al. 2022), one JSON object:

* NB201: ``{dataset: {"(0, 2, 3, 2, 3, 1)": {"idx", "arch", "val_accuracy", proxy: {"score", "time"}}}}``
  for datasets cifar10, cifar100, ImageNet16-120. The key is NASLib's 6-int encoding (edges
  (1,2),(1,3),(1,4),(2,3),(2,4),(3,4); ops 0..4 = skip_connect, none, nor_conv_3x3, nor_conv_1x1,
  avg_pool_3x3), mapped here to the official arch string and index by :mod:`harness.spaces.nb201`.
* NB101 / NB301: ``{"nasbench101"|"nasbench301": {"cifar10": {encoding: {"val_accuracy", proxy: score}}}}``
  with NASLib's 56-int NB101 encoding and compact DARTS encoding, kept verbatim as strings.

The package embeds them as small parquet files under ``harness/embedded/zc/`` (scores and
``val_accuracy``; the per-proxy compute times are dropped), one row per (dataset, arch). The raw
NASLib encoding is the ``arch`` column. :func:`open_zerocost` exposes a table as a
:class:`~harness.benchmark.Benchmark` so that the estimator registry reads it through the same
``required_columns`` path as every other benchmark: columns ``<dataset>/<schedule>/zc/<proxy>``,
``cost/params``, ``cost/flops`` (no seeds, no epochs) and the validation accuracy.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.atomic import write_atomic
from harness.benchmark import (
    Benchmark,
    Capabilities,
    Column,
    one_dimensional,
    rows_in_range,
)
from harness.errors import HarnessError, choices
from harness.rng import is_int
from harness.spaces import darts
from harness.spaces import nb101 as nb101_space
from harness.spaces import nb201 as nb201_space

BENCHMARKS = ("nb101", "nb201", "nb301")
COST_METRICS = ("params", "flops")
# Training budget that ``val_accuracy`` refers to, used as the column's schedule.
SCHEDULES = {"nb101": "108", "nb201": "200", "nb301": "final"}
VALID_SPLITS = {"nb101": "valid", "nb201": "x-valid", "nb301": "valid"}
DATASETS = {"nb101": ("cifar10",), "nb201": ("cifar10", "cifar100", "ImageNet16-120"), "nb301": ("cifar10",)}
_KEY_EXAMPLES = {"nb101": "(0, 1, 1, ..., 2, 4, 1)", "nb201": "(0, 2, 3, 2, 3, 1)", "nb301": "[[(0, 4), (1, 3), ...], [...]]"}
_TOP_KEYS = {"nb101": "nasbench101", "nb301": "nasbench301"}
_NOT_PROXIES = {"idx", "arch", "val_accuracy"}
_ACCURACY_NOTE = "final validation accuracy (%) from the NASLib table"
# NB201 cifar10 has no validation split: NASLib's cifar10 "val_accuracy" tracks the cifar10-valid run
# (the one trained on 25k images; median |difference| 0.32 points from its seed-mean x-valid accuracy
# over the 725 archs, against 3.57 from the cifar10 run's test accuracy), so it is labelled x-valid.
_ACCURACY_NOTES = {("nb201", "cifar10"): _ACCURACY_NOTE + "; for cifar10 this is the cifar10-valid run's 200-epoch x-valid "
                   "accuracy (NASLib's label), not the full-training cifar10 run"}


def read_naslib_json(path: str | Path, benchmark: str) -> pd.DataFrame:
    """Parse a NASLib zero-cost JSON file into a tidy frame (one row per dataset and arch).

    Columns: ``dataset``, ``arch`` (the NASLib key, verbatim), ``val_accuracy``, one column per
    proxy score (NaN where the record has no such proxy, as NB201 cifar10 lacks synflow for one arch).
    For NB201 also ``naslib_idx``, ``arch_str`` and ``index`` (official order). Raises HarnessError
    naming the file and key for a file that is not this format: an unknown dataset, a key that is not
    an arch of ``benchmark``, one arch under two spellings of its key, a score or accuracy that is not a
    number (``null`` included), a proxy record without ``"score"``.
    """
    if benchmark not in BENCHMARKS:
        raise choices("zero-cost benchmark", benchmark, BENCHMARKS)
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HarnessError(f"cannot read NASLib zero-cost file {path}: {err}") from None
    if benchmark in _TOP_KEYS:
        if not isinstance(data, dict) or _TOP_KEYS[benchmark] not in data:
            raise HarnessError(f"{path} is not a NASLib {benchmark} zero-cost file: no {_TOP_KEYS[benchmark]!r} key")
        data = data[_TOP_KEYS[benchmark]]
    if not isinstance(data, dict) or not data:
        raise HarnessError(f"{path} is not a NASLib zero-cost file: expected {{dataset: {{arch: record}}}}")
    rows: list[dict[str, Any]] = []
    codes: list[tuple[int, ...]] = []
    spelling: dict[tuple[int, ...], str] = {}  # one key per arch across the file
    for dataset, records in data.items():
        if dataset not in DATASETS[benchmark]:
            raise choices(f"dataset in NASLib {benchmark} zero-cost file {path}", dataset, DATASETS[benchmark])
        if not isinstance(records, dict) or not records:
            raise HarnessError(f"{path}: dataset {dataset!r} does not map archs to records")
        for arch, record in records.items():
            where = f"{path}: {dataset} arch {arch!r}"
            try:
                code = _arch_code(benchmark, arch)
            except HarnessError as err:
                raise HarnessError(f"{where}: {err}") from None
            first = spelling.setdefault(code, arch)
            if first != arch:
                raise HarnessError(f"{where} is the arch of key {first!r} spelled differently; each arch has one key")
            if not isinstance(record, dict) or "val_accuracy" not in record:
                raise HarnessError(f"{where}: the record has no val_accuracy")
            accuracy = _number(record["val_accuracy"], f"{where} val_accuracy")
            row: dict[str, Any] = {"dataset": dataset, "arch": arch, "val_accuracy": accuracy}
            for key, value in record.items():
                if key in _NOT_PROXIES:
                    continue
                if isinstance(value, dict) and "score" not in value:
                    raise HarnessError(f"{where}: proxy {key!r} is a record without \"score\" (keys {sorted(value)})")
                row[key] = _number(value["score"] if isinstance(value, dict) else value, f"{where} proxy {key!r}")
            if benchmark == "nb201":
                idx = str(record.get("idx", -1))  # NASLib writes it as a string, e.g. "534"; -1: absent
                if idx != "-1" and not idx.isdecimal():
                    raise HarnessError(f"{where}: idx must be a non-negative integer, got {record['idx']!r}")
                row["naslib_idx"] = int(idx)
            rows.append(row)
            codes.append(code)
    frame = pd.DataFrame(rows)
    if benchmark == "nb201":
        frame = _add_nb201_index(frame, codes)
    scores = sorted(c for c in frame.columns if c not in {"dataset", "arch", "val_accuracy", "naslib_idx", "arch_str", "index"})
    lead = ["dataset", "arch"] + [c for c in ("index", "arch_str", "naslib_idx") if c in frame.columns]
    return frame[lead + ["val_accuracy"] + scores]


def _number(value: object, what: str) -> float:
    """``value`` as a float if it is a JSON number; raises naming ``what`` otherwise (null, strings, bools)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HarnessError(f"{what} must be a number, got {value!r}")
    return float(value)


def _arch_code(benchmark: str, key: str) -> tuple[int, ...]:
    """The integers of NASLib arch key ``key``, validated as an arch of ``benchmark`` (raises HarnessError)."""
    try:
        value = ast.literal_eval(key)
    except (ValueError, SyntaxError, TypeError):
        raise HarnessError(f"not a NASLib {benchmark} arch key: expected e.g. {_KEY_EXAMPLES[benchmark]!r}") from None
    if benchmark == "nb301":
        darts.compact_to_encoding(value)  # raises naming the fault
        return tuple(int(v) for cell in value for pair in cell for v in pair)
    if not isinstance(value, tuple) or not all(is_int(v) for v in value):
        raise HarnessError(f"not a NASLib {benchmark} arch key: expected a tuple of integers, e.g. {_KEY_EXAMPLES[benchmark]!r}")
    if benchmark == "nb201":
        nb201_space.naslib_tuple_to_ops(value)
    else:
        nb101_space.spec_from_naslib(value).check()
    return value


def _add_nb201_index(frame: pd.DataFrame, codes: list[tuple[int, ...]]) -> pd.DataFrame:
    """Map NASLib's 6-int tuples (``codes``, one per row) to arch strings and official indices."""
    from harness.adapters.nb201 import embedded_table

    official = {arch: i for i, arch in enumerate(embedded_table()["arch_str"].tolist())}
    arch_strs = [nb201_space.ops_to_arch(nb201_space.naslib_tuple_to_ops(code)) for code in codes]
    for key, arch in zip(frame["arch"], arch_strs):
        if arch not in official:
            raise HarnessError(f"NASLib arch {key} maps to {arch}, which is not in the NB201 table")
    frame = frame.copy()
    frame["arch_str"] = arch_strs
    frame["index"] = np.asarray([official[arch] for arch in arch_strs], dtype=np.int64)
    return frame


def embedded_table(benchmark: str) -> pd.DataFrame:
    """The embedded zero-cost table of ``benchmark`` (nb101, nb201, nb301)."""
    if benchmark not in BENCHMARKS:
        raise choices("zero-cost benchmark", benchmark, BENCHMARKS)
    path = resources.files("harness.embedded") / "zc" / f"{benchmark}.parquet"
    with resources.as_file(path) as file:
        if not Path(file).is_file():
            raise HarnessError(f"the embedded zero-cost table {file} is missing; reinstall the package")
        return pd.read_parquet(file)


def proxies_of(frame: pd.DataFrame) -> tuple[str, ...]:
    """The score columns of a zero-cost frame other than params/FLOPs (zero-cost proxies proper)."""
    skip = {"dataset", "arch", "index", "arch_str", "naslib_idx", "val_accuracy", *COST_METRICS}
    return tuple(c for c in frame.columns if c not in skip)


class ZeroCostBenchmark(Benchmark):
    """A NASLib zero-cost table behind the query interface (rows = distinct archs of the table)."""

    def __init__(self, benchmark: str, frame: pd.DataFrame):
        self.name = f"{benchmark}-zc"
        self.space = benchmark
        self.frame = frame
        self.archs = np.asarray(list(dict.fromkeys(frame["arch"])), dtype=object)
        self._row = {arch: i for i, arch in enumerate(self.archs)}
        schedule = SCHEDULES[benchmark]
        columns: list[Column] = []
        self._values: dict[tuple[str, str, str, str], np.ndarray] = {}
        for dataset, part in frame.groupby("dataset", sort=False):
            rows = np.fromiter((self._row[a] for a in part["arch"]), dtype=np.int64, count=len(part))
            def add(split: str, metric: str, minimize: bool, description: str) -> None:
                column = Column(str(dataset), schedule, split, metric, (), (), minimize, description)
                values = np.full(len(self.archs), np.nan)
                values[rows] = part[metric if metric != "accuracy" else "val_accuracy"].to_numpy(np.float64)
                columns.append(column)
                self._values[column.key] = values
            add(VALID_SPLITS[benchmark], "accuracy", False, _ACCURACY_NOTES.get((benchmark, str(dataset)), _ACCURACY_NOTE))
            for metric in COST_METRICS:
                if metric in part:
                    add("cost", metric, True, f"{metric} (millions) from the NASLib table")
            for proxy in proxies_of(part):
                if part[proxy].notna().any():
                    add("zc", proxy, False, f"zero-cost proxy {proxy} (NASLib score, higher is better)")
        notes: tuple[str, ...] = (
            "NASLib zero-cost table (NAS-Bench-Suite-Zero); archs are row numbers in the table's own order or NASLib key strings",
        )
        if benchmark == "nb201":
            notes += ("row numbers are not NB201 indices: rows_of_nb201(index) maps those",)
        self._capabilities = Capabilities(self.name, tuple(columns), len(self.archs), notes)

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def resolve(self, archs: Any) -> np.ndarray:
        """Rows of ``archs``: a row number (the table's own order, not an NB201 index) or a NASLib key
        string such as ``"(0, 2, 3, 2, 3, 1)"``, or a 1-D sequence of those.

        A NASLib tuple is refused, not read as row numbers: give its key string ``str(t)``. NB201
        indices: :meth:`rows_of_nb201`.
        """
        if self.space == "nb201" and _is_naslib_nb201_tuple(archs):
            raise HarnessError(
                f"{archs!r} is a NASLib NB201 tuple, not {len(archs)} row numbers of {self.name}: look it up by its key "
                f"string zc.resolve({str(archs)!r}); an NB201 index with zc.rows_of_nb201(index); row numbers as a list"
            )
        if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu":  # row numbers: one vectorised check
            return rows_in_range(one_dimensional(archs, self.name), len(self.archs), self.name)
        if is_int(archs) or isinstance(archs, str):
            archs = [archs]
        elif isinstance(archs, np.ndarray):
            archs = one_dimensional(archs, self.name).tolist()
        elif not isinstance(archs, Iterable):
            raise HarnessError(
                f"{self.name} archs must be a row number 0..{len(self.archs) - 1}, a NASLib key string or a 1-D sequence "
                f"of those; got {archs!r}"
            )
        archs = list(archs)
        rows = np.fromiter((self._row_of(arch) for arch in archs), dtype=np.int64, count=len(archs))
        return rows_in_range(rows, len(self.archs), self.name)

    def _row_of(self, arch: Any) -> int:
        """A row number as given (range-checked by the caller), or the row of a NASLib key string."""
        if is_int(arch):
            return int(arch)
        if isinstance(arch, str) and arch in self._row:
            return self._row[arch]
        raise HarnessError(
            f"arch {arch!r} is not in the {self.name} table: give a row number 0..{len(self.archs) - 1} or a NASLib key "
            f"string such as {self.archs[0]!r}"
        )

    def rows_of_nb201(self, indices: Any) -> np.ndarray:
        """Rows of official NB201 indices (one or a 1-D sequence; the table's ``index`` column)."""
        if self.space != "nb201":
            raise HarnessError(f"rows_of_nb201 needs the nb201 zero-cost table, this is {self.name}")
        wanted = one_dimensional(np.asarray(indices), self.name)
        if wanted.dtype.kind not in "iu":
            raise HarnessError(f"NB201 indices are integers 0..{nb201_space.N_ARCHS - 1}, got {indices!r}")
        row_of_index = dict(zip(self.frame["index"], self.frame["arch"].map(self._row)))
        missing = [int(i) for i in wanted if i not in row_of_index]
        if missing:
            raise HarnessError(
                f"NB201 index {missing[0]} is not among the {len(row_of_index)} archs of the {self.name} table "
                f"({len(missing)} of {len(wanted)} missing); the table's indices are its 'index' column"
            )
        return np.asarray([row_of_index[i] for i in wanted], dtype=np.int64)

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        return self._values[column.key][rows][:, None, None]


def _is_naslib_nb201_tuple(value: Any) -> bool:
    """A tuple of 6 integers in 0..4: NASLib's NB201 encoding (the key of the nb201 table)."""
    return isinstance(value, tuple) and len(value) == 6 and all(is_int(c) and 0 <= c <= 4 for c in value)


def open_zerocost(benchmark: str = "nb201", path: str | Path | None = None) -> ZeroCostBenchmark:
    """The zero-cost table of ``benchmark``: embedded (``path=None``) or read from a NASLib JSON file."""
    frame = embedded_table(benchmark) if path is None else read_naslib_json(path, benchmark)
    return ZeroCostBenchmark(benchmark, frame)


def build_embedded(src_dir: str | Path, dest_dir: str | Path) -> list[Path]:
    """Write ``nb101/nb201/nb301.parquet`` from the NASLib JSON files under ``src_dir`` (maintainers)."""
    src_dir, dest_dir = Path(src_dir), Path(dest_dir)
    files = {
        "nb101": src_dir / "nb101" / "naslib-zc-nasbench101.json",
        "nb201": src_dir / "nb201" / "naslib-zc-nasbench201.json",
        "nb301": src_dir / "nb301" / "naslib-zc-nasbench301.json",
    }
    written = []
    for benchmark, file in files.items():
        frame = read_naslib_json(file, benchmark)
        out = dest_dir / f"{benchmark}.parquet"
        written.append(write_atomic(out, lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd")))
    return written
