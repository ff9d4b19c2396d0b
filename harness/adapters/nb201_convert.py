"""Convert the official NB201 / NATS-Bench tss files into a harness columnar store.

``convert_nb201(src, dest)`` reads a ``NATS-tss-v1_0-3ffb9-simple/`` directory or a NAS-Bench-201
``.pth`` one architecture at a time (:mod:`harness.adapters.nb201_files`) and writes one dense
float32 array ``[evaluated archs, seeds, epochs]`` per column (see :mod:`harness.store.columnar`).
The ``archs`` table maps each of the 15,625 official indices to its array row (``row = -1``: the
source has no record for it), so a partial source makes a small store:

* per-epoch columns ``(dataset, schedule, split, metric)`` for datasets ``cifar10-valid``,
  ``cifar10``, ``cifar100``, ``ImageNet16-120``; schedules ``"12"``, ``"200"``; splits ``train``,
  ``x-valid``, ``x-test``, ``ori-test`` (only those the files hold for that dataset); metrics
  ``loss``, ``accuracy`` (%), ``time`` (seconds of that epoch). Epoch ``t`` (1-based) is the
  official ``iepoch = t - 1``. A column lists only the epochs at which the files record it: at
  hp=200 the splits evaluated once after training (cifar10-valid ``ori-test``, cifar100 and
  ImageNet16-120 ``x-valid``/``x-test``) have loss and accuracy columns of epoch 200 alone.
* cost columns ``(dataset, schedule, "cost", params|flops|latency)`` without seeds or epochs, as the
  official ``get_cost_info(index, dataset, hp)``.

The seeds of a (dataset, schedule) are the sorted union over architectures; a seed an architecture
was not trained with is NaN (ragged seeds, never imputed). Because that union is only known after the
last file, values first go to scratch arrays (a seed gets a slot when first seen) inside the
writer's temporary directory; the final arrays are filled from them in sorted-seed order, and the
store is renamed into place only when complete. An exception or Ctrl-C at any point leaves no store.

Decoding the bz2 pickles is most of the work (about 13 ms of CPU per arch file), so worker processes
decode chunks of files (:meth:`NatsSimpleDir.records`) while this process writes the records in
index order; the store is byte-identical for any number of workers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness.adapters.nb201_files import (
    COST_METRICS,
    DATASETS,
    EPOCH_METRICS,
    SCHEDULES,
    SPLITS,
    NB201Source,
    RunRecord,
    open_source,
)
from harness.benchmark import Column
from harness.errors import HarnessError
from harness.store import StoreWriter, check_destination

BENCHMARK = "nb201"
MINIMIZE = {"loss": True, "accuracy": False, "time": True, "params": True, "flops": True, "latency": True}
_COPY_ROWS = 2048  # rows per chunk when moving scratch arrays into the final ones
NOTES = (
    "seeds are ragged: a seed an architecture was not trained with is NaN",
    "hp=200: cifar10-valid ori-test, and cifar100/ImageNet16-120 x-valid and x-test, are evaluated "
    "only after the last epoch: their loss and accuracy columns hold epoch 200 only (their time is listed every epoch)",
    "time = seconds of that one epoch (official cur_time); the official all_time is its running sum",
)


def _description(split: str, metric: str) -> str:
    if metric == "loss":
        return f"cross-entropy on the {split} set after each epoch"
    if metric == "accuracy":
        return f"top-1 accuracy (%) on the {split} set after each epoch"
    if metric == "time":
        what = "training" if split == "train" else f"evaluating on the {split} set"
        return f"seconds spent {what} in that epoch (official cur_time)"
    return {
        "params": "parameters in millions",
        "flops": "FLOPs in millions",
        "latency": "inference latency in seconds (official get_latency)",
    }[metric]


@dataclass
class _Group:
    """Scratch arrays of one (schedule, dataset): seed slots in first-seen order."""

    directory: Path
    n_rows: int
    n_epochs: int
    seeds: list[int] = field(default_factory=list)
    capacity: int = 3
    arrays: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    evaluated: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # per epoch: any value

    def _new_array(self, key: tuple[str, str], capacity: int) -> np.ndarray:
        file = self.directory / f"{key[0]}-{key[1]}-{capacity}.npy"
        array = np.lib.format.open_memmap(file, mode="w+", dtype=np.float32, shape=(self.n_rows, capacity, self.n_epochs))
        array[...] = np.nan
        return array.view(np.ndarray)  # a plain view: indexing a memmap subclass costs more than the write

    def slot(self, seed: int) -> int:
        if seed in self.seeds:
            return self.seeds.index(seed)
        if len(self.seeds) == self.capacity:
            self._grow(2 * self.capacity)
        self.seeds.append(seed)
        return len(self.seeds) - 1

    def _grow(self, capacity: int) -> None:
        for key, old in list(self.arrays.items()):
            new = self._new_array(key, capacity)
            for start in range(0, self.n_rows, _COPY_ROWS):
                new[start : start + _COPY_ROWS, : self.capacity] = old[start : start + _COPY_ROWS]
            self.arrays[key] = new
            del old
            (self.directory / f"{key[0]}-{key[1]}-{self.capacity}.npy").unlink()
        self.capacity = capacity

    def write(self, row: int, run: RunRecord) -> None:
        slot = self.slot(run.seed)
        for key, values in run.curves.items():
            if key not in self.arrays:
                self.arrays[key] = self._new_array(key, self.capacity)
                self.evaluated[key] = np.zeros(self.n_epochs, dtype=bool)
            self.arrays[key][row, slot] = values
            self.evaluated[key] |= ~np.isnan(values)


def convert_nb201(
    src: Path, dest: Path, overwrite: bool = False, progress: bool = True, workers: int | None = None
) -> Path:
    """Convert the official NB201 files at ``src`` into a store at ``dest``; returns ``dest``.

    ``src`` is a NATS-Bench ``NATS-tss-v1_0-3ffb9-simple/`` directory or a NAS-Bench-201 ``.pth``.
    ``workers`` processes decode the NATS arch files (default ``os.cpu_count()``; ``1`` reads in this
    process); this process writes the store, in index order, so the store is the same for any count.
    Raises HarnessError for a source that is not NB201 (saying what was expected), for a damaged file
    (naming it), and for a ``dest`` that overlaps ``src`` or exists and is not a store to overwrite.
    """
    if workers is not None and workers < 1:
        raise HarnessError(f"workers must be at least 1 (or None for os.cpu_count()), got {workers}")
    src, dest = Path(src), Path(dest)
    check_destination(src, dest, overwrite)
    source = open_source(src)
    indices = source.indices()
    n_rows = len(indices)
    row_of = np.full(len(source.meta_archs), -1, dtype=np.int64)
    row_of[indices] = np.arange(n_rows)
    with StoreWriter(dest, benchmark=BENCHMARK, source=str(src), overwrite=overwrite) as writer:
        scratch = writer.tmp / "scratch"
        scratch.mkdir()
        groups: dict[tuple[str, str], _Group] = {}
        costs: dict[tuple[str, str, str], np.ndarray] = {}
        with closing(source.records(workers or os.cpu_count() or 1)) as records:  # closing: stops the workers on any exception
            bar = tqdm(records, total=n_rows, desc=f"converting {src.name}", unit="arch", disable=not progress)
            for record in bar:
                row = int(row_of[record.index])
                for run in record.runs:
                    key = (run.schedule, run.dataset)
                    if key not in groups:
                        directory = scratch / f"{run.schedule}-{run.dataset}"
                        directory.mkdir()
                        groups[key] = _Group(directory, n_rows, run.n_epochs)
                    groups[key].write(row, run)
                for (schedule, dataset), metrics in record.costs.items():
                    for metric, value in metrics.items():
                        costs.setdefault((schedule, dataset, metric), np.full(n_rows, np.nan))[row] = value
        _write_columns(writer, groups, costs, n_rows)
        shutil.rmtree(scratch)
        archs = {"index": np.arange(len(row_of)), "arch_str": source.meta_archs, "row": row_of}
        writer.add_table("archs", pd.DataFrame(archs))
        writer.extra.update(
            source_format=source.format,
            source_name=src.name,
            n_evaluated=len(indices),
            source_sha256=_summarise_checksums(source),
            notes=list(NOTES),
        )
    return dest


def _write_columns(
    writer: StoreWriter,
    groups: dict[tuple[str, str], _Group],
    costs: dict[tuple[str, str, str], np.ndarray],
    n_rows: int,
) -> None:
    for dataset in DATASETS:
        for schedule in SCHEDULES:
            group = groups.get((schedule, dataset))
            if group is None:
                continue
            seeds = tuple(sorted(group.seeds))
            slots = [group.seeds.index(s) for s in seeds]
            for split in SPLITS:
                for metric in EPOCH_METRICS:
                    evaluated = group.evaluated.get((split, metric))
                    if evaluated is None or not evaluated.any():
                        continue
                    # the epochs at which the files record this split (hp=200 x-valid of cifar100: 200 only)
                    positions = np.flatnonzero(evaluated)
                    epochs = tuple(int(p) + 1 for p in positions)
                    column = Column(dataset, schedule, split, metric, seeds, epochs, MINIMIZE[metric], _description(split, metric))
                    target = writer.add_column(column, n_rows)
                    source = group.arrays[(split, metric)]
                    for start in range(0, n_rows, _COPY_ROWS):
                        target[start : start + _COPY_ROWS] = source[start : start + _COPY_ROWS][:, slots][:, :, positions]
            for metric in COST_METRICS:
                values = costs.get((schedule, dataset, metric))
                if values is None or np.isnan(values).all():
                    continue
                column = Column(dataset, schedule, "cost", metric, (), (), MINIMIZE[metric], _description("cost", metric))
                writer.add_column(column, n_rows)[:, 0, 0] = values
    for group in groups.values():
        group.arrays.clear()  # release the scratch memmaps before their directory is removed


def _summarise_checksums(source: NB201Source) -> dict[str, str]:
    """Per-file sha256 for a few files; for the 15,625 NATS arch files one digest over all of them."""
    sums = source.checksums()
    if len(sums) <= 4:
        return sums
    meta = {name: digest for name, digest in sums.items() if not name[0].isdigit()}
    combined = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(sums.items()) if n not in meta).encode())
    meta[f"{len(sums) - len(meta)} arch files (sha256 of sorted 'name:sha256' lines)"] = combined.hexdigest()
    return meta
