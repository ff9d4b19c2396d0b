"""NAS-Bench-1Shot1 search spaces 1/2/3 (the thesis' NB101-1/2/3) as benchmarks.

Architectures are :class:`~harness.spaces.nb1shot1.Config` objects or their index in the space's
enumeration order (0 .. n_configs-1). Each is mapped to its NB101 spec (padded to 7 vertices in
spaces 1 and 2), hashed after pruning, and read from the NB101 benchmark opened at the same root.
Columns, seeds and notes are NB101's.

Coverage: a configuration has data when the NB101 data holds its cell.

* The embedded NB101 table (20,001 of the 423,624 cells) covers 913 / 1,584 / 100,712 of the
  14,580 / 29,160 / 1,312,200 configurations of spaces 1/2/3 (131 / 381 / 2,698 distinct cells).
  Hashing space 3 takes ~20 s, so these come from a precomputed index, ``nb1shot1-coverage.npz``
  beside the table, used when the NB101 data's hashes are the ones it was built for (same SHA-256 of
  the sorted hash column). Rebuild it with ``python harness/embedded/nb101/build_tables.py SRC``.
* A full NB101 store (all 423,624 cells) covers every configuration: every configuration is a valid
  NB101 cell (at most 7 vertices; 9 edges, the sum of the in-degrees, before pruning).
* Any other store (a partial tfrecord) is covered by hashing the whole space on demand
  (:meth:`Nb1Shot1Benchmark.archs_with_data`), once per benchmark object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.adapters import nb101
from harness.benchmark import Benchmark, Capabilities, Column, one_dimensional
from harness.errors import HarnessError
from harness.rng import is_int
from harness.spaces.nb101 import N_CELLS
from harness.spaces.nb1shot1 import SPACES, Config, SearchSpace, search_space

COVERAGE_FILE = nb101.EMBEDDED_DIR / "nb1shot1-coverage.npz"


@dataclass(frozen=True)
class Coverage:
    """The configurations of one space that some NB101 data answers."""

    configs: np.ndarray  # sorted indices (read-only) of the configurations whose cell the data holds
    n_cells: int  # distinct NB101 cells among them


def hashes_digest(hashes: np.ndarray) -> str:
    """SHA-256 of a sorted ``S32`` module-hash column: which NB101 cells a coverage index was built for."""
    return hashlib.sha256(np.ascontiguousarray(hashes, dtype="S32").tobytes()).hexdigest()


def hash_coverage(space: SearchSpace, hashes: np.ndarray, progress: bool = False) -> tuple[Coverage, int]:
    """The coverage of ``space`` by NB101 data holding the sorted module ``hashes``, found by hashing
    every configuration (:meth:`SearchSpace.cells`), and the number of distinct cells of the space."""
    cells, cell_of_config = space.cells(progress)
    held = np.isin(cells, hashes)
    return _coverage(np.flatnonzero(held[cell_of_config]), int(held.sum())), len(cells)


def write_coverage_index(path: Path, nb101_benchmark: nb101.Nb101Benchmark, progress: bool = False) -> None:
    """Write the coverage of every space by ``nb101_benchmark`` (the file ``coverage_index`` reads):
    per space ``space{n}_configs`` (int32), ``space{n}_cells`` and ``space{n}_space_cells``, plus the
    ``nb101_sha256`` of the hashes it was built for."""
    arrays: dict[str, np.ndarray] = {"nb101_sha256": np.asarray(hashes_digest(nb101_benchmark.hashes))}
    for number, space in SPACES.items():
        coverage, space_cells = hash_coverage(space, nb101_benchmark.hashes, progress)
        arrays[f"space{number}_configs"] = coverage.configs.astype(np.int32)
        arrays[f"space{number}_cells"] = np.asarray(coverage.n_cells)
        arrays[f"space{number}_space_cells"] = np.asarray(space_cells)
    np.savez_compressed(path, **arrays)


@cache
def coverage_index() -> dict[str, np.ndarray]:
    """The precomputed coverage of the embedded NB101 table (see the module docstring)."""
    with np.load(COVERAGE_FILE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _coverage(configs: np.ndarray, n_cells: int) -> Coverage:
    configs = np.asarray(configs, dtype=np.int64)
    configs.setflags(write=False)
    return Coverage(configs, n_cells)


class Nb1Shot1Benchmark(Benchmark):
    """Queries by 1Shot1 configuration, answered by an NB101 benchmark."""

    resolves_whole_space_cheaply = False  # each distinct cell is pruned and hashed (~0.3 ms)

    def __init__(self, space: SearchSpace, nb101_benchmark: nb101.Nb101Benchmark) -> None:
        self.space = space
        self.nb101 = nb101_benchmark
        self.name = f"nb1shot1-{space.number}"
        index = coverage_index()
        self._space_cells = int(index[f"space{space.number}_space_cells"])
        self._coverage: Coverage | None = None
        if len(nb101_benchmark.hashes) >= N_CELLS:
            self._coverage = _coverage(np.arange(space.n_configs), self._space_cells)
        elif hashes_digest(nb101_benchmark.hashes) == str(index["nb101_sha256"]):
            self._coverage = _coverage(index[f"space{space.number}_configs"], int(index[f"space{space.number}_cells"]))
        self._capabilities = self._describe()

    def _describe(self) -> Capabilities:
        inner = self.nb101.capabilities()
        n_configs = self.space.n_configs
        if self._coverage is None:
            coverage = (f"the NB101 data opened holds {len(self.nb101.hashes):,} of the {N_CELLS:,} cells, so some "
                        "configurations have no data; how many is not counted yet: archs_with_data() (or "
                        "sample(n, seed, with_data=True)) hashes the whole space once (space 3: ~20 s), then "
                        "capabilities() count them")
        else:
            coverage = (f"{len(self._coverage.configs):,} of the {n_configs:,} configurations "
                        f"({self._coverage.n_cells:,} distinct NB101 cells) have data in the NB101 data opened "
                        f"({len(self.nb101.hashes):,} of the {N_CELLS:,} cells)")
        return Capabilities(
            benchmark=self.name,
            columns=inner.columns,
            n_archs=n_configs,
            notes=(
                *inner.notes,
                f"archs are NAS-Bench-1Shot1 space {self.space.number} configurations (index 0..{n_configs - 1})",
                "distinct configurations are not distinct NB101 cells (unused ops, isomorphs): space "
                f"{self.space.number}'s {n_configs:,} configurations are {self._space_cells:,} cells",
                coverage,
            ),
            absent=inner.absent,
            elsewhere=inner.elsewhere,
            n_with_data=None if self._coverage is None else len(self._coverage.configs),
        )

    def capabilities(self) -> Capabilities:
        return self._capabilities

    def archs_with_data(self, progress: bool = False) -> np.ndarray:
        """Sorted indices (read-only) of the configurations whose NB101 cell the data holds: from the
        precomputed index (embedded table), every index (full store), or by hashing every
        configuration once (any other store; ``progress`` shows a bar when that takes over a second)."""
        if self._coverage is None:
            self._coverage = hash_coverage(self.space, self.nb101.hashes, progress)[0]
            self._capabilities = self._describe()
        return self._coverage.configs

    def configs(self, archs: Any) -> list[Config]:
        """The configurations named by ``archs`` (a Config, an index, or a sequence of those)."""
        if isinstance(archs, Config) or is_int(archs):
            items = [archs]
        elif isinstance(archs, np.ndarray):
            items = list(one_dimensional(archs, self.name))
        elif isinstance(archs, (list, tuple, range)):
            items = list(archs)
        else:
            raise HarnessError(
                f"{self.name} archs must be a Config, an index 0..{self.space.n_configs - 1} or a 1-D sequence of those; "
                f"got {archs!r}"
            )
        if not items:
            raise HarnessError("no architectures given")
        out = []
        for a in items:
            if isinstance(a, Config):
                out.append(self.space.validate(a))
            elif is_int(a):
                out.append(self.space.config(a))
            else:
                raise HarnessError(f"cannot read {self.name} arch {a!r}: give a Config or an index 0..{self.space.n_configs - 1}")
        return out

    def resolve(self, archs: Any) -> np.ndarray:
        """NB101 rows of the configurations (hashing each spec after pruning); raises for any
        configuration whose cell the NB101 data lacks."""
        configs = self.configs(archs)
        hashes = np.asarray(self.space.nb101_hashes(configs), dtype="S32")
        known = self.nb101.hashes
        rows = np.searchsorted(known, hashes).clip(0, len(known) - 1)
        missing = np.flatnonzero(known[rows] != hashes)
        if missing.size:
            i = int(missing[0])
            counted = "" if self._coverage is None else (
                f"{len(self._coverage.configs):,} of the {self.space.n_configs:,} configurations have data; ")
            raise HarnessError(
                f"{self.name}: {missing.size:,} of the {len(configs):,} archs asked have no data, e.g. {configs[i]} "
                f"(NB101 hash {hashes[i].decode()}); {counted}sample(n, seed, with_data=True) and archs_with_data() "
                f"draw among the configurations with data. The NB101 data opened: {self.nb101.extent()}"
            )
        return rows.astype(np.int64)

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        return self.nb101._read(column, rows, seed_pos, epoch_pos)


def open_benchmark(root: Path | None = None, space: int = 1, **options: object) -> Nb1Shot1Benchmark:
    """Space ``space`` (1, 2 or 3) over the NB101 data at ``root`` (None: embedded table)."""
    return Nb1Shot1Benchmark(search_space(space), nb101.open_benchmark(root, **options))
