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

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.benchmark import Benchmark, Capabilities, Column
from harness.errors import HarnessError, choices

BENCHMARKS = ("nb101", "nb201", "nb301")
COST_METRICS = ("params", "flops")
# Training budget that ``val_accuracy`` refers to, used as the column's schedule.
SCHEDULES = {"nb101": "108", "nb201": "200", "nb301": "final"}
VALID_SPLITS = {"nb101": "valid", "nb201": "x-valid", "nb301": "valid"}
_TOP_KEYS = {"nb101": "nasbench101", "nb301": "nasbench301"}
_NOT_PROXIES = {"idx", "arch", "val_accuracy"}


def read_naslib_json(path: str | Path, benchmark: str) -> pd.DataFrame:
    """Parse a NASLib zero-cost JSON file into a tidy frame (one row per dataset and arch).

    Columns: ``dataset``, ``arch`` (the NASLib key, verbatim), ``val_accuracy``, one column per
    proxy score (NaN where the file lacks it). For NB201 also ``naslib_idx``, ``arch_str`` and
    ``index`` (official order). Raises HarnessError for a file that is not this format.
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
    for dataset, records in data.items():
        if not isinstance(records, dict):
            raise HarnessError(f"{path}: dataset {dataset!r} does not map archs to records")
        for arch, record in records.items():
            if not isinstance(record, dict) or "val_accuracy" not in record:
                raise HarnessError(f"{path}: record of {dataset} arch {arch} has no val_accuracy")
            row: dict[str, Any] = {"dataset": dataset, "arch": arch, "val_accuracy": float(record["val_accuracy"])}
            for key, value in record.items():
                if key in _NOT_PROXIES:
                    continue
                score = value["score"] if isinstance(value, dict) else value
                row[key] = float(score)
            if benchmark == "nb201":
                row["naslib_idx"] = int(record["idx"]) if "idx" in record else -1
            rows.append(row)
    frame = pd.DataFrame(rows)
    if benchmark == "nb201":
        frame = _add_nb201_index(frame)
    scores = sorted(c for c in frame.columns if c not in {"dataset", "arch", "val_accuracy", "naslib_idx", "arch_str", "index"})
    lead = ["dataset", "arch"] + [c for c in ("index", "arch_str", "naslib_idx") if c in frame.columns]
    return frame[lead + ["val_accuracy"] + scores]


def _add_nb201_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Map NASLib's 6-int tuples to arch strings and official indices (raises if one does not map)."""
    from harness.adapters.nb201 import embedded_table
    from harness.spaces import nb201 as space

    official = {arch: i for i, arch in enumerate(embedded_table()["arch_str"].tolist())}
    arch_strs, indices = [], []
    for key in frame["arch"]:
        try:
            code = tuple(int(c) for c in key.strip("()").split(","))
        except ValueError:
            raise HarnessError(f"not a NASLib NB201 encoding: {key!r}") from None
        arch = space.ops_to_arch(space.naslib_tuple_to_ops(code))
        if arch not in official:
            raise HarnessError(f"NASLib arch {key} maps to {arch}, which is not in the NB201 table")
        arch_strs.append(arch)
        indices.append(official[arch])
    frame = frame.copy()
    frame["arch_str"] = arch_strs
    frame["index"] = np.asarray(indices, dtype=np.int64)
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
            add(VALID_SPLITS[benchmark], "accuracy", False, "final validation accuracy (%) from the NASLib table")
            for metric in COST_METRICS:
                if metric in part:
                    add("cost", metric, True, f"{metric} (millions) from the NASLib table")
            for proxy in proxies_of(part):
                if part[proxy].notna().any():
                    add("zc", proxy, False, f"zero-cost proxy {proxy} (NASLib score, higher is better)")
        notes = ("NASLib zero-cost table (NAS-Bench-Suite-Zero); archs are NASLib encodings",)
        self._capabilities = Capabilities(self.name, tuple(columns), len(self.archs), notes)

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def resolve(self, archs: Any) -> np.ndarray:
        """Rows of ``archs``: row numbers or NASLib encoding strings (one or many)."""
        if isinstance(archs, (int, np.integer, str)):
            archs = [archs]
        array = np.asarray(archs)
        if array.dtype.kind in "iu":  # row numbers: one vectorised range check
            bad = (array < 0) | (array >= len(self.archs))
            if bad.any():
                raise HarnessError(f"row {int(array[bad][0])} out of range for {self.name}: valid 0..{len(self.archs) - 1}")
            return array.astype(np.int64).ravel()
        out = np.empty(len(archs), dtype=np.int64)
        for i, arch in enumerate(archs):
            if isinstance(arch, (int, np.integer)):
                if not 0 <= int(arch) < len(self.archs):
                    raise HarnessError(f"row {int(arch)} out of range for {self.name}: valid 0..{len(self.archs) - 1}")
                out[i] = int(arch)
            elif isinstance(arch, str) and arch in self._row:
                out[i] = self._row[arch]
            else:
                raise HarnessError(f"arch {arch!r} is not in the {self.name} table (give a row number or NASLib encoding)")
        return out

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        return self._values[column.key][rows][:, None, None]


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
        tmp = out.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False, compression="zstd")
        tmp.replace(out)
        written.append(out)
    return written
