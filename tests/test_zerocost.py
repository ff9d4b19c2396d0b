"""The zero-cost tables: what ``resolve`` accepts and what a malformed NASLib file raises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.spaces import darts
from harness.zerocost import open_zerocost, read_naslib_json

FIRST_KEY = "(0, 2, 3, 2, 3, 1)"  # row 0 of the nb201 table, NB201 index 4811, cifar10 x-valid 86.06


@pytest.fixture(scope="module")
def nb201():
    return open_zerocost("nb201")


def test_naslib_tuple_is_refused_not_read_as_six_row_numbers(nb201):
    """Pitfall: the table's own key (0, 2, 3, 2, 3, 1) as a tuple came back as six rows 0, 2, 3, 2, 3, 1."""
    with pytest.raises(HarnessError, match=r"NASLib NB201 tuple.*zc.resolve\('\(0, 2, 3, 2, 3, 1\)'\).*rows_of_nb201"):
        nb201.query((0, 2, 3, 2, 3, 1), "cifar10", "accuracy", split="x-valid", schedule="200")
    by_key = nb201.query(FIRST_KEY, "cifar10", "accuracy", split="x-valid", schedule="200").values
    assert by_key.shape == (1, 1, 1) and by_key[0, 0, 0] == 86.06


def test_two_dimensional_arrays_are_refused_not_flattened(nb201):
    """Pitfall: a [2, 2] array became four rows, and two DARTS encodings [2, 32] sixty-four rows."""
    with pytest.raises(HarnessError, match=r"1-D sequence, got an array of shape \(2, 2\)"):
        nb201.resolve(np.array([[1, 2], [3, 4]]))
    nb301 = open_zerocost("nb301")
    with pytest.raises(HarnessError, match=r"shape \(2, 32\)"):
        nb301.resolve(darts.to_encodings(list(nb301.archs[:2])))


@pytest.mark.parametrize("archs", [None, 1.0, True, [True, False], [1.0]])
def test_non_integer_rows_raise_harness_error_naming_what_is_valid(nb201, archs):
    """Pitfall: None and 1.0 raised TypeError; bools were read as rows 1 and 0."""
    with pytest.raises(HarnessError, match=r"row number 0\.\.724.*NASLib key string"):
        nb201.resolve(archs)


def test_list_of_genotypes_on_the_nb301_table_raises_harness_error():
    """Pitfall: numpy turned the list of genotypes into a ragged array and raised ValueError."""
    nb301 = open_zerocost("nb301")
    with pytest.raises(HarnessError, match="is not in the nb301-zc table"):
        nb301.resolve([darts.compact_to_genotype(nb301.archs[0])])


def test_rows_are_the_tables_order_and_rows_of_nb201_maps_official_indices(nb201):
    rows = np.arange(nb201.capabilities().n_archs)
    np.testing.assert_array_equal(nb201.resolve(rows), rows)
    assert nb201.resolve([0, "(4, 0, 4, 1, 2, 0)"]).tolist() == [0, 1]
    assert nb201.rows_of_nb201([4811, 5480]).tolist() == [0, 1]
    with pytest.raises(HarnessError, match="row 725 out of range for nb201-zc: valid 0..724"):
        nb201.resolve([0, 725])
    with pytest.raises(HarnessError, match="NB201 index 0 is not among the 725 archs"):
        nb201.rows_of_nb201(0)
    with pytest.raises(HarnessError, match="needs the nb201 zero-cost table"):
        open_zerocost("nb101").rows_of_nb201(0)
    assert any("not NB201 indices" in note for note in nb201.capabilities().notes)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "zc.json"
    path.write_text(json.dumps(data))
    return path


GOOD = {"val_accuracy": 90.0, "synflow": {"score": 1.5, "time": 0.1}}


@pytest.mark.parametrize("record,fragment", [
    ({"val_accuracy": None}, "val_accuracy must be a number, got None"),
    ({"val_accuracy": 90.0, "synflow": {"score": None, "time": 0.1}}, "proxy 'synflow' must be a number, got None"),
    ({"val_accuracy": 90.0, "synflow": "x"}, "proxy 'synflow' must be a number, got 'x'"),
    ({"val_accuracy": 90.0, "synflow": {"time": 1}}, "proxy 'synflow' is a record without \"score\""),
    ({"val_accuracy": 90.0, "idx": "x"}, "idx must be a non-negative integer, got 'x'"),
])
def test_malformed_records_raise_naming_file_and_key(tmp_path, record, fragment):
    """Pitfall: these escaped as TypeError, ValueError or KeyError without the file or key."""
    path = _write(tmp_path, {"cifar10": {"(0, 0, 0, 0, 0, 0)": record}})
    with pytest.raises(HarnessError, match=f"zc.json: cifar10 arch '\\(0, 0, 0, 0, 0, 0\\)'.*{fragment}"):
        read_naslib_json(path, "nb201")


def test_an_absent_proxy_stays_missing_but_null_is_refused(tmp_path):
    """The real NB201 file lacks synflow for one cifar10 arch by leaving the key out: that is NaN, not an error."""
    path = _write(tmp_path, {"cifar10": {"(0, 0, 0, 0, 0, 0)": GOOD, "(0, 0, 0, 0, 0, 1)": {"val_accuracy": 80.0}}})
    assert np.isnan(read_naslib_json(path, "nb201")["synflow"].iloc[1])


def test_one_arch_under_two_spellings_of_its_key_is_refused(tmp_path):
    """Pitfall: '(0, 0, 0, 0, 0, 1)' and '(0,0,0,0,0,1)' became two rows of one NB201 arch with other accuracies."""
    path = _write(tmp_path, {"cifar10": {"(0, 0, 0, 0, 0, 1)": GOOD, "(0,0,0,0,0,1)": {"val_accuracy": 10.0}}})
    with pytest.raises(HarnessError, match=r"'\(0,0,0,0,0,1\)' is the arch of key '\(0, 0, 0, 0, 0, 1\)' spelled differently"):
        read_naslib_json(path, "nb201")


@pytest.mark.parametrize("space,key,fragment", [
    ("nb101", "garbage", "not a NASLib nb101 arch key"),
    ("nb101", str(tuple([0] * 56)), "the input is not connected to the output"),
    ("nb301", "garbage", "not a NASLib nb301 arch key"),
    ("nb301", "[[(0, 0)], [(0, 0)]]", "2 cells of 8 \\(input, op\\) integer pairs"),
    ("nb201", "(0, 0, 0, 0, 0, 1.5)", "not a NASLib nb201 arch key: expected a tuple of integers"),
], ids=["nb101-garbage", "nb101-disconnected", "nb301-garbage", "nb301-short", "nb201-float"])
def test_keys_that_are_not_archs_of_the_space_are_refused(tmp_path, space, key, fragment):
    """Pitfall: NB101 and NB301 keys were never parsed, so 'garbage' became an arch."""
    top = {"nb101": "nasbench101", "nb301": "nasbench301"}
    data = {"cifar10": {key: GOOD}}
    path = _write(tmp_path, {top[space]: data} if space in top else data)
    with pytest.raises(HarnessError, match=f"zc.json: cifar10 arch .*{fragment}"):
        read_naslib_json(path, space)


def test_unknown_dataset_is_refused_naming_the_valid_ones(tmp_path):
    """Pitfall: 'cifar1000' was read as a dataset of its own."""
    path = _write(tmp_path, {"cifar1000": {"(0, 0, 0, 0, 0, 0)": GOOD}})
    with pytest.raises(HarnessError, match="unknown dataset .*'cifar1000'; valid: 'cifar10', 'cifar100', 'ImageNet16-120'"):
        read_naslib_json(path, "nb201")


def test_nb201_cifar10_val_accuracy_is_the_cifar10_valid_run_as_its_label_and_description_say(nb201):
    """NB201's cifar10 run has no validation split; NASLib's cifar10 val_accuracy tracks the
    cifar10-valid run (trained on 25k images), which the column's x-valid label and description say."""
    from harness import load_benchmark

    column = nb201.capabilities().column("cifar10", "accuracy", "x-valid", "200")
    assert "cifar10-valid run" in column.description
    official = nb201.frame.loc[nb201.frame["dataset"] == "cifar10", "index"].to_numpy()
    naslib = nb201.query(nb201.rows_of_nb201(official), "cifar10", "accuracy", "x-valid").values[:, 0, 0]
    nb201_table = load_benchmark("nb201")
    valid_run = nb201_table.final(official, "cifar10-valid", "accuracy", "x-valid", "200")
    full_run = nb201_table.final(official, "cifar10", "accuracy", "ori-test", "200")
    assert np.median(np.abs(naslib - valid_run)) < 0.5 < 3.0 < np.median(np.abs(naslib - full_run))
