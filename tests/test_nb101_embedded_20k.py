"""The embedded NB101 data: 20,001 real cells (values) beside the 1,000 with graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.adapters import nb101
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.spaces.nb101 import N_CELLS

# The real source file (tiga1231/nasbench-vis, commit 7aec0e7, static/data/data-20k.json); present on
# the project's machines, not in the package.
SOURCE_20K = Path("/work/shared/data/nb101/nasbench-vis-data-20k.json")
BUDGETS = (4, 12, 36, 108)


@pytest.mark.skipif(not SOURCE_20K.is_file(), reason=f"the source file {SOURCE_20K} is not on this machine")
def test_the_embedded_table_holds_every_value_of_the_source_exactly():
    source = json.loads(SOURCE_20K.read_text())
    table = nb101.embedded_values()
    order = np.argsort(source["key"], kind="stable")
    assert table.hash.tolist() == [source["key"][i] for i in order]
    for budget in BUDGETS:
        expected = np.asarray(source[f"{budget}_final_validation_accuracy"])[order]
        assert np.array_equal(table[f"valid_{budget}"].to_numpy(np.float64), expected)
    assert np.array_equal(table.time_108.to_numpy(np.float64), np.asarray(source["final_training_time"])[order])
    assert table.params.tolist() == [source["trainable_parameters"][i] for i in order]


def test_the_1k_cells_with_graphs_have_the_same_values_as_in_the_20k_table():
    """Exact agreement: the 1k file is the first 1,000 rows (smallest hashes) of the 20k one."""
    graphs = nb101.embedded_table()
    values = nb101.embedded_values()
    assert graphs.hash.tolist() == values.hash.tolist()[:1000]
    shared = values.iloc[:1000].reset_index(drop=True)
    for column in [*(f"valid_{b}" for b in BUDGETS), "time_108", "params"]:
        assert np.array_equal(graphs[column].to_numpy(np.float64), shared[column].to_numpy(np.float64)), column


def test_load_benchmark_nb101_answers_all_20001_cells_by_hash_with_their_real_values():
    bench = load_benchmark("nb101")
    table = nb101.embedded_values()
    caps = bench.capabilities()
    assert caps.n_archs == len(table) == 20001 and caps.coverage() == "20,001 archs"
    assert any(f"20,001 of the {N_CELLS:,} NB101 cells" in note for note in caps.notes)
    got = bench.query(table.hash.tolist(), "cifar10", "accuracy", "valid", "108").values[:, 0, 0]
    np.testing.assert_array_equal(got, 100 * table.valid_108.to_numpy(np.float64))
    params = bench.query(np.arange(len(table)), "cifar10", "params", "cost", "108").values[:, 0, 0]
    np.testing.assert_array_equal(params, table.params.to_numpy(np.float64) / 1e6)


def test_spec_gives_each_of_the_1000_graphs_and_refuses_the_others_by_name():
    bench = load_benchmark("nb101")
    graphs = nb101.embedded_table()
    assert [bench.spec(h).hash() for h in graphs.hash] == graphs.hash.tolist()
    row = int(bench.resolve(nb101.embedded_values().hash.iloc[5000])[0])
    with pytest.raises(HarnessError, match=rf"no graph for NB101 row {row} \(module hash [0-9a-f]{{32}}\): the data opened "
                                           r"holds the graphs of 1,000 of its 20,001 cells; the official tfrecord"):
        bench.spec(row)


def test_a_cell_outside_the_table_says_how_many_cells_it_holds():
    with pytest.raises(HarnessError, match=r"not in this benchmark: it holds 20,001 of the 423,624 NB101 cells; "
                                           r"the official tfrecord holds all"):
        load_benchmark("nb101").query("f" * 32, "cifar10", "accuracy", "valid", "108")


def test_the_embedded_nb101_data_stays_small():
    sizes = {p.name: p.stat().st_size for p in nb101.EMBEDDED_DIR.iterdir() if p.is_file()}
    assert sum(sizes.values()) < 2_000_000, sizes
