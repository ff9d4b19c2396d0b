"""NAS-Bench-101 behind the harness query interface, without TensorFlow.

``open_benchmark(None)`` opens the embedded real table of 20,001 of the 423,624 cells (validation
accuracy at the end of the 4/12/36/108-epoch budgets from one training run each, 108-epoch training
time, params), with the graphs (:meth:`Nb101Benchmark.spec`) of 1,000 of them.
``open_benchmark(store_dir)`` opens a store written by :func:`convert` from the official
``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord``.

Naming
------
* dataset ``"cifar10"``; schedule ``"4"``, ``"12"``, ``"36"``, ``"108"`` = the epoch budget of a
  training run (separate runs, not prefixes of each other);
* epochs: ``budget // 2`` (halfway) and ``budget`` (final), the two points the official file keeps;
* seeds: the three repeats ``0, 1, 2`` in file order (the official API instead draws one with the
  global ``random`` module); the embedded table has one run per cell, seed label ``"single"``;
* splits ``"train"``, ``"valid"``, ``"test"`` with metric ``"accuracy"`` in percent (the file stores
  fractions); split ``"train"`` metric ``"time"`` = training seconds up to that epoch (no evaluation);
  split ``"cost"`` metric ``"params"`` = trainable parameters in millions (seeds=(), epochs=()).
* NAS-Bench-101 records no losses: a loss query raises NotAvailableError.

Architectures are identified by a :class:`~harness.spaces.nb101.ModelSpec` (hashed after pruning), by
the official module hash, or by the row index; rows are sorted by hash, a stable order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness.adapters import nb101_tfrecord as tfrecord
from harness.benchmark import (
    Absence,
    Benchmark,
    Capabilities,
    Column,
    one_dimensional,
    rows_in_range,
)
from harness.errors import HarnessError
from harness.rng import is_int
from harness.spaces.nb101 import N_CELLS, ModelSpec
from harness.store.columnar import (
    ColumnarStore,
    StoreWriter,
    check_destination,
    read_rows,
)

NAME = "nb101"
DATASET = "cifar10"
BUDGETS = (4, 12, 36, 108)
SEEDS = (0, 1, 2)
EMBEDDED_SEED = "single"
NO_LOSSES = "not available: NAS-Bench-101 records no losses (training, validation or test), only accuracies"
_SPLITS = {"train": "train_accuracy", "valid": "validation_accuracy", "test": "test_accuracy"}
_ACCURACY_NOTE = "percent; the official file stores fractions"


def accuracy_column(budget: int, split: str, seeds: tuple[Any, ...], epochs: tuple[int, ...]) -> Column:
    return Column(DATASET, str(budget), split, "accuracy", seeds, epochs, minimize=False, description=_ACCURACY_NOTE)


def time_column(budget: int, seeds: tuple[Any, ...], epochs: tuple[int, ...]) -> Column:
    return Column(DATASET, str(budget), "train", "time", seeds, epochs, minimize=True, description="training seconds, evaluation excluded")


def params_column(budget: int) -> Column:
    return Column(DATASET, str(budget), "cost", "params", (), (), minimize=True, description="trainable parameters (millions)")


def _hash_array(hashes: Sequence[str] | np.ndarray) -> np.ndarray:
    """Module hashes as ``S32`` bytes; a longer one is refused (``S32`` would cut it to a real hash)."""
    array = np.asarray(hashes, dtype="S")
    if array.dtype.itemsize > 32:
        longer = array[np.char.str_len(array) > 32][0].decode()
        raise HarnessError(f"NB101 module hash {longer!r} is longer than 32 characters; a module hash is 32 hex digits")
    return array.astype("S32")


class Nb101Benchmark(Benchmark):
    """NAS-Bench-101 rows sorted by module hash; columns read through ``array_of``."""

    name = NAME

    def __init__(
        self,
        hashes: np.ndarray,
        params_millions: np.ndarray,
        columns: Sequence[Column],
        array_of: Callable[[Column], np.ndarray],
        spec_table: Callable[[], pd.DataFrame],
        notes: Sequence[str] = (),
        elsewhere: str = "",
    ) -> None:
        self.hashes = _hash_array(hashes)
        if len(self.hashes) > 1 and not (self.hashes[:-1] < self.hashes[1:]).all():
            raise HarnessError("NB101 rows must be sorted by unique module hash")
        self._params = np.asarray(params_millions, dtype=np.float64)
        self._array_of = array_of
        self._spec_table = spec_table
        self._specs: pd.DataFrame | None = None
        self._capabilities = Capabilities(
            benchmark=NAME, columns=tuple(columns), n_archs=len(self.hashes), notes=tuple(notes),
            absent=(Absence(NO_LOSSES, metric="loss"),), elsewhere=elsewhere,
        )

    def capabilities(self) -> Capabilities:
        return self._capabilities

    # -- architectures --------------------------------------------------------------------------

    def row_of_hash(self, hashes: Sequence[str] | np.ndarray | str) -> np.ndarray:
        """Rows of module hashes, vectorised (binary search in the sorted hash column)."""
        wanted = _hash_array(one_dimensional(np.asarray(hashes), NAME))
        rows = np.searchsorted(self.hashes, wanted)
        found = rows < len(self.hashes)
        found[found] = self.hashes[rows[found]] == wanted[found]
        if not found.all():
            missing = wanted[~found][0].decode()
            raise HarnessError(f"NB101 cell with module hash {missing!r} is not in this benchmark: {self.extent()}")
        return rows.astype(np.int64)

    def extent(self) -> str:
        """How many of the NB101 cells this data holds, and where the rest are (for error messages)."""
        if len(self.hashes) >= N_CELLS:
            return f"it holds all {N_CELLS:,} NB101 cells"
        return (f"it holds {len(self.hashes):,} of the {N_CELLS:,} NB101 cells; the official tfrecord holds all "
                "(harness data convert nb101, then root= / --root)")

    def resolve(self, archs: Any) -> np.ndarray:
        """Rows for a ModelSpec, a module hash, a row index, or a 1-D sequence/array of those."""
        if isinstance(archs, (ModelSpec, str, int, np.integer)) or not isinstance(archs, Iterable):
            return self.resolve([archs])
        items = one_dimensional(archs, NAME) if isinstance(archs, np.ndarray) else list(archs)
        if isinstance(items, np.ndarray) and items.dtype.kind in "iu":
            return rows_in_range(items, len(self.hashes), "NB101", "row index")
        if isinstance(items, np.ndarray) and items.dtype.kind in "US":
            return self.row_of_hash(items)
        if all(is_int(a) for a in items):
            return rows_in_range(np.asarray(items), len(self.hashes), "NB101", "row index")
        hashes = []
        for a in items:
            if isinstance(a, ModelSpec):
                hashes.append(a.hash())
            elif isinstance(a, str) and len(a) == 32:
                hashes.append(a)
            elif not is_int(a):
                raise HarnessError(
                    f"cannot read NB101 arch {a!r}: give a ModelSpec, a 32-hex module hash or a row index 0..{len(self.hashes) - 1}"
                )
        if len(hashes) < len(items):
            first = next(a for a in items if is_int(a))
            raise HarnessError(
                f"NB101 archs mix row indices (e.g. {first}) with ModelSpecs or module hashes; give one kind per list: "
                "all row indices, or all ModelSpecs/32-hex module hashes"
            )
        return self.row_of_hash(hashes)

    def arch_label(self, row: Any) -> str:
        return f"[{int(row)}] {self.hash_of(int(row))[0]}"

    def hash_of(self, rows: Any) -> list[str]:
        return [h.decode() for h in self.hashes[self.resolve(rows)]]

    def spec(self, arch: Any) -> ModelSpec:
        """The (pruned) cell stored for one architecture; raises for a cell whose graph the data lacks
        (the embedded table has the graphs of 1,000 of its 20,001 cells, a converted store of all)."""
        row = int(self.resolve(arch)[0])
        if self._specs is None:
            self._specs = self._spec_table().set_index("hash")
        key = self.hashes[row].decode()
        if key not in self._specs.index:
            raise HarnessError(
                f"no graph for NB101 row {row} (module hash {key}): the data opened holds the graphs of "
                f"{len(self._specs):,} of its {len(self.hashes):,} cells; the official tfrecord holds every cell's "
                "graph (harness data convert nb101, then root= / --root)"
            )
        entry = self._specs.loc[key]
        ops = str(entry["operations"]).split(",")
        matrix = np.frombuffer(str(entry["adjacency"]).encode(), dtype=np.uint8) - ord("0")
        return ModelSpec(matrix.reshape(len(ops), len(ops)), ops)

    # -- reading --------------------------------------------------------------------------------

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        if column.metric == "params":
            return self._params[rows][:, None, None]
        return read_rows(self._array_of(column), rows, seed_pos, epoch_pos)



# ----------------------------------------------------------------------------------------------
# Opening


def open_benchmark(root: Path | None = None, **options: object) -> Nb101Benchmark:
    """The embedded 20,001-cell table (root=None) or a converted store directory."""
    if options:
        raise HarnessError(f"nb101 takes no options, got {sorted(options)}")
    if root is None:
        return open_embedded()
    root = Path(root)
    if root.is_file():
        raise HarnessError(
            f"{root} is a file; convert the official tfrecord once with 'harness data convert nb101 {root} DEST' "
            "and open DEST"
        )
    store = ColumnarStore(root)
    if store.benchmark != NAME:
        raise HarnessError(f"{root} holds a {store.benchmark!r} store, not {NAME!r}")
    archs = store.table("archs")
    budgets = store.extra.get("budgets")
    if not isinstance(budgets, list) or not budgets or not all(b in BUDGETS for b in budgets):
        raise HarnessError(
            f"{root}/manifest.json: extra.budgets is {budgets!r}; an NB101 store lists its epoch budgets, some of {BUDGETS}"
        )
    columns = [*store.columns, *(params_column(b) for b in budgets)]
    return Nb101Benchmark(
        hashes=archs["hash"].to_numpy(),
        params_millions=archs["params"].to_numpy() / 1e6,
        columns=columns,
        array_of=store.array,
        spec_table=lambda: store.table("specs"),
        notes=(f"converted from {store.manifest['source']}",),
    )


EMBEDDED_TABLE = "nb101-1k.csv"
EMBEDDED_VALUES = "nb101-20k.parquet"
NASLIB_TABLE = "naslib-zc-nb101.csv"


EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded" / "nb101"


def embedded_table() -> pd.DataFrame:
    """The embedded real 1,000 cells with their graphs: ``hash``, ``adjacency`` (digits of the
    row-major matrix), ``operations`` (comma-joined), ``valid_4/12/36/108`` (fractions), ``time_108``,
    ``params`` (see harness/embedded/nb101/ATTRIBUTION.md). Their values equal those of the same
    cells in :func:`embedded_values`."""
    return pd.read_csv(EMBEDDED_DIR / EMBEDDED_TABLE, dtype={"hash": str, "adjacency": str, "operations": str})


def embedded_values() -> pd.DataFrame:
    """The embedded real 20,001 cells without graphs, sorted by module hash: ``hash``,
    ``valid_4/12/36/108`` (fractions, float32 as published), ``time_108`` (float32), ``params`` (int32)
    (see harness/embedded/nb101/ATTRIBUTION.md)."""
    return pd.read_parquet(EMBEDDED_DIR / EMBEDDED_VALUES)


def naslib_zero_cost() -> pd.DataFrame:
    """NASLib's 500 NB101 cells: module hash, 108-epoch validation accuracy (percent, one run) and
    11 zero-cost proxies (see ATTRIBUTION.md). Several rows may share a hash (different runs)."""
    return pd.read_csv(EMBEDDED_DIR / NASLIB_TABLE, dtype={"hash": str})


def open_embedded() -> Nb101Benchmark:
    """The embedded 20,001 cells (:func:`embedded_values`); :meth:`Nb101Benchmark.spec` reads the graphs
    of the 1,000 in :func:`embedded_table`."""
    table = embedded_values()
    seeds = (EMBEDDED_SEED,)
    arrays: dict[tuple[str, str, str, str], np.ndarray] = {}
    columns: list[Column] = []
    for budget in BUDGETS:
        column = accuracy_column(budget, "valid", seeds, (budget,))
        arrays[column.key] = (100.0 * table[f"valid_{budget}"].to_numpy(dtype=np.float64))[:, None, None]
        columns += [column, params_column(budget)]
    column = time_column(108, seeds, (108,))
    arrays[column.key] = table["time_108"].to_numpy(dtype=np.float64)[:, None, None]
    columns.append(column)
    return Nb101Benchmark(
        hashes=table["hash"].to_numpy(),
        params_millions=table["params"].to_numpy(dtype=np.float64) / 1e6,
        columns=columns,
        array_of=lambda c: arrays[c.key],
        spec_table=lambda: embedded_table()[["hash", "adjacency", "operations"]],
        notes=(
            f"embedded: {len(table):,} of the {N_CELLS:,} NB101 cells (real), one training run each (which of the 3 "
            "repeats is not recorded); validation accuracy only; graphs (spec()) of 1,000 of them; convert the "
            "official tfrecord for all cells and all metrics",
        ),
        elsewhere=(f"the embedded table holds validation accuracy of {len(table):,} of the {N_CELLS:,} cells only; "
                   "for test accuracy, the halfway epoch and all cells, convert the official tfrecord "
                   "(harness data convert nb101) and pass root= (--root)"),
    )


# ----------------------------------------------------------------------------------------------
# Conversion


def convert(src: Path, dest: Path, overwrite: bool = False, batch_size: int = 4096) -> Path:
    """Convert an official NB101 tfrecord into a harness columnar store at ``dest``.

    One pass over the records (CRC-checked), values gathered into per-record arrays, then scattered
    into dense ``[cells, 3 repeats, 2 epochs]`` float32 arrays per (budget, split, metric). Rows are
    cells sorted by module hash; repeat ``r`` is the ``r``-th record of that cell and budget in file
    order (the order the official API keeps). Written to a temp dir and renamed.
    """
    src, dest = Path(src), Path(dest)
    check_destination(src, dest, overwrite)
    started = time.perf_counter()
    data = tfrecord.open_tfrecord(src)
    index = tfrecord.index_records(data, name=str(src))
    n = len(index.lengths)
    rec_hash = np.empty(n, dtype="S32")
    rec_budget = np.empty(n, dtype=np.int64)
    rec_params = np.empty(n, dtype=np.int64)
    rec_total = np.empty(n, dtype=np.float64)
    # values[i, point, field]: point 0 halfway, 1 final; fields train/valid/test accuracy, time, epoch
    rec_values = np.full((n, 2, 5), np.nan, dtype=np.float64)
    specs: dict[bytes, tuple[str, str]] = {}
    fields = ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time", "current_epoch")
    with tqdm(total=n, desc=f"convert {src.name}", unit="rec") as bar:
        for first, batch in tfrecord.iter_record_batches(data, index, batch_size, name=str(src)):
            for i, payload in enumerate(batch, start=first):
                where = f"{src} record #{i} at byte offset {int(index.record_offsets[i])}"
                record = tfrecord.decode_record(payload, where)
                evaluations = record.metrics.evaluation_data
                if len(evaluations) < 3:
                    raise HarnessError(f"{where} has {len(evaluations)} evaluations; NB101 records have 3 (init, halfway, final)")
                key = record.module_hash.encode()
                rec_hash[i] = key
                rec_budget[i] = record.epochs
                if record.metrics.trainable_parameters is None:
                    raise HarnessError(f"{where} has no trainable_parameters; every NB101 record holds its parameter count")
                rec_params[i] = record.metrics.trainable_parameters
                rec_total[i] = np.nan if record.metrics.total_time is None else record.metrics.total_time
                for point, evaluation in enumerate(evaluations[1:3]):
                    rec_values[i, point] = [np.nan if getattr(evaluation, f) is None else getattr(evaluation, f) for f in fields]
                if key not in specs:
                    specs[key] = ("".join(map(str, record.adjacency.ravel().tolist())), ",".join(record.operations))
            bar.update(len(batch))
    return _write_store(src, dest, overwrite, rec_hash, rec_budget, rec_params, rec_total, rec_values, specs, started)


def _write_store(
    src: Path,
    dest: Path,
    overwrite: bool,
    rec_hash: np.ndarray,
    rec_budget: np.ndarray,
    rec_params: np.ndarray,
    rec_total: np.ndarray,
    rec_values: np.ndarray,
    specs: dict[bytes, tuple[str, str]],
    started: float,
) -> Path:
    hashes, rows = np.unique(rec_hash, return_inverse=True)
    budgets = tuple(int(b) for b in np.unique(rec_budget))
    unknown = sorted(set(budgets) - set(BUDGETS))
    if unknown:
        raise HarnessError(f"{src}: unexpected epoch budgets {unknown}; NB101 has {BUDGETS}")
    # repeat index = rank of the record among records of the same (cell, budget), in file order
    order = np.lexsort((np.arange(len(rows)), rec_budget, rows))
    group = rows[order] * 1000 + rec_budget[order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    rank_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    repeat = np.empty_like(rank_sorted)
    repeat[order] = rank_sorted
    if repeat.max(initial=0) >= len(SEEDS):
        i = int(np.flatnonzero(repeat >= len(SEEDS))[0])
        raise HarnessError(f"{src}: cell {rec_hash[i].decode()} has more than {len(SEEDS)} runs at {rec_budget[i]} epochs")
    params = np.zeros(len(hashes), dtype=np.int64)
    params[rows] = rec_params
    with StoreWriter(dest, benchmark=NAME, source=str(src), overwrite=overwrite) as writer:
        for budget in budgets:
            mine = rec_budget == budget
            halfway = rec_values[mine, 0, 4]
            if not np.allclose(halfway[~np.isnan(halfway)], budget // 2):
                raise HarnessError(f"{src}: halfway evaluations of the {budget}-epoch runs are not at epoch {budget // 2}")
            epochs = (budget // 2, budget)
            targets = [accuracy_column(budget, split, SEEDS, epochs) for split in _SPLITS]
            targets.append(time_column(budget, SEEDS, epochs))
            for field, column in enumerate(targets):
                array = writer.add_column(column, len(hashes))
                array[rows[mine], repeat[mine], :] = rec_values[mine, :, field] * (100.0 if field < 3 else 1.0)
            total = writer.add_column(
                Column(DATASET, str(budget), "train", "total_time", SEEDS, (), minimize=True,
                       description="seconds of the whole run, training and evaluation"),
                len(hashes),
            )
            total[rows[mine], repeat[mine], 0] = rec_total[mine]
        text = [h.decode() for h in hashes]
        writer.add_table("archs", pd.DataFrame({"hash": text, "params": params}))
        writer.add_table(
            "specs",
            pd.DataFrame({"hash": text, "adjacency": [specs[h][0] for h in hashes], "operations": [specs[h][1] for h in hashes]}),
        )
        writer.extra.update(budgets=list(budgets), n_records=int(len(rows)), seconds=round(time.perf_counter() - started, 3))
    return dest
