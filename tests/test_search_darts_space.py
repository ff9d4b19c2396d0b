"""The search-space side of differentiable search on the DARTS space and its S2 subspace, and the
interface NB201 shares: the DARTS network's mixed forward against its single-path forward, the S2
network's modules, DARTS's derivation rule on hand-built and random alphas, NB201's search space
against the algorithms' loss, and the derived genotype's NB301 truth against the adapter."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.search import derive
from harness.search.algorithms import loss
from harness.search.config import SearchConfig
from harness.search.diagnostics import cell_depth_darts
from harness.search.loop import init_state
from harness.search.spaces import S2_OPS, SEARCH_SPACES, get_search_space
from harness.spaces.darts import EDGE_START, PRIMITIVES, Genotype, encoding_to_genotype, sample_encodings
from harness.supernet.config import NetworkConfig
from harness.supernet.darts_model import DartsNetwork, materialise
from harness.supernet.spaces.darts import DartsShape, canonical
from test_ws_darts import CONCAT
from test_ws_darts import DARTS_V2 as DARTS_V2_CELLS

torch.set_num_threads(1)

SHAPE = DartsShape(channels=2, cells_per_stage=1)  # 5 cells, reductions at cells 1 and 3
DARTS_V2 = canonical(DARTS_V2_CELLS)  # DARTS's published second-order cells
# an S2 genotype: skips on the reduction cell's stride-2 edges (FactorizedReduce), every node read
S2_GENOTYPE = canonical(Genotype(
    normal=(("sep_conv_3x3", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_3x3", 2),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("skip_connect", 2), ("sep_conv_3x3", 4)),
    normal_concat=CONCAT,
    reduce=(("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2),
            ("skip_connect", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("skip_connect", 4)),
    reduce_concat=CONCAT,
))
CASES = [
    (PRIMITIVES, DARTS_V2),
    *((PRIMITIVES, encoding_to_genotype(sample_encodings(1, seed)[0])) for seed in range(2)),
    (S2_OPS, S2_GENOTYPE),
]


def _supernet(candidates: tuple[str, ...], seed: int = 0) -> DartsNetwork:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DartsNetwork(SHAPE, candidates=candidates).double()


def _images(n: int = 4, side: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _one_hot(genotype: Genotype, ops: tuple[str, ...]) -> torch.Tensor:
    """Mixed weights ``[2, 14, len(ops)]``: 1 on the genotype's op on each of its edges, on ``none`` on
    every other edge (all zeros there where ``ops`` has no ``none``)."""
    weights = torch.zeros(2, 14, len(ops), dtype=torch.float64)
    if "none" in ops:
        weights[:, :, ops.index("none")] = 1.0
    for c, cell in enumerate((genotype.normal, genotype.reduce)):
        for k, (op, src) in enumerate(cell):
            edge = EDGE_START[k // 2] + src
            weights[c, edge] = 0.0
            weights[c, edge, ops.index(op)] = 1.0
    return weights


def _search_config(space: str) -> SearchConfig:
    # dataclasses.replace, not with_overrides: the test does not depend on which spaces the config accepts
    return dataclasses.replace(SearchConfig(), space=space, network=dataclasses.replace(NetworkConfig(), channels=2, cells_per_stage=1))


# --------------------------------------------------------------------------- the mixed forward


@pytest.mark.parametrize("ops, genotype", CASES, ids=["darts_v2", "uniform0", "uniform1", "s2"])
def test_the_mixed_forward_with_one_hot_weights_is_the_genotypes_single_path_forward(ops: tuple[str, ...], genotype: Genotype) -> None:
    net, x, weights = _supernet(ops), _images(), _one_hot(genotype, ops)
    for mode in (True, False):  # training: batch statistics everywhere; eval: the stem BN's running statistics
        net.train(mode)
        single = net(x, genotype)
        assert torch.equal(net(x, weights), single), mode  # bit for bit
    # the mixed forward is not the single path for other weights, and none adds nothing whatever its weight
    noisy = weights + 0.1 * torch.rand(weights.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(net(x, noisy), single)
    if "none" in ops:
        other_none = noisy.clone()
        other_none[..., ops.index("none")] = 5.0
        assert torch.equal(net(x, other_none), net(x, noisy))


def test_every_op_of_the_mixed_forward_gets_a_gradient_and_so_do_the_weights() -> None:
    for ops in (PRIMITIVES, S2_OPS):
        net = _supernet(ops)
        alpha = torch.randn(2, 14, len(ops), dtype=torch.float64, generator=torch.Generator().manual_seed(3)).requires_grad_()
        logits = SEARCH_SPACES["darts" if ops == PRIMITIVES else "darts-s2"].logits(net, _images(), torch.softmax(alpha, -1))
        torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
        assert alpha.grad is not None and (alpha.grad[..., [i for i, op in enumerate(ops) if op != "none"]] != 0).all()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()), ops


def test_the_s2_network_holds_only_skip_and_sep3_under_the_supernets_parameter_names() -> None:
    s2, full = _supernet(S2_OPS), _supernet(PRIMITIVES)
    assert S2_OPS == ("skip_connect", "sep_conv_3x3")
    assert all(tuple(edge) == S2_OPS for cell in s2.cells for edge in cell.edges)
    assert all(tuple(edge) == PRIMITIVES[1:] for cell in full.cells for edge in cell.edges)
    assert s2.candidates == S2_OPS and full.candidates == PRIMITIVES
    shapes = {name: t.shape for name, t in full.state_dict().items()}
    assert set(s2.state_dict()) < set(shapes) and all(shapes[n] == t.shape for n, t in s2.state_dict().items())
    built = SEARCH_SPACES["darts-s2"].build_network(_search_config("darts-s2"))
    assert {n: t.shape for n, t in built.state_dict().items()} == {n: t.shape for n, t in s2.state_dict().items()}
    x = _images()
    assert torch.equal(materialise(s2, S2_GENOTYPE)(x), s2(x, S2_GENOTYPE))  # materialise reads an S2 supernet too
    with pytest.raises(HarnessError, match="holds the ops"):
        s2(x, DARTS_V2)
    with pytest.raises(HarnessError, match=r"\[2, 14, 2\]"):
        s2(x, torch.zeros(2, 14, 8, dtype=torch.float64))
    with pytest.raises(HarnessError, match="needs the DARTS supernet"):
        materialise(s2, S2_GENOTYPE)(x, _one_hot(S2_GENOTYPE, S2_OPS))
    for bad in (("sep_conv_3x3", "skip_connect"), ("none",), ("skip_connect", "conv_7x1")):
        with pytest.raises(HarnessError, match="candidate ops"):
            DartsNetwork(SHAPE, candidates=bad)
    with pytest.raises(HarnessError, match="candidates are a supernet's"):
        DartsNetwork(SHAPE, S2_GENOTYPE, candidates=S2_OPS)


# --------------------------------------------------------------------------- DARTS's derivation


def _softmax(alpha: np.ndarray) -> np.ndarray:
    weights = np.exp(alpha - alpha.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _reference_genotype(weights: np.ndarray, ops: tuple[str, ...]) -> Genotype:
    """DARTS's genotype() step by step on the op weights (its softmax over all ops): edges by largest
    non-none weight in a stable sort, ops by a strict > over the non-none ops."""
    cells = []
    for c in range(2):
        pairs = []
        for m, start in enumerate(EDGE_START):
            rows = weights[c, start:start + m + 2]
            real = [k for k in range(len(ops)) if ops[k] != "none"]
            for j in sorted(range(m + 2), key=lambda j: -max(rows[j][k] for k in real))[:2]:
                best = None
                for k in real:
                    if best is None or rows[j][k] > rows[j][best]:
                        best = k
                pairs.append((ops[best], j))
        cells.append(tuple(pairs))
    return canonical(Genotype(cells[0], CONCAT, cells[1], CONCAT))


def test_the_derived_genotype_keeps_the_two_strongest_non_none_edges_per_node_and_their_best_op() -> None:
    alpha = np.zeros((2, 14, 8))
    none, skip, sep3, sep5, dil3, avg, dil5 = (PRIMITIVES.index(op) for op in (
        "none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "avg_pool_3x3", "dil_conv_5x5"))
    # all ties: inputs 0 and 1 of every node, the first op but none (max_pool_3x3)
    tied = derive.derived_genotype(_softmax(alpha), PRIMITIVES)
    assert tied.normal == tied.reduce == (("max_pool_3x3", 0), ("max_pool_3x3", 1)) * 4
    alpha[:, :, none] = 10.0  # none never chosen, however heavy
    assert derive.derived_genotype(_softmax(alpha), PRIMITIVES) == tied
    alpha[:, :, none] = 0.0
    # node 2: an op tie on its edge from node 1 goes to the op first in PRIMITIVES
    alpha[0, 1, [sep3, dil3]] = 2.0
    # node 3 (edges 2, 3, 4 from nodes 0, 1, 2): edge 0 has the largest non-none alpha (skip 3), but none (5) takes
    # most of its softmax: w = e^3 / (e^5 + e^3 + 6) = 0.11 against 0.51 (edge 1, skip 2) and 0.28 (edge 2, sep5 1)
    alpha[0, 2, [none, skip]] = (5.0, 3.0)
    alpha[0, 3, skip] = 2.0
    alpha[0, 4, sep5] = 1.0
    # reduction cell, node 5 (edges 9..13 from nodes 0..4): nodes 4 and 3 the strongest
    alpha[1, 13, dil5] = 2.0
    alpha[1, 12, avg] = 1.0
    genotype = derive.derived_genotype(_softmax(alpha), PRIMITIVES)
    assert genotype.normal[:4] == (("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 2))
    assert genotype.normal[4:] == tied.normal[4:] and genotype.reduce[:6] == tied.reduce[:6]
    assert genotype.reduce[6:] == (("avg_pool_3x3", 3), ("dil_conv_5x5", 4))
    # S2: no none, every op counts; node 5's edge from node 2 (skip 1: w = 0.73) beats the 0.5 of the untouched ones
    s2 = np.zeros((2, 14, 2))
    s2[0, 0, 0], s2[0, 1, 1] = 1.0, 2.0
    s2[0, 13, 1], s2[0, 11, 0] = 3.0, 1.0
    derived = derive.derived_genotype(_softmax(s2), S2_OPS)
    assert derived.normal[:2] == (("skip_connect", 0), ("sep_conv_3x3", 1))
    assert derived.normal[6:] == (("skip_connect", 2), ("sep_conv_3x3", 4))
    assert derived.reduce == (("skip_connect", 0), ("skip_connect", 1)) * 4
    for seed in range(20):  # random alphas, half of them integers full of ties, against DARTS's loops
        rng = np.random.default_rng(seed)
        for ops in (PRIMITIVES, S2_OPS):
            random = rng.normal(size=(2, 14, len(ops))) if seed % 2 else rng.integers(-1, 2, size=(2, 14, len(ops))).astype(float)
            assert derive.derived_genotype(_softmax(random), ops) == _reference_genotype(_softmax(random), ops), (seed, ops)


def test_the_derivation_refuses_weights_of_another_shape_negative_or_not_finite() -> None:
    with pytest.raises(HarnessError, match=">= 0"):
        derive.derived_genotype(np.full((2, 14, 8), -0.1), PRIMITIVES)  # alpha, not its softmax
    with pytest.raises(HarnessError, match=r"\[2, 14, 8\], got \[2, 14, 7\]"):
        derive.derived_genotype(np.zeros((2, 14, 7)), PRIMITIVES)
    with pytest.raises(HarnessError, match="finite"):
        derive.derived_genotype(np.full((2, 14, 2), np.nan), S2_OPS)
    with pytest.raises(HarnessError, match="candidate ops"):
        derive.derived_genotype(np.zeros((2, 14, 1)), ("none",))


# --------------------------------------------------------------------------- the interface


def test_the_nb201_search_space_is_todays_nb201_search() -> None:
    cfg = SearchConfig().with_overrides(network={"channels": 2, "cells_per_stage": 1}, device={"device": "cpu"})
    space = get_search_space("nb201")
    state = init_state(cfg, seed=3, device=torch.device("cpu"), dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        built = space.build_network(cfg).double()
    assert all(torch.equal(t, state.net.state_dict()[n]) for n, t in built.state_dict().items())
    assert space.alpha_shape(cfg) == tuple(state.alpha.shape) == (6, 5)
    net, alpha = state.net, torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(7)).requires_grad_()
    x, y = _images(6), torch.arange(6) % 10
    params = {n: (p.detach() + 0.01 * torch.randn_like(p)).requires_grad_() for n, p in net.named_parameters()}
    for at in (None, params):
        theirs = loss(net, alpha, (x, y), at)
        ours = torch.nn.functional.cross_entropy(space.logits(net, x, torch.softmax(alpha, dim=-1), at), y)
        assert torch.equal(ours, theirs)
        assert torch.equal(torch.autograd.grad(ours, [alpha])[0], torch.autograd.grad(theirs, [alpha])[0])
    bench = space.truth_benchmark()
    described = space.describe(alpha.detach().numpy(), bench)
    assert described == derive.describe(alpha.detach().numpy(), bench)
    assert set(space.truth_columns) < set(described)


@pytest.mark.parametrize("name", ["darts", "darts-s2"])
def test_the_darts_search_spaces_describe_the_derived_genotype_with_the_embedded_nb301_surrogate(name: str) -> None:
    space = get_search_space(name)
    cfg = _search_config(name)
    ops = PRIMITIVES if name == "darts" else S2_OPS
    assert space.alpha_shape(cfg) == (2, 14, len(ops))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = space.build_network(cfg).double()
    weights = torch.softmax(torch.randn(2, 14, len(ops), dtype=torch.float64, generator=torch.Generator().manual_seed(5)), -1)
    assert torch.equal(space.logits(net, _images(), weights), net(_images(), weights))
    params = {n: p.detach() + 0.01 for n, p in net.named_parameters()}  # functional_call, as DARTS second order's virtual step
    moved = copy.deepcopy(net)
    moved.load_state_dict(params, strict=False)
    assert torch.equal(space.logits(net, _images(), weights, params), moved(_images(), weights))
    bench = space.truth_benchmark()
    rng = np.random.default_rng(4)
    for _ in range(2):
        alpha = rng.normal(size=(2, 14, len(ops)))
        genotype = derive.derived_genotype(_softmax(alpha), ops)
        direct = load_benchmark("nb301").final([genotype], "cifar10", "accuracy", "valid", "98")  # the adapter itself
        assert space.describe(_softmax(alpha), bench) == {
            "arch": str(genotype),
            "n_skip": sum(op == "skip_connect" for op, _ in genotype.normal),
            "n_parameter_free": sum(op in ("max_pool_3x3", "avg_pool_3x3", "skip_connect") for op, _ in genotype.normal),
            "depth": cell_depth_darts(genotype.normal),
            "cifar10_valid_98": float(direct[0]),
        }
        assert 80 < direct[0] < 100 and space.truth_columns == ("cifar10_valid_98",)
    other = S2_OPS if name == "darts" else PRIMITIVES
    for shape in ((2, 14, len(other)), (6, 5), (14, len(ops))):
        with pytest.raises(HarnessError, match=rf"\[2, 14, {len(ops)}\]"):
            space.describe(np.zeros(shape), bench)


def test_the_registry_names_every_space_and_refuses_others() -> None:
    assert list(SEARCH_SPACES) == ["nb201", "darts", "darts-s2", "nb1shot1-1", "nb1shot1-2", "nb1shot1-3"]
    assert all(get_search_space(name).name == name for name in SEARCH_SPACES)
    with pytest.raises(HarnessError, match="valid: 'nb201', 'darts', 'darts-s2'"):
        get_search_space("darts-s3")
