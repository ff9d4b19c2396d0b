"""NB101 space: the official module hash, pruning, validity and isomorphism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.adapters.nb101 import embedded_table, naslib_zero_cost
from harness.errors import HarnessError
from harness.spaces.nb101 import (
    CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, ModelSpec, hash_module, is_isomorphic, permute, prune,
    spec_from_naslib, spec_from_vis,
)

FIXTURES = Path(__file__).parent / "fixtures" / "nb101"


def test_hash_reproduces_all_1000_official_keys():
    table = embedded_table()  # 'hash' is the source file's own key, copied verbatim
    ours = [ModelSpec(np.frombuffer(a.encode(), np.uint8).reshape(len(o.split(",")), -1) - 48, o.split(",")).hash()
            for a, o in zip(table.adjacency, table.operations)]
    assert len(table) == 1000
    assert ours == table.hash.tolist()


def test_hash_of_real_vis_cells_with_padding_vertices():
    data = json.loads((FIXTURES / "nasbench-vis-data-20.json").read_text())
    padded = [i for i, ops in enumerate(data["operations"]) if -3 in ops]
    assert padded
    for adjacency, ops, key in zip(data["adjacency"], data["operations"], data["key"]):
        assert spec_from_vis(adjacency, ops).hash() == key


def test_float_matrix_pitfall_is_refused():
    # degrees of a float matrix print as 2.0 and would silently give a different hash
    with pytest.raises(HarnessError, match="integer"):
        hash_module(np.array([[0.0, 1.0], [0.0, 0.0]]), [-1, -2])


def test_naslib_encoding_matches_real_cell():
    # the one cell both real sources share: same hash, same params and same 108-epoch accuracy
    zc = naslib_zero_cost()
    table = embedded_table().set_index("hash")
    shared = zc[zc.hash.isin(table.index)]
    assert len(shared) >= 1
    for row in shared.itertuples():
        assert spec_from_naslib([int(v) for v in row.encoding.split()]).hash() == row.hash
        assert row.params == pytest.approx(table.loc[row.hash, "params"] / 1e6)
        assert row.val_accuracy == pytest.approx(100 * table.loc[row.hash, "valid_108"])


DIAMOND = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])


def test_hash_is_invariant_to_swapping_parallel_branches():
    assert hash_module(DIAMOND, [-1, 0, 2, -2]) == hash_module(DIAMOND, [-1, 2, 0, -2])


def test_hash_separates_op_order_on_a_chain():
    chain = np.eye(5, k=1, dtype=int)
    assert hash_module(chain, [-1, 0, 1, 2, -2]) != hash_module(chain, [-1, 2, 1, 0, -2])


def test_hash_uses_edge_direction():
    m = np.array([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert hash_module(m, [-1, 2, 1, -2]) != hash_module(m, [-1, 1, 2, -2])


def test_hash_uses_in_neighbours_not_only_out_neighbours():
    m = np.array([[0, 1, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0],
                  [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]])
    assert hash_module(m, [-1, 2, 0, 0, 0, -2]) != hash_module(m, [-1, 0, 0, 2, 0, -2])


def test_random_permutations_keep_the_hash():
    rng = np.random.default_rng(7)
    for _ in range(200):
        size = int(rng.integers(3, 10))
        matrix = rng.integers(0, 2, (size, size))
        labels = rng.integers(0, 5, size).tolist()
        perm = rng.permutation(size)
        pm, pl = permute(matrix, labels, perm)
        assert hash_module(pm, pl) == hash_module(matrix, labels)


def test_permute_moves_vertex_v_to_perm_v():
    m = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    pm, pl = permute(m, ["a", "b", "c"], [2, 0, 1])  # a->2, b->0, c->1
    assert pl == ["b", "c", "a"]
    assert pm[2, 0] == 1 and pm[0, 1] == 1 and pm.sum() == 2


def test_isomorphic_specs_are_equal_and_hash_equal():
    a = ModelSpec(np.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]),
                  [INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT])
    b = ModelSpec(np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]),
                  [INPUT, CONV1X1, MAXPOOL3X3, CONV3X3, OUTPUT])
    c = ModelSpec(b.matrix, [INPUT, CONV3X3, MAXPOOL3X3, CONV1X1, OUTPUT])
    assert is_isomorphic(a, b) and a == b and a.hash() == b.hash()
    assert not is_isomorphic(a, c) and a.hash() != c.hash()


def test_prune_removes_dangling_and_unreachable_vertices():
    # vertex 1 has no output (dangling), vertex 2 is not reachable from the input
    m = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    matrix, ops = prune(m, ["in", "a", "b", "c", "out"])
    assert ops == ["in", "c", "out"]
    assert matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]


def test_prune_keeps_full_dag_unchanged():
    matrix, ops = prune(DIAMOND, list("abcd"))
    assert np.array_equal(matrix, DIAMOND) and ops == list("abcd")


def test_disconnected_spec_is_invalid_with_reason():
    spec = ModelSpec(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]), [INPUT, CONV3X3, CONV3X3, OUTPUT])
    assert not spec.valid_spec
    with pytest.raises(HarnessError, match="not connected"):
        spec.hash()


def test_pruned_isomorph_has_the_same_hash_as_its_core():
    core = ModelSpec(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [INPUT, CONV3X3, OUTPUT])
    padded = ModelSpec(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]), [INPUT, CONV3X3, MAXPOOL3X3, OUTPUT])
    assert padded.hash() == core.hash()


def test_space_limits_are_checked_after_pruning():
    full = np.triu(np.ones((7, 7), dtype=int), 1)  # 21 edges
    with pytest.raises(HarnessError, match="21 edges"):
        ModelSpec(full, [INPUT] + [CONV3X3] * 5 + [OUTPUT]).hash()
    eight = np.eye(8, k=1, dtype=int)
    with pytest.raises(HarnessError, match="8 vertices"):
        ModelSpec(eight, [INPUT] + [CONV3X3] * 6 + [OUTPUT]).hash()
    with pytest.raises(HarnessError, match="unknown op 'conv5x5'"):
        ModelSpec(np.eye(3, k=1, dtype=int), [INPUT, "conv5x5", OUTPUT]).hash()
    with pytest.raises(HarnessError, match="first op"):
        ModelSpec(np.eye(3, k=1, dtype=int), [CONV3X3, CONV3X3, OUTPUT]).hash()


def test_malformed_matrices_are_refused():
    with pytest.raises(HarnessError, match="upper triangular"):
        ModelSpec(np.array([[0, 0], [1, 0]]), [INPUT, OUTPUT])
    with pytest.raises(HarnessError, match="square"):
        ModelSpec(np.zeros((2, 3), dtype=int), [INPUT, OUTPUT])
    with pytest.raises(HarnessError, match="ops"):
        ModelSpec(np.zeros((3, 3), dtype=int), [INPUT, OUTPUT])


def test_input_as_an_inner_op_is_not_called_an_unknown_op():
    with pytest.raises(HarnessError, match=r"first op is 'conv3x3-bn-relu', must be 'input'; 'input' as an inner op") as err:
        ModelSpec(np.eye(3, k=1, dtype=int), [CONV3X3, INPUT, OUTPUT]).hash()
    assert "unknown op" not in str(err.value)


@pytest.mark.parametrize("matrix,ops,fragment", [
    ([[0, 1], [0]], [INPUT, OUTPUT], r"square 0/1 matrix .*got \[\[0, 1\], \[0\]\]"),
    ([[0, 1], [0, 0]], None, "ops must be a list or tuple of op names"),
    ([[0, 1], [0, 0]], "io", "ops must be a list or tuple of op names .*got 'io'"),
    ([[0, 1], [0, 0]], [INPUT, 1], "ops must be a list or tuple of op names"),
])
def test_ragged_matrix_or_ops_that_are_not_a_list_of_names_are_refused(matrix, ops, fragment):
    """Pitfall: a ragged matrix raised numpy's ValueError, ops=None a TypeError, and ops="io" was read
    as the two ops 'i', 'o'."""
    with pytest.raises(HarnessError, match=fragment):
        ModelSpec(matrix, ops)
