"""The NB201 supernet: single-path forward, exact weight inheritance, and NB201's own parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.registry import load_benchmark
from harness.spaces.nb201 import EDGES, N_NODES, OPS, arch_to_ops
from harness.supernet.model import Cell, NB201Network, NetworkShape, live_edges, materialise

TOY = NetworkShape(channels=4, cells_per_stage=1)


def _supernet(shape: NetworkShape = TOY, seed: int = 0) -> NB201Network:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = NB201Network(shape)
    # non-trivial BN affine/linear values so that a wrong weight copy would show
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


ARCHS = [
    ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"),
    ("none",) * 6,
    ("skip_connect",) * 6,
    ("none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none", "nor_conv_3x3"),
    ("nor_conv_1x1", "none", "none", "none", "none", "nor_conv_3x3"),  # node 2 dead: edge 2->3 gets zeros
]


@pytest.mark.parametrize("ops", ARCHS)
def test_supernet_forward_equals_materialised_forward(ops) -> None:
    supernet = _supernet()
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    standalone = materialise(supernet, ops)
    torch.testing.assert_close(supernet(x, ops), standalone(x), rtol=0, atol=1e-6)


def test_materialised_weights_are_an_exact_slice_and_a_copy() -> None:
    supernet = _supernet()
    ops = ARCHS[0]
    standalone = materialise(supernet, ops)
    source = supernet.state_dict()
    for name, tensor in standalone.state_dict().items():
        assert torch.equal(tensor, source[name]), name
    names = set(standalone.state_dict())
    assert any(".edges.0.nor_conv_3x3." in n for n in names) and not any(".edges.0.nor_conv_1x1." in n for n in names)
    with torch.no_grad():
        next(standalone.parameters()).add_(1.0)
    assert torch.equal(next(supernet.parameters()), source[next(iter(source))])


def test_single_path_gives_gradients_only_to_the_arch_ops() -> None:
    supernet = _supernet()
    ops = ARCHS[0]
    x = torch.randn(4, 3, 32, 32)
    supernet(x, ops).sum().backward()
    for name, p in supernet.named_parameters():
        if ".edges." not in name:
            continue
        edge, op = int(name.split(".edges.")[1].split(".")[0]), name.split(".edges.")[1].split(".")[1]
        live = live_edges(ops)[edge] and ops[edge] == op
        assert (p.grad is not None) == live, name


def _every_edge_forward(net: NB201Network, x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    """NB201's own cell: every edge computed from its source node, 'none' contributing zeros."""

    def cell(layer: Cell, h: torch.Tensor) -> torch.Tensor:
        nodes = [h]
        for node in range(1, N_NODES):
            total = torch.zeros_like(h)
            for k, (src, dst) in enumerate(EDGES):
                if dst == node and ops[k] != "none":
                    total = total + layer.edges[k][ops[k]](nodes[src])
            nodes.append(total)
        return nodes[-1]

    h = net.stem(x)
    for layer in net.layers:
        h = cell(layer, h) if isinstance(layer, Cell) else layer(h)
    return net.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(net.head(h), 1), 1))


@pytest.mark.parametrize("affine, running_stats", [(False, False), (True, False), (False, True), (True, True)])
def test_skipping_dead_ops_matches_computing_every_edge_under_every_batchnorm_setting(affine, running_stats) -> None:
    """Ops fed by a node without signal see zeros; with BN affine shifts or running statistics they
    output BN's shift, not zeros, so they must run (the pitfall: skipping them there was wrong)."""
    shape = NetworkShape(channels=4, cells_per_stage=1, bn_affine=affine, bn_track_running_stats=running_stats)
    net = _supernet(shape)
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    dead_source = ("none", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3")
    for ops in (dead_source, *ARCHS):
        net.train()
        torch.testing.assert_close(net(x, ops), _every_edge_forward(net, x, ops), rtol=0, atol=1e-5)
        net.eval()  # with running statistics: those gathered by the two training passes just above
        torch.testing.assert_close(net(x, ops), _every_edge_forward(net, x, ops), rtol=0, atol=1e-5)


def test_live_edges_skip_ops_without_signal_or_use() -> None:
    # node 1 gets no input: every edge out of it carries zeros
    ops = ("none", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3")
    assert live_edges(ops) == (False, True, False, True, False, True)
    # node 2 feeds nothing: edges into it are unused
    ops = ("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "skip_connect", "nor_conv_1x1", "none")
    assert live_edges(ops) == (True, False, False, True, True, False)
    # ops on zeros still run when zeros do not stay zero (BN shifts), unused ones still do not
    ops = ("none", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3")
    assert live_edges(ops, zeros_stay_zero=False) == (False, True, True, True, True, True)


def test_parameter_counts_match_nas_bench_201() -> None:
    """Pitfall pinned: a wrong macro skeleton (reduction block, stem, head) changes the parameter count.

    NB201's trained networks use affine BatchNorm in the cells; with that option our standalone
    network must have exactly the parameter count NB201 records (params_mb for CIFAR-10).
    """
    bench = load_benchmark("nb201")
    rng = np.random.default_rng(0)
    indices = np.concatenate([[0, 1, 11, 284], rng.choice(15625, 6, replace=False)])
    shape = NetworkShape(bn_affine=True)
    recorded = bench.final(indices, "cifar10", "params", "cost", "200")
    for index, params in zip(indices, recorded):
        ops = arch_to_ops(bench.arch_string(int(index)))
        net = NB201Network(shape, [(op,) for op in ops])
        assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(params, abs=1e-6), index


def test_supernet_holds_every_candidate_and_rejects_bad_ops() -> None:
    supernet = _supernet()
    assert all(set(edge) == set(OPS) - {"none"} for cell in supernet.layers if hasattr(cell, "edges") for edge in cell.edges)
    with pytest.raises(ValueError):
        supernet(torch.randn(1, 3, 32, 32), ("conv_7x7",) * 6)
    with pytest.raises(ValueError):
        supernet(torch.randn(1, 3, 32, 32))
