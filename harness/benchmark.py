"""The one query interface every benchmark adapter implements.

A benchmark is a set of *columns*. A column is one metric of one split of one dataset under one
training schedule, e.g. NAS-Bench-201's ``cifar10-valid / hp=200 / train / loss``. It stores a value
per (architecture, seed, epoch). ``Benchmark.query`` returns whole curves for many architectures in
one call as an array shaped ``[archs, seeds, epochs]`` plus a mask of the values that exist.

Conventions
-----------
* Epochs are 1-based counts of completed epochs: epoch ``t`` is the value after ``t`` epochs of
  training (the official NB201 API calls it ``iepoch = t - 1``).
* A column whose values do not depend on the seed (params, FLOPs) has ``seeds == ()``; one whose
  values do not depend on the epoch has ``epochs == ()``. The matching result axis has length 1.
* Tables that only publish the mean over training seeds use the seed label ``"mean"``.
* A column lists only the epochs at which it was evaluated (a split evaluated once after training
  has one epoch), so asking for another epoch raises. Missing values inside a column (a seed an
  architecture was not trained with) are NaN in ``values`` and False in ``mask``; nothing is imputed. Averaging over seeds happens only when asked
  (``reduce="mean"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from harness.errors import HarnessError, NotAvailableError, choices
from harness.rng import is_int, make_rng

Seed = int | str
SeedsArg = Literal["all"] | int | str | Sequence[Seed]
EpochsArg = None | int | Sequence[int] | np.ndarray


@dataclass(frozen=True)
class Column:
    """One queryable series of a benchmark."""

    dataset: str
    schedule: str
    split: str
    metric: str
    seeds: tuple[Seed, ...]
    epochs: tuple[int, ...]
    minimize: bool
    description: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.dataset, self.schedule, self.split, self.metric)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.schedule}/{self.split}/{self.metric}"


@dataclass(frozen=True)
class Absence:
    """Something a benchmark does not record (``None`` matches any split or metric), and why."""

    message: str
    metric: str | None = None
    split: str | None = None

    def matches(self, split: str, metric: str) -> bool:
        return self.metric in (None, metric) and self.split in (None, split)


@dataclass(frozen=True)
class Capabilities:
    """What a benchmark holds: its columns, plus the facts that are not columns.

    ``absent`` lists what the benchmark does not record at all (NAS-Bench-101 has no losses); asking
    for it raises :class:`NotAvailableError` with that message instead of a list of valid names.
    ``elsewhere`` says where the columns this data lacks can be had (the embedded tables: "convert the
    official files"); it ends the error for an unknown schedule, split or metric.
    ``n_with_data`` is how many of the ``n_archs`` archs this data holds values for (None: all of them,
    or unknown for an unindexed space); a store or table that covers a subset of the space says so here.
    """

    benchmark: str
    columns: tuple[Column, ...]
    n_archs: int | None  # None for a space too large to enumerate (NAS-Bench-301)
    notes: tuple[str, ...] = ()
    absent: tuple[Absence, ...] = ()
    elsewhere: str = ""
    n_with_data: int | None = None

    @property
    def datasets(self) -> tuple[str, ...]:
        return _unique(c.dataset for c in self.columns)

    @property
    def schedules(self) -> tuple[str, ...]:
        return _unique(c.schedule for c in self.columns)

    @property
    def splits(self) -> tuple[str, ...]:
        return _unique(c.split for c in self.columns)

    @property
    def metrics(self) -> tuple[str, ...]:
        return _unique(c.metric for c in self.columns)

    def column(self, dataset: str, metric: str, split: str, schedule: str | int | None) -> Column:
        """The column for these names; raises naming the valid choices at the first wrong one."""
        for absence in self.absent:
            if absence.matches(split, metric):
                raise NotAvailableError(absence.message, recorded_nowhere=True)
        cols = [c for c in self.columns if c.dataset == dataset]
        if not cols:
            raise choices(f"dataset for {self.benchmark}", dataset, self.datasets)
        if schedule is None:
            schedules = _unique(c.schedule for c in cols)
            if len(schedules) != 1:
                raise HarnessError(
                    f"{self.benchmark} {dataset} has several schedules {schedules}; choose one (schedule=... in Python, --schedule on the command line)"
                )
            schedule = schedules[0]
        schedule = str(schedule)
        in_schedule = [c for c in cols if c.schedule == schedule]
        if not in_schedule:
            raise self.unknown(f"schedule for {self.benchmark} {dataset}", schedule, (c.schedule for c in cols))
        in_split = [c for c in in_schedule if c.split == split]
        if not in_split:
            raise self.unknown(f"split for {self.benchmark} {dataset} schedule {schedule}", split, (c.split for c in in_schedule))
        for c in in_split:
            if c.metric == metric:
                return c
        raise self.unknown(f"metric for {self.benchmark} {dataset} schedule {schedule} split {split}", metric,
                            (c.metric for c in in_split))

    def unknown(self, what: str, got: str, valid: Iterable[str]) -> HarnessError:
        """The "unknown X; valid: ..." error, ending with where the rest can be had (``elsewhere``)."""
        error = choices(what, got, _unique(valid))
        return HarnessError(f"{error}; {self.elsewhere}") if self.elsewhere else error

    def coverage(self) -> str:
        """``"15,625 archs"``, or ``"3 of 15,625 archs have data"`` for data covering a subset."""
        if self.n_archs is None:
            return "unbounded space (archs are scored, not looked up)"
        if self.n_with_data is None or self.n_with_data == self.n_archs:
            return f"{self.n_archs:,} archs"
        return f"{self.n_with_data:,} of {self.n_archs:,} archs have data"

    def describe(self) -> str:
        """A human-readable listing, one line per column."""
        lines = [f"{self.benchmark}: {self.coverage()}"]
        for c in self.columns:
            seeds = ",".join(str(s) for s in c.seeds) or "-"
            epochs = epoch_span(c.epochs) + f" ({len(c.epochs)})" if c.epochs else "-"
            direction = "min" if c.minimize else "max"
            lines.append(f"  {c}  seeds={seeds}  epochs={epochs}  [{direction}]")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.extend(f"  absent: {message}" for message in dict.fromkeys(a.message for a in self.absent))
        return "\n".join(lines)


@dataclass(frozen=True)
class QueryResult:
    """Curves for many architectures: ``values[a, s, e]`` with ``mask`` marking existing values."""

    values: np.ndarray  # float, [archs, seeds, epochs], NaN where mask is False
    mask: np.ndarray  # bool, same shape
    column: Column
    archs: np.ndarray  # the resolved architecture indices (or encodings for unindexed spaces)
    seeds: tuple[Seed, ...]
    epochs: tuple[int, ...]
    reduced: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.mask.all())


class Benchmark(ABC):
    """Base class of every adapter. Subclasses say how to resolve archs and read a column."""

    name: str
    # Whether resolving every arch of the space at once is cheap (index lookups). NAS-Bench-1Shot1
    # hashes each configuration (1.3 M in space 3, ~6 min), so runners sample it without reading it all.
    resolves_whole_space_cheaply: bool = True

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """The columns this benchmark instance holds."""

    @abstractmethod
    def resolve(self, archs: Any) -> np.ndarray:
        """Turn user arch identifiers (one or many) into the adapter's row keys, validating them."""

    @abstractmethod
    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        """Values ``[len(rows), len(seed_pos), len(epoch_pos)]`` (NaN where absent) of ``column``."""

    def arch_label(self, row: Any) -> str:
        """A human-readable name of one resolved architecture (adapters give their native form)."""
        return str(row)

    def archs_with_data(self, progress: bool = False) -> np.ndarray:
        """Sorted indices of the archs this data holds values for (all of an indexed space by default).

        Adapters whose data covers a subset of the space override this; ``progress`` shows a bar where
        finding them takes more than a second (hashing NAS-Bench-1Shot1 configurations).
        """
        n_archs = self.capabilities().n_archs
        if n_archs is None:
            raise HarnessError(f"{self.name} is not an indexed space: its archs cannot be listed, only sampled")
        return np.arange(n_archs, dtype=np.int64)

    def sample(self, n: int, seed: int | np.random.Generator, with_data: bool = False) -> np.ndarray:
        """``n`` distinct architecture indices drawn uniformly without replacement.

        ``with_data=True`` draws among :meth:`archs_with_data` only (uniform over those), for data that
        covers a subset of the space; the default draws from the whole space.
        """
        n_archs = self.capabilities().n_archs
        if n_archs is None:
            raise HarnessError(f"{self.name} overrides sample(); this base version needs an indexed space")
        pool = self.archs_with_data() if with_data else None
        size = n_archs if pool is None else len(pool)
        if not is_int(n) or not 0 < n <= size:
            where = f"the {size:,} archs with data of {self.name}" if pool is not None else self.name
            raise HarnessError(f"cannot sample {n!r} archs from {where}: n must be an integer 1..{size}")
        picked = make_rng(seed).choice(size, size=n, replace=False)
        return np.sort(picked if pool is None else pool[picked])

    def query(
        self,
        archs: Any,
        dataset: str,
        metric: str,
        split: str,
        schedule: str | int | None = None,
        seeds: SeedsArg = "all",
        epochs: EpochsArg = None,
        reduce: Literal["mean"] | None = None,
    ) -> QueryResult:
        """Whole curves of ``metric`` for ``archs`` in one vectorised read.

        ``archs`` is one architecture or a non-empty 1-D sequence of them; ``seeds`` is ``"all"``, one
        seed label or a list of them. Returns values shaped ``[archs, seeds, epochs]`` (``epochs=None``
        means all stored epochs).
        ``reduce="mean"`` averages over the seeds that exist (nanmean); an (arch, epoch) with no seed
        stays NaN and masked.
        """
        column = self.capabilities().column(dataset=dataset, metric=metric, split=split, schedule=schedule)
        seed_pos, seed_labels = _select_seeds(column, seeds)
        epoch_pos, epoch_labels = _select_epochs(column, epochs)
        rows = self.resolve(archs)
        if len(rows) == 0:
            raise HarnessError(f"no architectures given to {self.name} query: pass one architecture or a non-empty 1-D sequence")
        values = np.asarray(self._read(column, rows, seed_pos, epoch_pos), dtype=np.float64)
        mask = ~np.isnan(values)
        if reduce is None:
            return QueryResult(values, mask, column, rows, seed_labels, epoch_labels)
        if reduce != "mean":
            raise choices("reduce", reduce, ["mean", None])
        counts = mask.sum(axis=1, keepdims=True)
        total = np.where(mask, values, 0.0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
        return QueryResult(
            mean, counts > 0, column, rows, ("mean",), epoch_labels, reduced="mean", extra={"n_seeds": counts[:, 0, :]}
        )

    def final(self, archs: Any, dataset: str, metric: str, split: str, schedule: str | int | None = None) -> np.ndarray:
        """Seed-mean value at the last stored epoch, shaped ``[archs]``; raises if any is missing."""
        column = self.capabilities().column(dataset=dataset, metric=metric, split=split, schedule=schedule)
        last = column.epochs[-1] if column.epochs else None
        result = self.query(archs, dataset, metric, split, schedule, epochs=last, reduce="mean")
        out = result.values[:, 0, 0]
        if not result.mask.all():
            missing = np.asarray(result.archs)[~result.mask[:, 0, 0]][:5]
            raise HarnessError(f"{column} has no value at epoch {last} for archs {missing.tolist()} (first 5)")
        return out


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def one_dimensional(rows: np.ndarray, benchmark: str) -> np.ndarray:
    """``rows`` as a 1-D array: queries take one architecture or a 1-D sequence, never a 2-D array."""
    if rows.ndim > 1:
        raise HarnessError(f"{benchmark} archs must be one architecture or a 1-D sequence, got an array of shape {rows.shape}")
    return np.atleast_1d(rows)


def rows_in_range(rows: np.ndarray, n_rows: int, benchmark: str, what: str = "row") -> np.ndarray:
    """``rows`` as int64, after checking each is an index 0..n_rows-1 (raises naming the first that is not)."""
    rows = np.asarray(rows, dtype=np.int64)
    bad = (rows < 0) | (rows >= n_rows)
    if bad.any():
        raise HarnessError(f"{what} {int(rows[bad][0])} out of range for {benchmark}: valid 0..{n_rows - 1}")
    return rows


def _select_seeds(column: Column, seeds: SeedsArg) -> tuple[np.ndarray, tuple[Seed, ...]]:
    everything = isinstance(seeds, str) and seeds == "all"
    if not column.seeds:
        if not everything:
            raise HarnessError(f"{column} does not depend on the training seed; pass seeds='all', got {seeds!r}")
        return np.zeros(1, dtype=np.int64), ()
    if everything:
        return np.arange(len(column.seeds)), column.seeds
    if isinstance(seeds, (int, str, np.integer)):
        wanted = [seeds]
    elif isinstance(seeds, Iterable):
        wanted = list(seeds)
    else:
        raise HarnessError(f"seeds must be 'all', one seed or a list of seeds; got {seeds!r}; valid seeds: {column.seeds}")
    if not wanted:
        raise HarnessError(f"empty seed list for {column}; valid seeds: {column.seeds}")
    pos = []
    for s in wanted:
        s = int(s) if isinstance(s, np.integer) else s
        if s not in column.seeds:
            raise choices(f"seed for {column}", s, column.seeds)
        pos.append(column.seeds.index(s))
    return np.asarray(pos, dtype=np.int64), tuple(column.seeds[p] for p in pos)


def epoch_span(epochs: tuple[int, ...]) -> str:
    """``"1..200"`` for three or more consecutive epochs, else the list (``"200"``, ``"54,108"``)."""
    consecutive = len(epochs) > 2 and list(epochs) == list(range(epochs[0], epochs[-1] + 1))
    return f"{epochs[0]}..{epochs[-1]}" if consecutive else ",".join(str(e) for e in epochs)


def _select_epochs(column: Column, epochs: EpochsArg) -> tuple[np.ndarray, tuple[int, ...]]:
    if not column.epochs:
        if epochs is not None:
            raise HarnessError(f"{column} does not depend on the epoch; pass epochs=None")
        return np.zeros(1, dtype=np.int64), ()
    stored = np.asarray(column.epochs)
    if epochs is None:
        return np.arange(len(stored)), column.epochs
    span = epoch_span(column.epochs)
    wanted = np.atleast_1d(np.asarray(epochs))
    if wanted.ndim != 1 or not wanted.size or wanted.dtype.kind not in "iu":
        raise HarnessError(
            f"epochs must be None (all), one integer or a non-empty list of integers, got {epochs!r}; valid epochs: {span}"
        )
    pos = np.searchsorted(stored, wanted)
    bad = (pos >= len(stored)) | (stored[np.minimum(pos, len(stored) - 1)] != wanted)
    if bad.any():
        raise HarnessError(f"epoch {int(wanted[bad][0])} out of range for {column}; valid epochs: {span}")
    return pos.astype(np.int64), tuple(int(e) for e in wanted)
