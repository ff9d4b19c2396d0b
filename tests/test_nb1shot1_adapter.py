"""NAS-Bench-1Shot1 benchmarks answer through the NB101 adapter."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from harness.adapters import nb101
from harness.errors import HarnessError, NotAvailableError
from harness.registry import load_benchmark
from harness.spaces.nb1shot1 import SPACES
from nb101_fixtures import write_fixture


def _configs_in(number: int, table: pd.DataFrame, limit: int = 5):
    known = set(table.hash)
    space = SPACES[number]
    found = (c for c in space.enumerate(loose_ends=False) if space.to_spec(c).hash() in known)
    return list(itertools.islice(found, limit))


@pytest.mark.parametrize("number", [1, 2, 3])
def test_embedded_queries_equal_nb101_queries(number):
    bench = load_benchmark(f"nb1shot1-{number}")
    base = load_benchmark("nb101")
    configs = _configs_in(number, nb101.embedded_values())
    assert configs
    got = bench.query(configs, "cifar10", "accuracy", "valid", "108").values
    hashes = [SPACES[number].to_spec(c).hash() for c in configs]
    np.testing.assert_array_equal(got, base.query(hashes, "cifar10", "accuracy", "valid", "108").values)
    assert bench.capabilities().n_archs == SPACES[number].n_configs
    index = SPACES[number].index(configs[0])
    np.testing.assert_array_equal(bench.query(index, "cifar10", "accuracy", "valid", "108").values, got[:1])


def test_missing_arch_is_named_with_the_count_and_where_to_draw_archs_with_data():
    bench = load_benchmark("nb1shot1-3")
    assert 0 not in bench.archs_with_data()
    with pytest.raises(HarnessError) as err:
        bench.query([0, 1, int(bench.archs_with_data()[0])], "cifar10", "accuracy", "valid", "108")
    message = str(err.value)
    assert message.startswith("nb1shot1-3: 2 of the 3 archs asked have no data, e.g. nb1shot1-3[")
    assert "100,712 of the 1,312,200 configurations have data" in message
    assert "sample(n, seed, with_data=True) and archs_with_data() draw among the configurations with data" in message
    assert "20,001 of the 423,624 NB101 cells" in message


def test_losses_not_available():
    with pytest.raises(NotAvailableError, match="records no losses"):
        load_benchmark("nb101-1").query(0, "cifar10", "loss", "train", "108")


def test_through_a_converted_store(tmp_path):
    write_fixture(tmp_path / "f.tfrecord", n_cells=None, budgets=(108,))
    store = nb101.convert(tmp_path / "f.tfrecord", tmp_path / "store")
    bench = load_benchmark("nb1shot1-2", root=store)
    configs = _configs_in(2, nb101.embedded_table())  # the fixture's cells: the 1,000 with graphs
    res = bench.query(configs, "cifar10", "accuracy", "valid", "108", epochs=108)
    assert res.values.shape == (len(configs), 3, 1) and res.mask.all()


@pytest.mark.parametrize("archs", ["abc", 1.0, None, np.zeros((2, 2), dtype=int)])
def test_archs_that_are_not_configs_or_indices_raise_harness_error(archs):
    """Pitfall: "abc" was iterated (the error named 'a'); 1.0 and None raised TypeError."""
    bench = load_benchmark("nb1shot1-1")
    with pytest.raises(HarnessError, match=r"nb1shot1-1 archs must be .*1-D sequence|shape \(2, 2\)"):
        bench.resolve(archs)


def test_capabilities_say_configs_are_not_distinct_cells():
    notes = load_benchmark("nb1shot1-1").capabilities().notes
    assert any("14,580 configurations are 2,685 cells" in note for note in notes)
