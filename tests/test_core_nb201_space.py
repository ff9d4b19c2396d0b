"""The NB201 space: arch strings, op tuples, official indices, isomorphism classes."""

import pytest

from harness import HarnessError
from harness.adapters.nb201 import embedded_table
from harness.spaces import nb201 as space


def test_every_embedded_arch_string_round_trips_through_the_op_tuple():
    for arch in embedded_table()["arch_str"]:
        assert space.ops_to_arch(space.arch_to_ops(arch)) == arch


def test_embedded_table_holds_each_of_the_15625_cells_once():
    ops = {space.arch_to_ops(a) for a in embedded_table()["arch_str"]}
    assert ops == set(space.all_ops())


def test_isomorphism_classes_match_the_paper_count():
    assert space.n_isomorphism_classes() == 6466


def test_isomorphic_cells_share_a_canonical_form():
    # node 3 = conv(node 0) + skip(node 1) vs. the same with the two summands' edges swapped in order
    a = ("skip_connect", "nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "none")
    b = ("skip_connect", "nor_conv_3x3", "none", "nor_conv_1x1", "none", "skip_connect")
    # b: node3 gets skip(node2) where node2 = conv3(node0); a: skip(node1) where node1 = node0
    assert space.canonical(a) != space.canonical(b)
    # a none edge into node 1 makes everything downstream of node 1 zero
    c = ("none", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none")
    d = ("none", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "none")
    assert space.canonical(c) == space.canonical(d)


def test_skip_connect_is_transparent_but_ops_are_not():
    # node 1 = skip(x) = x, so conv3 on edge 0->3 and conv1 on edge 1->3 equal the swapped pair
    a = ("skip_connect", "none", "none", "nor_conv_3x3", "nor_conv_1x1", "none")
    b = ("skip_connect", "none", "none", "nor_conv_1x1", "nor_conv_3x3", "none")
    assert space.canonical(a) == space.canonical(b)
    c = ("avg_pool_3x3",) + b[1:]  # node 1 is no longer x
    assert space.canonical(a) != space.canonical(c)


@pytest.mark.parametrize(
    "bad",
    [
        "|conv~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|",
        "none~0",
    ],
)
def test_malformed_arch_strings_raise_naming_the_fault(bad):
    with pytest.raises(HarnessError):
        space.arch_to_ops(bad)


def test_naslib_encoding_maps_edges_and_op_codes():
    # NASLib edge (1,2) is our 0->1, (2,3) our 1->2; op code 2 = nor_conv_3x3, 1 = none
    ops = space.naslib_tuple_to_ops((2, 1, 1, 0, 1, 4))
    assert ops == ("nor_conv_3x3", "none", "skip_connect", "none", "none", "avg_pool_3x3")
