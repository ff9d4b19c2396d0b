"""NAS-Bench-201 / NATS-Bench topology space behind the shared query interface.

Two sources, one interface:

* ``load_benchmark("nb201")`` opens the table embedded in the package: the real final accuracies
  (mean over training seeds) of all 15,625 architectures, plus parameter counts. Every column has a
  single epoch (the last) and the single seed label ``"mean"``.
* ``load_benchmark("nb201", root=STORE)`` opens a store written by ``harness data convert nb201
  SRC STORE`` from the official files (the NATS ``NATS-tss-v1_0-3ffb9-simple/`` directory or a
  NAS-Bench-201 ``.pth``): whole per-epoch curves of every split, per seed, memory-mapped.

Datasets and splits follow the official API: ``cifar10-valid`` (train on 25k; ``x-valid`` = the
other 25k of the training set, ``ori-test`` = the test set), ``cifar10`` (train on 50k; ``ori-test``
only), ``cifar100`` and ``ImageNet16-120`` (``x-valid`` and ``x-test`` = the two halves of the test
set, ``ori-test`` = all of it). Schedules ``"12"`` and ``"200"`` are separate training runs (their
learning-rate schedules differ), not prefixes of each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.benchmark import (
    Benchmark,
    Capabilities,
    Column,
    one_dimensional,
    rows_in_range,
)
from harness.errors import HarnessError
from harness.spaces import nb201 as space
from harness.store import ColumnarStore, read_rows

NAME = "nb201"
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# Percent. The 341 NB201 cells whose output is cut off from the input score exactly 10.00 % (chance)
# on CIFAR-10; "accuracy < 10" would keep them all, so degenerate means "at or below chance".
DEGENERATE_ACCURACY = 10.0

# embedded parquet column -> (dataset, schedule, split, metric)
_EMBEDDED_COLUMNS: dict[str, tuple[str, str, str, str]] = {
    "cifar10-valid_valid_200": ("cifar10-valid", "200", "x-valid", "accuracy"),
    "cifar10-valid_test_200": ("cifar10-valid", "200", "ori-test", "accuracy"),
    "cifar10_test_200": ("cifar10", "200", "ori-test", "accuracy"),
    "cifar10-valid_valid_12": ("cifar10-valid", "12", "x-valid", "accuracy"),
    "cifar10_test_12": ("cifar10", "12", "ori-test", "accuracy"),
    "cifar100_valid_12": ("cifar100", "12", "x-valid", "accuracy"),
    "cifar100_test_12": ("cifar100", "12", "x-test", "accuracy"),
    "ImageNet16-120_valid_12": ("ImageNet16-120", "12", "x-valid", "accuracy"),
    "ImageNet16-120_test_12": ("ImageNet16-120", "12", "x-test", "accuracy"),
}
_EMBEDDED_PARAMS = "params_mb_cifar10"


class NB201Benchmark(Benchmark):
    """NB201 architectures (index in the official order) over one source of columns."""

    name = NAME

    def __init__(self, arch_strings: list[str], columns: tuple[Column, ...], source: str, notes: tuple[str, ...],
                 elsewhere: str = "", n_with_data: int | None = None):
        if len(arch_strings) != space.N_ARCHS:
            raise HarnessError(f"an NB201 arch table has {space.N_ARCHS} rows, this one has {len(arch_strings)}")
        self.arch_strings = arch_strings
        self.source = source
        self._index = {arch: i for i, arch in enumerate(arch_strings)}
        self._capabilities = Capabilities(NAME, columns, space.N_ARCHS, notes, elsewhere=elsewhere, n_with_data=n_with_data)

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def resolve(self, archs: Any) -> np.ndarray:
        """Indices of ``archs``: an index, an arch string, a 6-op tuple, or a 1-D sequence of those."""
        if isinstance(archs, (int, np.integer, str)) or _is_op_tuple(archs) or not isinstance(archs, Iterable):
            archs = [archs]
        array = np.asarray(archs) if not isinstance(archs, np.ndarray) else archs
        if array.dtype.kind in "iu":
            return rows_in_range(one_dimensional(array, NAME), space.N_ARCHS, "NB201", "arch index")
        return np.fromiter((self._index_of(a) for a in archs), dtype=np.int64, count=len(archs))

    def _index_of(self, arch: Any) -> int:
        if isinstance(arch, (int, np.integer)):
            return int(self.resolve(np.asarray([arch]))[0])
        if isinstance(arch, str):
            if arch not in self._index:
                space.arch_to_ops(arch)  # raises naming the fault when malformed
                raise HarnessError(f"arch string {arch!r} is well formed but not in the NB201 table")
            return self._index[arch]
        if _is_op_tuple(arch):
            return self._index[space.ops_to_arch(arch)]
        raise HarnessError(f"not an NB201 architecture: {arch!r}; give an index, arch string or 6-op tuple")

    def arch_string(self, index: int) -> str:
        return self.arch_strings[int(self.resolve(index)[0])]

    def arch_label(self, row: Any) -> str:
        return f"[{int(row)}] {self.arch_string(int(row))}"

    def unique_archs(self, archs: Any) -> np.ndarray:
        """``archs`` with isomorphs removed: the first (in the given order) of each canonical class."""
        rows = self.resolve(archs)
        forms = [space.canonical(space.arch_to_ops(self.arch_strings[r])) for r in rows]
        _, first = np.unique(np.asarray(forms), return_index=True)
        return rows[np.sort(first)]

    def non_degenerate(self, archs: Any, threshold: float = DEGENERATE_ACCURACY) -> np.ndarray:
        """``archs`` whose CIFAR-10 200-epoch test accuracy (seed mean) is above ``threshold`` (chance)."""
        rows = self.resolve(archs)
        try:
            accuracy = self.final(rows, "cifar10", "accuracy", "ori-test", "200")
        except HarnessError as err:
            raise HarnessError(f"dropping degenerate archs needs each arch's CIFAR-10 200-epoch test accuracy: {err}; "
                               "the embedded data has it for all 15,625 archs, a partial store may not") from None
        return rows[accuracy > threshold]


class _TableBenchmark(NB201Benchmark):
    """The embedded table: one value (seed mean, last epoch) per column."""

    def __init__(self, frame: pd.DataFrame):
        columns = []
        for name, (dataset, schedule, split, metric) in _EMBEDDED_COLUMNS.items():
            columns.append(
                Column(dataset, schedule, split, metric, ("mean",), (int(schedule),), minimize=False,
                       description=f"final {split} accuracy (%), mean over seeds; embedded column {name}")
            )
        for dataset in ("cifar10-valid", "cifar10"):
            for schedule in ("200", "12"):
                columns.append(
                    Column(dataset, schedule, "cost", "params", (), (), minimize=True,
                           description="parameters in millions (CIFAR-10 classifier)")
                )
        notes = (
            "embedded table: final accuracies only (seed mean); convert the official files for curves",
            "cifar100 and ImageNet16-120 have only the 12-epoch finals here",
        )
        elsewhere = ("the embedded table holds final accuracies only (cifar100 and ImageNet16-120: 12-epoch); "
                     "for curves and the rest, convert the official files (harness data convert nb201) and pass "
                     "root= (--root)")
        super().__init__(frame["arch_str"].tolist(), tuple(columns), "embedded", notes, elsewhere)
        self._values = {key: frame[name].to_numpy(np.float64) for name, key in _EMBEDDED_COLUMNS.items()}
        self._params = frame[_EMBEDDED_PARAMS].to_numpy(np.float64)

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        source = self._params if column.metric == "params" else self._values[column.key]
        return source[rows][:, None, None]


class _StoreBenchmark(NB201Benchmark):
    """A converted store: per-seed, per-epoch curves, memory-mapped.

    A store converted from a partial source (a few arch files) has records of some archs only
    (``archs.row = -1`` for the others): ``capabilities().n_with_data`` counts them,
    :meth:`archs_with_data` lists them, and a query that names an arch without a record raises.
    """

    def __init__(self, store: ColumnarStore):
        if store.benchmark != NAME:
            raise HarnessError(f"{store.path} holds a {store.benchmark!r} store, not {NAME!r}")
        self.store = store
        archs = store.table("archs")
        # official index -> array row (-1 = no record); a store of all archs may omit the column
        rows = archs["row"] if "row" in archs else np.arange(len(archs))
        self._store_row = np.asarray(rows, dtype=np.int64)
        self._with_data = np.flatnonzero(self._store_row >= 0)
        self._with_data.setflags(write=False)
        super().__init__(archs["arch_str"].tolist(), store.columns, str(store.path), tuple(store.extra.get("notes", ())),
                         n_with_data=len(self._with_data))

    def archs_with_data(self, progress: bool = False) -> np.ndarray:
        """Sorted indices (read-only) of the archs this store has a record of."""
        return self._with_data

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        store_rows = self._store_row[rows]
        absent = rows[store_rows < 0]
        if absent.size:
            raise HarnessError(
                f"NB201 arch{'s' if absent.size > 1 else ''} {', '.join(str(int(a)) for a in absent[:5])}"
                f"{' (first 5)' if absent.size > 5 else ''}: no record in this store ({absent.size:,} of the {len(rows):,} "
                f"archs asked); it holds {len(self._with_data):,} of the {space.N_ARCHS:,} archs: archs_with_data() "
                "lists them and sample(n, seed, with_data=True) draws among them"
            )
        return read_rows(self.store.array(column), store_rows, seed_pos, epoch_pos)


def _is_op_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == len(space.EDGES) and all(isinstance(v, str) for v in value)


def embedded_table() -> pd.DataFrame:
    """The embedded final-accuracy table (row i = official index i)."""
    path = resources.files("harness.embedded") / "nb201" / "final_accuracies.parquet"
    with resources.as_file(path) as file:
        return pd.read_parquet(file)


def open_benchmark(root: Path | None = None) -> NB201Benchmark:
    """The embedded table (``root=None``) or a converted store directory."""
    if root is None:
        return _TableBenchmark(embedded_table())
    if root.is_dir() and (root / "manifest.json").is_file():
        return _StoreBenchmark(ColumnarStore(root))
    if root.exists():
        raise HarnessError(
            f"{root} is not a converted NB201 store; convert the official files first: "
            f"harness data convert nb201 {root} STORE_DIR"
        )
    raise HarnessError(f"{root} does not exist; expected a store written by 'harness data convert nb201'")


def convert(src: Path, dest: Path, overwrite: bool = False) -> Path:
    """Convert the official NATS simple directory or NB201 ``.pth`` at ``src`` into a store at ``dest``."""
    from harness.adapters.nb201_convert import convert_nb201

    return convert_nb201(src, dest, overwrite=overwrite)
