"""Data that covers part of a space: NAS-Bench-1Shot1 configurations whose NB101 cell the data holds.

Independent checks: the shipped index of the embedded table is recomputed by hashing every
configuration one at a time (``SearchSpace.nb101_hashes``, not the bulk ``SearchSpace.cells`` that
built it) for spaces 1 and 2, and on a seeded sample for space 3; the distinct-cell counts 131 / 381 /
2,698 and the with-loose-ends counts 341 / 840 are the data provider's own figures
(shared/data/README.md), computed outside this code.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from harness.adapters import nb101, nb1shot1
from harness.errors import HarnessError
from harness.experiments.config import parse_config
from harness.experiments.correlation import run_correlation
from harness.registry import load_benchmark
from harness.spaces.nb101 import MAX_EDGES, MAX_VERTICES, N_CELLS
from harness.spaces.nb1shot1 import PLACEHOLDER_OP, SPACES, Config
from nb101_fixtures import write_fixture

# configurations with data / distinct NB101 cells among them / distinct cells of the space
EMBEDDED = {1: (913, 131, 2685), 2: (1584, 381, 7773), 3: (100712, 2698, 55854)}
WITH_LOOSE_ENDS = {1: 341, 2: 840}  # of the 6,240 / 16,632 architectures counted with loose ends


def _held(space_number: int, configs: list[Config], hashes: np.ndarray) -> np.ndarray:
    """Per configuration, whether ``hashes`` holds its cell (hashing each, one by one)."""
    found = np.asarray(SPACES[space_number].nb101_hashes(configs), dtype="S32")
    return np.isin(found, hashes)


def _every_config(number: int) -> list[Config]:
    return [SPACES[number].config(i) for i in range(SPACES[number].n_configs)]


@pytest.mark.parametrize("number", [1, 2])
def test_the_shipped_index_equals_hashing_every_configuration(number):
    hashes = load_benchmark("nb101").hashes
    configs = _every_config(number)
    held = _held(number, configs, hashes)
    bench = load_benchmark(f"nb1shot1-{number}")
    np.testing.assert_array_equal(bench.archs_with_data(), np.flatnonzero(held))
    cells = np.asarray(SPACES[number].nb101_hashes(configs), dtype="S32")
    assert (held.sum(), len(set(cells[held])), len(set(cells))) == EMBEDDED[number]
    loose = list(SPACES[number].enumerate(loose_ends=True))
    assert int(_held(number, loose, hashes).sum()) == WITH_LOOSE_ENDS[number]


def test_the_shipped_index_of_space_3_on_a_seeded_sample_and_its_counts():
    hashes = load_benchmark("nb101").hashes
    bench = load_benchmark("nb1shot1-3")
    with_data = bench.archs_with_data()
    assert len(with_data) == EMBEDDED[3][0] and (np.diff(with_data) > 0).all()
    drawn = np.sort(np.random.default_rng(3).choice(SPACES[3].n_configs, size=4000, replace=False))
    held = _held(3, [SPACES[3].config(int(i)) for i in drawn], hashes)
    np.testing.assert_array_equal(held, np.isin(drawn, with_data))
    assert held.sum() > 30  # the sample does hold configurations with data
    listed = np.random.default_rng(4).choice(with_data, size=500, replace=False)
    found = SPACES[3].nb101_hashes([SPACES[3].config(int(i)) for i in listed])
    assert np.isin(np.asarray(found, dtype="S32"), hashes).all()
    index = nb1shot1.coverage_index()
    assert (int(index["space3_cells"]), int(index["space3_space_cells"])) == EMBEDDED[3][1:]


def test_the_index_belongs_to_the_embedded_table():
    """Else the adapter would not use it and would hash the space on demand."""
    index = nb1shot1.coverage_index()
    expected = hashlib.sha256(nb101.embedded_values().hash.to_numpy().astype("S32").tobytes()).hexdigest()
    assert str(index["nb101_sha256"]) == expected == nb1shot1.hashes_digest(load_benchmark("nb101").hashes)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_capabilities_state_the_coverage_in_configurations_and_cells(number):
    n_with_data, n_cells, space_cells = EMBEDDED[number]
    caps = load_benchmark(f"nb1shot1-{number}").capabilities()
    n_configs = SPACES[number].n_configs
    assert caps.n_with_data == n_with_data and caps.n_archs == n_configs
    assert caps.describe().splitlines()[0] == f"nb1shot1-{number}: {n_with_data:,} of {n_configs:,} archs have data"
    assert (f"{n_with_data:,} of the {n_configs:,} configurations ({n_cells:,} distinct NB101 cells) have data in the "
            f"NB101 data opened (20,001 of the {N_CELLS:,} cells)") in caps.notes
    assert f"space {number}'s {n_configs:,} configurations are {space_cells:,} cells" in " ".join(caps.notes)


def test_the_top_configurations_of_space_1_are_read_from_those_with_data():
    """The query `--top` made: all 14,580 configurations, refused (14,566 without data in the 1,000 cells)."""
    bench = load_benchmark("nb1shot1-1")
    rows = bench.archs_with_data()
    values = bench.query(rows, "cifar10", "accuracy", "valid", "108").values[:, 0, 0]
    assert len(values) == 913 and not np.isnan(values).any()
    with pytest.raises(HarnessError, match="13,667 of the 14,580 archs asked have no data"):
        bench.query(np.arange(14580), "cifar10", "accuracy", "valid", "108")


def test_sample_with_data_draws_only_configurations_with_data_and_is_seeded():
    bench = load_benchmark("nb1shot1-3")
    drawn = bench.sample(200, seed=7, with_data=True)
    np.testing.assert_array_equal(drawn, bench.sample(200, seed=7, with_data=True))
    assert np.isin(drawn, bench.archs_with_data()).all() and len(set(drawn)) == 200
    assert bench.query(drawn, "cifar10", "accuracy", "valid", "108").mask.all()
    with pytest.raises(HarnessError, match="cannot sample 914 archs from the 913 archs with data of nb1shot1-1"):
        load_benchmark("nb1shot1-1").sample(914, seed=0, with_data=True)


def test_archs_with_data_cannot_be_altered_by_a_caller():
    bench = load_benchmark("nb1shot1-1")
    with pytest.raises(ValueError):
        bench.archs_with_data()[0] = 1


@pytest.mark.parametrize("number", [1, 2, 3])
def test_every_configuration_is_a_valid_nb101_cell_so_a_full_store_covers_the_space(number):
    """The argument for full stores: every graph of the space (ops never change validity) is a
    valid NB101 cell of at most 7 vertices and 9 edges, so the 423,624 cells include it."""
    space = SPACES[number]
    assert sum(space.in_degrees) <= MAX_EDGES and space.n_blocks + 2 <= MAX_VERTICES
    for parents in space.graphs:
        spec = space.to_spec(Config(number, parents, (PLACEHOLDER_OP,) * space.n_blocks))
        assert spec.problems() == [] and spec.matrix.shape[0] <= MAX_VERTICES and spec.matrix.sum() <= MAX_EDGES


def test_a_full_nb101_store_covers_every_configuration_without_hashing(monkeypatch):
    hashes = np.sort(np.asarray([hashlib.md5(str(i).encode()).hexdigest() for i in range(N_CELLS)], dtype="S32"))
    column = nb101.accuracy_column(108, "valid", (0,), (108,))
    full = nb101.Nb101Benchmark(hashes, np.zeros(N_CELLS), [column], lambda c: np.zeros((N_CELLS, 1, 1)),
                                spec_table=lambda: None)
    monkeypatch.setattr(type(SPACES[3]), "cells", lambda *a, **k: pytest.fail("hashed the space"))
    bench = nb1shot1.Nb1Shot1Benchmark(SPACES[3], full)
    np.testing.assert_array_equal(bench.archs_with_data(), np.arange(SPACES[3].n_configs))
    assert bench.capabilities().coverage() == "1,312,200 archs"


@pytest.fixture(scope="module")
def partial_store(tmp_path_factory):
    """A store converted from a partial tfrecord: the 1,000 cells with graphs."""
    root = tmp_path_factory.mktemp("partial")
    write_fixture(root / "f.tfrecord", n_cells=None, budgets=(108,))
    return nb101.convert(root / "f.tfrecord", root / "store")


@pytest.mark.parametrize("number", [1, 2])
def test_a_partial_store_is_covered_by_hashing_the_space_once_on_demand(partial_store, number, monkeypatch):
    bench = load_benchmark(f"nb1shot1-{number}", root=partial_store)
    caps = bench.capabilities()
    assert caps.n_with_data is None
    assert any("holds 1,000 of the 423,624 cells, so some configurations have no data; how many is not counted yet"
               in note for note in caps.notes)
    expected = np.flatnonzero(_held(number, _every_config(number), nb101.embedded_table().hash.to_numpy().astype("S32")))
    np.testing.assert_array_equal(bench.archs_with_data(progress=True), expected)
    assert bench.capabilities().n_with_data == len(expected) == {1: 14, 2: 34}[number]
    monkeypatch.setattr(type(SPACES[number]), "cells", lambda *a, **k: pytest.fail("hashed the space twice"))
    np.testing.assert_array_equal(bench.sample(len(expected), seed=0, with_data=True), expected)


def _correlation(benchmark: str, n_archs: int | str, root=None):
    config = {"name": "coverage", "benchmark": benchmark, "dataset": "cifar10", "schedule": "108", "estimators": ["Params"],
              "truth": {"dataset": "cifar10", "metric": "accuracy", "split": "valid"},
              "sampling": {"n_archs": n_archs, "repetitions": 2, "seed": 0}}
    return run_correlation(parse_config(config), None, root=root, progress=False)


def test_correlation_on_embedded_nb1shot1_draws_among_the_configurations_with_data():
    """Each repetition drew from the whole space and stopped at the first configuration without data."""
    run = _correlation("nb1shot1-3", 100)
    assert set(run.results["n_archs"]) == {100}
    assert run.info["archs_without_data"] == SPACES[3].n_configs - EMBEDDED[3][0]
    everything = _correlation("nb1shot1-1", "all")
    assert set(everything.results["n_archs"]) == {EMBEDDED[1][0]} and everything.info["pool_size"] == EMBEDDED[1][0]
