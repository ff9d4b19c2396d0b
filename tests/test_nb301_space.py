"""The DARTS / NAS-Bench-301 search space: conversions, validity, sampling, size.

Fixtures (real formats, copied unchanged from the sources named in shared/data/README.md):
``config_space_v2.json`` and ``encoding_v2.json`` from YAHPO's nb301 folder, and the first 20 records of
NASLib's ``naslib-zc-nasbench301.json``.
"""

from __future__ import annotations

import ast
import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.spaces import darts

FIXTURES = Path(__file__).parent / "fixtures" / "nb301"
P = "NetworkSelectorDatasetInfo:darts:"

# DARTS-V2 as printed by the DARTS code (also the genotype of nasbench301's example.py).
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)
# Worked by hand from NB301's numbering: node k's edges start at 0, 2, 5, 9; edge = start + input.
DARTS_V2_CONFIG = {
    P + "edge_normal_0": "sep_conv_3x3", P + "edge_normal_1": "sep_conv_3x3",
    P + "edge_normal_2": "sep_conv_3x3", P + "edge_normal_3": "sep_conv_3x3", P + "inputs_node_normal_3": "0_1",
    P + "edge_normal_5": "skip_connect", P + "edge_normal_6": "sep_conv_3x3", P + "inputs_node_normal_4": "0_1",
    P + "edge_normal_9": "skip_connect", P + "edge_normal_11": "dil_conv_3x3", P + "inputs_node_normal_5": "0_2",
    P + "edge_reduce_0": "max_pool_3x3", P + "edge_reduce_1": "max_pool_3x3",
    P + "edge_reduce_3": "max_pool_3x3", P + "edge_reduce_4": "skip_connect", P + "inputs_node_reduce_3": "1_2",
    P + "edge_reduce_5": "max_pool_3x3", P + "edge_reduce_7": "skip_connect", P + "inputs_node_reduce_4": "0_2",
    P + "edge_reduce_10": "max_pool_3x3", P + "edge_reduce_11": "skip_connect", P + "inputs_node_reduce_5": "1_2",
}
# By hand from encoding_v2.json: ops avg 1, dil3 2, dil5 3, max 4, sep3 5, sep5 6, skip 7; pairs 1-based.
DARTS_V2_ONNX = [5, 5, 5, 5, 0, 7, 5, 0, 0, 7, 0, 2, 0, 0,
                 4, 4, 0, 4, 7, 4, 0, 7, 0, 0, 4, 7, 0, 0,
                 1, 1, 2, 3, 2, 5]


def load_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def yahpo_x_cat(config: dict, encoding: dict, config_space: dict) -> list[int]:
    """Oracle: YAHPO's own procedure (BenchmarkSet._config_to_xs): '#na#' for absent keys, codes from the json."""
    cat_names = [f"NetworkSelectorDatasetInfo_COLON_darts_COLON_edge_{c}_{i}" for c in ("normal", "reduce") for i in range(14)]
    cat_names += [f"NetworkSelectorDatasetInfo_COLON_darts_COLON_inputs_node_{c}_{k}" for c in ("normal", "reduce") for k in (3, 4, 5)]
    hp_names = {hp["name"] for hp in config_space["hyperparameters"]}
    yahpo = {k.replace(":", "_COLON_"): v for k, v in config.items()}
    assert set(yahpo) <= hp_names
    return [encoding[name][yahpo.get(name, "#na#")] for name in cat_names]


# ---------------------------------------------------------------------------------------------- conversions


def test_darts_v2_to_config_matches_hand_worked_official_numbering():
    assert darts.genotype_to_config(DARTS_V2) == DARTS_V2_CONFIG


def test_darts_v2_onnx_codes_match_hand_worked_codes():
    enc = darts.genotype_to_encoding(DARTS_V2)
    assert darts.encodings_to_onnx(enc)[0].tolist() == DARTS_V2_ONNX


def test_onnx_encoding_equals_yahpo_procedure_on_real_encoding_and_configspace():
    encoding, config_space = load_json("encoding_v2.json"), load_json("config_space_v2.json")
    encs = darts.sample_encodings(300, seed=1)
    ours = darts.encodings_to_onnx(encs)
    for enc, row in zip(encs, ours):
        assert row.tolist() == yahpo_x_cat(darts.encoding_to_config(enc), encoding, config_space)


def test_edge_numbering_matches_conditions_of_real_configspace():
    """Each conditional edge is active exactly for the inputs_node pairs containing its source node."""
    config_space = load_json("config_space_v2.json")
    conditions = {c["child"]: (c["parent"], set(c["values"])) for c in config_space["conditions"]}
    for cell in darts.CELLS:
        for m in range(darts.N_NODES):
            for src in range(m + 2):
                child = f"NetworkSelectorDatasetInfo_COLON_darts_COLON_edge_{cell}_{darts.EDGE_START[m] + src}"
                if m == 0:
                    assert child not in conditions
                    continue
                parent, values = conditions[child]
                assert parent.endswith(f"inputs_node_{cell}_{m + 2}")
                assert values == {f"{a}_{b}" for a, b in combinations(range(m + 2), 2) if src in (a, b)}


def test_real_encoding_json_is_accepted_and_a_changed_code_is_refused():
    encoding = load_json("encoding_v2.json")
    darts.check_onnx_codes(encoding)
    key = "NetworkSelectorDatasetInfo_COLON_darts_COLON_edge_reduce_7"
    encoding[key] = {**encoding[key], "sep_conv_3x3": 6, "sep_conv_5x5": 5}
    with pytest.raises(HarnessError, match="edge_reduce_7"):
        darts.check_onnx_codes(encoding)


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trips_on_sampled_archs(seed):
    encs = darts.sample_encodings(200, seed)
    np.testing.assert_array_equal(darts.onnx_to_encodings(darts.encodings_to_onnx(encs)), encs)
    for enc in encs[:100]:
        genotype = darts.encoding_to_genotype(enc)
        np.testing.assert_array_equal(darts.genotype_to_encoding(genotype), enc)
        np.testing.assert_array_equal(darts.genotype_to_encoding(str(genotype)), enc)
        config = darts.encoding_to_config(enc)
        np.testing.assert_array_equal(darts.config_to_encoding(config), enc)
        assert darts.genotype_to_config(darts.config_to_genotype(config)) == config
        assert darts.compact_to_genotype(darts.genotype_to_compact(genotype)) == genotype


def test_round_trips_on_real_naslib_compact_keys():
    records = load_json("naslib-zc-nasbench301-first20.json")["nasbench301"]["cifar10"]
    for key in records:
        compact = ast.literal_eval(key)
        genotype = darts.compact_to_genotype(key)
        # compact <-> genotype keeps NASLib's pair order exactly
        assert [list(c) for c in darts.genotype_to_compact(genotype)] == [[tuple(p) for p in c] for c in compact]
        enc = darts.compact_to_encoding(key)
        np.testing.assert_array_equal(darts.genotype_to_encoding(genotype), enc)
        np.testing.assert_array_equal(darts.config_to_encoding(darts.encoding_to_config(enc)), enc)
        np.testing.assert_array_equal(darts.onnx_to_encodings(darts.encodings_to_onnx(enc))[0], enc)


def test_yahpo_colon_spelling_and_extra_hyperparameters_are_accepted():
    config = {k.replace(":", "_COLON_"): v for k, v in DARTS_V2_CONFIG.items()}
    config["NetworkSelectorDatasetInfo:darts:init_channels"] = 32
    config["OptimizerSelector:sgd:learning_rate"] = 0.025
    np.testing.assert_array_equal(darts.config_to_encoding(config), darts.genotype_to_encoding(DARTS_V2))


def test_summand_order_does_not_change_the_encoding():
    genotype = darts.parse_genotype(DARTS_V2)
    swapped = darts.Genotype(
        tuple(genotype.normal[i ^ 1] for i in range(8)), (2, 3, 4, 5), genotype.reduce, (2, 3, 4, 5)
    )
    np.testing.assert_array_equal(darts.genotype_to_encoding(swapped), darts.genotype_to_encoding(genotype))


def test_to_encodings_accepts_every_representation_one_or_many():
    enc = darts.genotype_to_encoding(DARTS_V2)
    compact = darts.genotype_to_compact(darts.parse_genotype(DARTS_V2))
    for one in (DARTS_V2, darts.parse_genotype(DARTS_V2), DARTS_V2_CONFIG, compact, str(compact), enc, enc.tolist()):
        np.testing.assert_array_equal(darts.to_encodings(one), enc[None, :])
    many = darts.to_encodings([DARTS_V2, DARTS_V2_CONFIG, compact])
    assert many.shape == (3, 32) and (many == enc).all()
    assert darts.to_encodings(np.stack([enc, enc]).tolist()).shape == (2, 32)


# ---------------------------------------------------------------------------------------------- validity


def _genotype(normal_node3: list[tuple[str, int]]) -> darts.Genotype:
    base = darts.parse_genotype(DARTS_V2)
    normal = list(base.normal)
    normal[2:4] = normal_node3
    return darts.Genotype(tuple(normal), (2, 3, 4, 5), base.reduce, (2, 3, 4, 5))


def test_node_with_fewer_than_two_distinct_inputs_raises_naming_it():
    with pytest.raises(HarnessError, match=r"normal cell node 3: both edges read node 1.*2 distinct inputs"):
        darts.genotype_to_encoding(_genotype([("sep_conv_3x3", 1), ("skip_connect", 1)]))


def test_unknown_op_raises_naming_it():
    with pytest.raises(HarnessError, match=r"normal cell node 3: unknown op 'conv_7x1_1x7'.*valid ops"):
        darts.genotype_to_encoding(_genotype([("conv_7x1_1x7", 0), ("skip_connect", 1)]))
    with pytest.raises(HarnessError, match=r"unknown op 'none'"):
        darts.genotype_to_encoding(_genotype([("none", 0), ("skip_connect", 1)]))


def test_input_from_a_later_node_raises_naming_it():
    with pytest.raises(HarnessError, match=r"normal cell node 3: input 3 is not an earlier node; valid inputs 0..2"):
        darts.genotype_to_encoding(_genotype([("sep_conv_3x3", 3), ("skip_connect", 1)]))


def test_bad_encodings_are_reported_per_arch():
    encs = darts.sample_encodings(3, 0)
    encs[2, 16 + 4 * 3 + 1] = 7  # reduce cell, node 5, first op
    with pytest.raises(HarnessError, match=r"arch 2: reduce cell node 5: unknown op index 7"):
        darts.check_encodings(encs)
    with pytest.raises(HarnessError, match="32 integers"):
        darts.check_encodings(np.zeros((2, 34), dtype=int))


def test_config_with_missing_op_or_unselected_edge_raises():
    config = dict(DARTS_V2_CONFIG)
    del config[P + "edge_normal_11"]
    with pytest.raises(HarnessError, match=r"edge_normal_11 .*has no op"):
        darts.config_to_encoding(config)
    config = dict(DARTS_V2_CONFIG, **{P + "edge_normal_12": "sep_conv_3x3"})
    with pytest.raises(HarnessError, match=r"sets edge_normal_12"):
        darts.config_to_encoding(config)
    config = dict(DARTS_V2_CONFIG, **{P + "inputs_node_normal_4": "2_2"})
    with pytest.raises(HarnessError, match=r"inputs_node_normal_4.*'2_2'"):
        darts.config_to_encoding(config)


def test_onnx_rows_with_extra_active_edge_are_refused():
    x = darts.encodings_to_onnx(darts.genotype_to_encoding(DARTS_V2))
    x[0, 12] = 5  # edge_normal_12 is not selected by inputs_node_normal_5 = 0_2
    with pytest.raises(HarnessError, match="normal cell node 5"):
        darts.onnx_to_encodings(x)


def test_genotype_string_is_parsed_not_executed():
    with pytest.raises(HarnessError):
        darts.parse_genotype("Genotype(normal=__import__('os').getcwd(), reduce=[])")


def test_concat_other_than_nodes_2_to_5_is_refused_not_ignored():
    """Pitfall: normal_concat / reduce_concat were ignored, so a cell concatenating other nodes than
    NB301's 2..5 got the encoding (and the prediction) of a different network."""
    genotype = darts.parse_genotype(DARTS_V2)
    assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)
    for name, concat in (("normal_concat", (2,)), ("reduce_concat", range(2, 5)), ("normal_concat", None)):
        with pytest.raises(HarnessError, match=f"{name} is .*NB301 cells concatenate nodes 2..5"):
            darts.genotype_to_encoding(genotype._replace(**{name: concat}))
        with pytest.raises(HarnessError, match=f"{name} is"):
            darts.genotype_to_compact(genotype._replace(**{name: concat}))
    with pytest.raises(HarnessError, match=r"reduce_concat is \[2, 3\]"):
        darts.genotype_to_encoding(DARTS_V2.replace("reduce_concat=range(2, 6)", "reduce_concat=[2, 3]"))
    same = DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=[2, 3, 4, 5]").replace(", reduce_concat=range(2, 6)", "")
    np.testing.assert_array_equal(darts.genotype_to_encoding(same), darts.genotype_to_encoding(DARTS_V2))


# ---------------------------------------------------------------------------------------------- sampling, size


def test_sampling_is_seeded_distinct_and_valid():
    a, b = darts.sample_encodings(500, 7), darts.sample_encodings(500, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, darts.sample_encodings(500, 8))
    assert len(np.unique(a, axis=0)) == 500
    np.testing.assert_array_equal(darts.check_encodings(a), a)


def test_sampling_is_uniform_over_input_pairs_and_ops():
    encs = darts.sample_encodings(20000, 3).reshape(-1, 2, 4, 2, 2).astype(int)
    for m in range(4):
        pairs = encs[:, :, m, 0, 0] * 10 + encs[:, :, m, 1, 0]
        counts = np.unique(pairs, return_counts=True)[1]
        k = math.comb(m + 2, 2)
        assert len(counts) == k
        expected = 40000 / k
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    ops = np.bincount(encs[..., 1].ravel(), minlength=7)
    assert np.all(np.abs(ops - ops.mean()) < 5 * np.sqrt(ops.mean()))


def test_search_space_size_counts_the_real_configspace_choices():
    """Per cell: node 2 has 1 input pair, nodes 3..5 as many as their inputs_node choices; 7 ops per edge."""
    config_space = load_json("config_space_v2.json")
    per_cell = 1
    for hp in config_space["hyperparameters"]:
        if "inputs_node_normal" in hp["name"]:
            per_cell *= len(hp["choices"])
    per_cell *= len(darts.OPS) ** 8
    assert darts.search_space_size() == per_cell**2
    assert 1e18 < darts.search_space_size() < 1.1e18


@pytest.mark.parametrize("seed", [None, 1.5, True])
def test_sampling_without_an_explicit_int_seed_is_refused(seed):
    with pytest.raises(HarnessError, match=f"seed must be a non-negative int or a numpy Generator, got {seed}"):
        darts.sample_encodings(2, seed)
