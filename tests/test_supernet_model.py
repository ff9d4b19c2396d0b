"""The NB201 supernet: single-path forward, exact weight inheritance, and NB201's own parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.registry import load_benchmark
from harness.spaces.nb201 import EDGES, N_NODES, OPS, arch_to_ops
from harness.supernet.model import Cell, NB201Network, NetworkShape, live_edges, materialise, materialise_group

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


def test_a_per_cell_path_runs_each_cell_with_its_own_ops() -> None:
    """A path (one 6-op tuple per cell, SPOS's per-cell draws) equals, in float64, the network whose
    cell i is cell i of the arch materialised for path[i]; and each cell's ops alone get gradients.
    Pitfall pinned: running cell 0's ops in every cell, or the cells' ops in another order."""
    supernet = _supernet(NetworkShape(channels=4, cells_per_stage=2)).double()
    path = (ARCHS[0], ARCHS[3], ARCHS[2], ARCHS[3], ARCHS[0], ARCHS[2])  # no cell cuts the signal
    assert len(path) == supernet.shape.n_cells
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    materialised = [materialise(supernet, ops) for ops in path]
    h = materialised[0].stem(x)
    cells = iter(range(len(path)))
    for i, layer in enumerate(materialised[0].layers):
        if isinstance(layer, Cell):
            c = next(cells)
            runs = [(op,) if live else () for op, live in zip(path[c], live_edges(path[c]))]
            h = materialised[c].layers[i](h, runs)
        else:
            h = layer(h)
    h = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(materialised[0].head(h), 1), 1)
    torch.testing.assert_close(supernet(x, path), materialised[0].classifier(h), rtol=1e-12, atol=1e-12)
    supernet(x, path).sum().backward()
    cell_layers = [i for i, layer in enumerate(supernet.layers) if isinstance(layer, Cell)]
    for name, p in supernet.named_parameters():
        if ".edges." not in name:
            continue
        layer, edge, op = int(name.split(".")[1]), int(name.split(".edges.")[1].split(".")[0]), name.split(".edges.")[1].split(".")[1]
        ops = path[cell_layers.index(layer)]
        assert (p.grad is not None) == (live_edges(ops)[edge] and ops[edge] == op), name
    one_arch = supernet(x, ARCHS[3])
    torch.testing.assert_close(supernet(x, (ARCHS[3],) * len(path)), one_arch, rtol=0, atol=0)
    with pytest.raises(ValueError, match="one 6-op tuple per cell: 6 here, got 2"):
        supernet(x, path[:2])


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


# --------------------------------------------------------------------------- NB201's own network (xautodl)

XAUTODL_ARCHS = [
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|",  # node 2 has no input: the 2->3 conv sees zeros
    "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",  # node 1 dead, its skip carries zeros
]


def _xautodl_twin(ours: NB201Network, arch: str) -> torch.nn.Module:
    """NB201's TinyNetwork (xautodl, the NB201 authors' code) for ``arch``, holding ``ours``'s weights.

    The parameter names are mapped by structure, not by reusing ours: TinyNetwork.cells[i] is our
    layers[i] (N cells, reduction, N cells, reduction, N cells); an InferCell's layer L computes the edge
    (node_IN, node index) that the cell records, which is our edge EDGES.index((src, dst)).
    """
    from xautodl.models.cell_infers.cells import InferCell
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    shape = ours.shape
    theirs = TinyNetwork(shape.channels, shape.cells_per_stage, Structure.str2structure(arch), shape.n_classes)
    ops = arch_to_ops(arch)
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    names: dict[str, str] = {"stem.0.weight": "stem.0.weight", "classifier.weight": "classifier.weight",
                             "classifier.bias": "classifier.bias"}
    names.update({f"stem.1.{b}": f"stem.1.{b}" for b in bn})
    names.update({f"lastact.0.{b}": f"head.0.{b}" for b in bn})
    for i, cell in enumerate(theirs.cells):
        if isinstance(cell, InferCell):
            for node, (layers, sources) in enumerate(zip(cell.node_IX, cell.node_IN), start=1):
                for layer, src in zip(layers, sources):
                    k = EDGES.index((src, node))
                    names[f"cells.{i}.layers.{layer}.op.1.weight"] = f"layers.{i}.edges.{k}.{ops[k]}.1.weight"
                    names.update({f"cells.{i}.layers.{layer}.op.2.{b}": f"layers.{i}.edges.{k}.{ops[k]}.2.{b}" for b in bn})
        else:  # ResNetBasicblock
            for conv in ("conv_a", "conv_b"):
                names[f"cells.{i}.{conv}.op.1.weight"] = f"layers.{i}.{conv}.1.weight"
                names.update({f"cells.{i}.{conv}.op.2.{b}": f"layers.{i}.{conv}.2.{b}" for b in bn})
            names[f"cells.{i}.downsample.1.weight"] = f"layers.{i}.shortcut.1.weight"
    source, target = ours.state_dict(), theirs.state_dict()
    state = {}
    for name, tensor in target.items():
        if names[name] in source:
            assert source[names[name]].shape == tensor.shape, name
            state[name] = source[names[name]].clone()
        else:  # a BN without affine parameters or running statistics on our side: NB201's identity values
            assert not (shape.bn_affine and shape.bn_track_running_stats), f"{name} <- {names[name]} missing"
            state[name] = tensor
    assert not set(source) - {names[n] for n in target}, "weights of ours that NB201's network does not hold"
    theirs.load_state_dict(state, strict=True)
    return theirs


@pytest.mark.parametrize("arch", XAUTODL_ARCHS)
def test_standalone_network_computes_nb201s_own_tiny_network(arch: str) -> None:
    """Pitfalls pinned: avg_pool counting its padding, Conv-ReLU-BN instead of ReLU-Conv-BN, and a
    reduction block without its pooled 1x1 shortcut all change the logits of NB201's own network.

    NB201's trained networks: affine BN with running statistics, evaluated in eval mode; every
    parameter and BN buffer is random so that a wrong mapping or a skipped op shows."""
    pytest.importorskip("xautodl")
    shape = NetworkShape(channels=4, cells_per_stage=2, bn_affine=True, bn_track_running_stats=True)
    ours = NB201Network(shape, [(op,) for op in arch_to_ops(arch)])
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, tensor in ours.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            elif tensor.is_floating_point():
                tensor.copy_(0.5 * torch.randn(tensor.shape, generator=gen))
    theirs = _xautodl_twin(ours, arch)
    ours.eval()
    theirs.eval()
    x = torch.randn(4, 3, 32, 32, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x)[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", XAUTODL_ARCHS[:2])
def test_materialised_supernet_arch_computes_nb201s_own_tiny_network_with_batch_statistics(arch: str) -> None:
    """The default weight-sharing network (the thesis code's BN layout: cells and head without affine
    parameters or running statistics, stem and reduction blocks affine with running statistics)
    inherited from a supernet is NB201's network in training mode (every BN on batch statistics)."""
    pytest.importorskip("xautodl")
    ours = materialise(_supernet(NetworkShape(channels=4, cells_per_stage=2)), arch_to_ops(arch))
    theirs = _xautodl_twin(ours, arch)
    ours.train()
    theirs.train()
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x)[1], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- arch groups

AFFINE_STATS = NetworkShape(channels=4, cells_per_stage=2, bn_affine=True, bn_track_running_stats=True)


@pytest.mark.parametrize("shape", [NetworkShape(channels=4, cells_per_stage=2), AFFINE_STATS], ids=["batch-stats", "affine-running-stats"])
def test_an_arch_group_computes_each_archs_standalone_network_and_its_gradient(shape: NetworkShape) -> None:
    """Pitfalls pinned: an arch reading another arch's channels (a convolution not grouped, a wrong
    channel index where only some archs run an op), a dead op run for the wrong archs, one
    classifier for all, or weights copied to the wrong block all change some arch's logits or
    gradient. Every arch of ARCHS (all-none and a dead node among them) in one group, float64."""
    supernet = _supernet(shape).double()
    if shape.bn_track_running_stats:
        with torch.no_grad():
            for name, tensor in supernet.named_buffers():
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=torch.Generator().manual_seed(3)))
    images = torch.randn(len(ARCHS), 6, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for mode in ("train", "eval"):  # a fresh group each time: a train forward moves running statistics
        group = materialise_group(supernet, ARCHS).double().train(mode == "train")
        logits = group(images.transpose(0, 1).reshape(6, 3 * len(ARCHS), 32, 32))
        assert logits.shape == (6, len(ARCHS), 10)
        group.zero_grad()
        (logits * torch.linspace(-1, 1, 10, dtype=torch.float64)).sum().backward()
        grads = {id(p): (p.grad, archs) for p, archs in group.parameter_archs()}
        named = dict(group.named_parameters())
        for a, ops in enumerate(ARCHS):
            alone = materialise(supernet, ops).double().train(mode == "train")
            reference = alone(images[a])
            torch.testing.assert_close(logits[:, a], reference, rtol=0, atol=1e-10)
            (reference * torch.linspace(-1, 1, 10, dtype=torch.float64)).sum().backward()
            for name, p in alone.named_parameters():
                if name not in named:  # an op that runs for no arch of the group
                    assert p.grad is None or not p.grad.any(), name
                    continue
                grad, archs = grads[id(named[name])]
                if a in archs:
                    rows = p.shape[0]
                    block = grad[archs.index(a) * rows : (archs.index(a) + 1) * rows]
                    torch.testing.assert_close(block, torch.zeros_like(block) if p.grad is None else p.grad, rtol=0, atol=1e-10)
                else:  # arch a does not run this op: no block of it, and standalone it gets no gradient
                    assert p.grad is None or not p.grad.any(), name


def test_an_arch_group_holds_a_supernet_copy_per_arch_that_runs_each_op() -> None:
    supernet = _supernet()
    group = materialise_group(supernet, ARCHS[:3])
    source = supernet.state_dict()
    owners = {name: archs for (name, _), (_, archs) in zip(group.named_parameters(), group.parameter_archs())}
    for name, tensor in group.state_dict().items():
        if tensor.dim() == 0:
            continue
        blocks = tensor.shape[0] // source[name].shape[0]
        assert torch.equal(tensor, source[name].repeat(blocks, *[1] * (tensor.dim() - 1))), name
        if name in owners:
            assert len(owners[name]) == blocks, name
    # edge 0: arch 0 runs nor_conv_3x3; archs 1 and 2 run none there, so the module serves arch 0 only
    assert owners["layers.0.edges.0.nor_conv_3x3.1.weight"] == (0,)
    assert owners["stem.0.weight"] == (0, 1, 2)
    with pytest.raises(ValueError, match="takes no ops"):
        group(torch.zeros(2, 9, 32, 32), ARCHS[0])
