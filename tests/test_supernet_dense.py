"""The dense supernet update (harness.supernet.dense) against the sparse one, in float64 on the CPU:
forward values bit for bit, gradients to rounding and exact zeros elsewhere, BN running statistics,
the mean over a rollout's paths, every algorithm's update (first use of a weight included), training
with checkpoints and resume; the CUDA-graph replay against the eager dense update where a GPU exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.spaces.nb201 import OPS
from harness.supernet.config import WSConfig, changed_settings, config_from_dict
from harness.supernet.dense import DenseUpdate, path_weights, update_weights
from harness.supernet.model import NB201Network, NetworkShape, live_edges, materialise
from harness.supernet.sampling import ALGORITHMS, multipath_rollout
from harness.supernet.spaces.nb201 import NB201Space, fairnas_paths, per_cell_paths, per_network_paths

SPACE = NB201Space()
from harness.supernet.train import (
    cosine_lr,
    load_checkpoint,
    load_images,
    make_optimizer,
    rollout_backward,
    supernet_update,
    train_supernet,
    uses_dense,
)
from image_fixtures import write_cifar10

CORNER_ARCHS = [
    ("none",) * 6,  # nothing reaches the output: the cell outputs zeros
    ("none", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3"),  # node 1 without signal
    ("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "skip_connect", "nor_conv_1x1", "none"),  # node 2 feeds nothing
    ("nor_conv_1x1", "none", "none", "none", "none", "nor_conv_3x3"),  # node 2 without signal feeds the output
]
BN_SETTINGS = {"batch-stats": NetworkShape(channels=3, cells_per_stage=2), "affine": NetworkShape(channels=3, cells_per_stage=2, bn_affine=True)}


def _supernet(shape: NetworkShape, seed: int = 0) -> NB201Network:
    """A float64 supernet with every parameter moved off its init (so that a wrong weight shows)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = NB201Network(shape).double()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return net


def _images(n: int = 8, side: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return x, torch.arange(n) % 10


def _paths(n_cells: int) -> list[tuple[tuple[str, ...], ...]]:
    """SPOS per-cell paths, whole-network archs, and the corner cases, each as a path."""
    rng = np.random.default_rng(5)
    return ([per_cell_paths(rng, n_cells)[0] for _ in range(4)] + [per_network_paths(rng, n_cells)[0] for _ in range(2)]
            + [(ops,) * n_cells for ops in CORNER_ARCHS])


def _dense(net: NB201Network, path) -> torch.Tensor:
    return torch.from_numpy(path_weights(path, net.zeros_stay_zero))


def _forward_backward(net: NB201Network, x: torch.Tensor, path) -> tuple[torch.Tensor, dict[str, torch.Tensor | None], dict[str, torch.Tensor]]:
    """Logits, gradients of a fixed function of them, and the BN buffers after the (training) forward."""
    net.zero_grad(set_to_none=True)
    logits = net(x, path)
    (logits * torch.linspace(-1, 1, logits.shape[1], dtype=logits.dtype)).sum().backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in net.named_parameters()}
    return logits.detach(), grads, {name: b.clone() for name, b in net.named_buffers()}


# --------------------------------------------------------------------------- forward and gradients


@pytest.mark.parametrize("bn", BN_SETTINGS)
def test_dense_forward_is_the_sparse_forward_bit_for_bit_and_unsampled_ops_get_exact_zero_gradients(bn: str) -> None:
    """Per-cell SPOS paths, whole-network archs and the corner cases (a node without signal, an op
    whose output is unused, nothing reaching the output), with the default BN and with affine cell
    BNs (where ops on zeros output BN's shift and must run). The stem's and reduction blocks'
    running statistics move identically. A weight on the wrong op is caught."""
    shape = BN_SETTINGS[bn]
    x, _ = _images()
    for path in _paths(shape.n_cells):
        sparse_net, dense_net = _supernet(shape), _supernet(shape)
        logits, grads, buffers = _forward_backward(sparse_net, x, path)
        dense_logits, dense_grads, dense_buffers = _forward_backward(dense_net, x, _dense(dense_net, path))
        assert torch.equal(logits, dense_logits), path
        assert buffers.keys() == dense_buffers.keys() and all(torch.equal(b, dense_buffers[n]) for n, b in buffers.items())
        for name, grad in grads.items():
            dense_grad = dense_grads[name]
            assert dense_grad is not None, name
            if grad is None:  # an op the sparse forward did not run
                assert not dense_grad.any(), name
            else:
                torch.testing.assert_close(dense_grad, grad, rtol=1e-10, atol=1e-12, msg=lambda m: f"{name}: {m}")
    path = (CORNER_ARCHS[2],) * shape.n_cells
    wrong = _dense(dense_net, path)
    wrong[1, 0] = torch.roll(wrong[1, 0], 1)  # cell 1, edge 0: the weight on the op next to the path's
    assert not torch.equal(_forward_backward(_supernet(shape), x, wrong)[0], _forward_backward(_supernet(shape), x, path)[0])


def test_path_weights_mark_the_live_ops_of_each_cell() -> None:
    """1.0 exactly where the sparse forward runs the op (on the path and live), 0.0 elsewhere, ``none`` never."""
    path = (CORNER_ARCHS[1], CORNER_ARCHS[2], ("skip_connect",) * 6)
    for zeros_stay_zero in (True, False):
        weights = path_weights(path, zeros_stay_zero)
        assert weights.shape == (3, 6, len(OPS)) and weights.dtype == np.float32
        for c, ops in enumerate(path):
            expected = np.zeros((6, len(OPS)), np.float32)
            for k, (op, live) in enumerate(zip(ops, live_edges(ops, zeros_stay_zero))):
                expected[k, OPS.index(op)] = live
            assert np.array_equal(weights[c], expected)
    # node 1 has no signal: its out-edges are off with zeros staying zero, on when BN shifts them
    # (edges 1->2 and 1->3 of cell 0)
    assert path_weights(path, True)[0, [2, 4]].sum() == 0 and path_weights(path, False)[0, [2, 4]].sum() == 2
    assert path_weights(path, True)[:, :, OPS.index("none")].sum() == 0
    with pytest.raises(HarnessError, match="unknown NB201 op 'conv_7x7'"):
        path_weights((("conv_7x7",) * 6,), True)
    with pytest.raises(HarnessError, match="equally many paths"):
        update_weights([[path], [path, path]], True)


@pytest.mark.parametrize("sampler", [fairnas_paths, lambda rng, n: multipath_rollout(SPACE, rng, n)], ids=["fairnas", "multipath"])
def test_a_dense_rollouts_gradient_is_the_mean_over_its_paths(sampler) -> None:
    """FairNAS's 5 and MultiPath's 4 paths: the accumulated dense gradient equals autograd of the mean
    of the sparse losses (an independent reference, so a missing 1/k is caught, as checked here)."""
    shape = BN_SETTINGS["batch-stats"]
    cfg = WSConfig().with_overrides(network={"channels": 3, "cells_per_stage": 2}, device={"device": "cpu"})
    x, y = _images()
    rollout = sampler(np.random.default_rng(3), shape.n_cells)
    reference_net, dense_net = _supernet(shape), _supernet(shape)
    params = list(reference_net.parameters())
    mean_loss = sum(torch.nn.functional.cross_entropy(reference_net(x, path), y) for path in rollout) / len(rollout)
    reference = [torch.zeros_like(p) if g is None else g for p, g in zip(params, torch.autograd.grad(mean_loss, params, allow_unused=True))]
    dense_net.zero_grad(set_to_none=True)
    loss = rollout_backward(dense_net, x, y, torch.from_numpy(np.stack([path_weights(p, True) for p in rollout])), cfg)
    torch.testing.assert_close(loss, mean_loss.detach(), rtol=1e-12, atol=0)
    dense = [p.grad for p in dense_net.parameters()]
    for got, want in zip(dense, reference):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    summed = [len(rollout) * g for g in reference]  # a missing mean over the paths
    with pytest.raises(AssertionError):
        for got, want in zip(dense, summed):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_the_dense_forward_refuses_what_it_cannot_compute() -> None:
    shape = BN_SETTINGS["batch-stats"]
    net = _supernet(shape)
    x, _ = _images(2)
    weights = _dense(net, (CORNER_ARCHS[2],) * shape.n_cells)
    with pytest.raises(HarnessError, match=r"shape \[cells, edges, ops\] = \[6, 6, 5\] here, got \[5, 6, 5\]"):
        net(x, weights[:5])
    with pytest.raises(HarnessError, match="needs the supernet"):
        materialise(net, CORNER_ARCHS[2])(x, weights)
    running = NB201Network(NetworkShape(channels=3, cells_per_stage=2, bn_track_running_stats=True)).double()
    with pytest.raises(HarnessError, match="bn_track_running_stats = false"):
        running(x, weights)
    running.eval()  # evaluation moves no statistics: allowed, and equal to the sparse forward
    assert torch.equal(running(x, weights), running(x, (CORNER_ARCHS[2],) * shape.n_cells))


# --------------------------------------------------------------------------- whole updates


def _config(algorithm: str, update_unsampled: bool = True, **supernet: object) -> WSConfig:
    return WSConfig().with_overrides(
        network={"channels": 3, "cells_per_stage": 1},
        supernet={"algorithm": algorithm, "meta_lr": 0.5, "lr": 0.05, "update_unsampled": update_unsampled, **supernet},
        device={"device": "cpu"},
    )


def _run_updates(cfg: WSConfig, updates, dense: bool, tamper=None):
    """Three updates from the same float64 supernet, sparse (torch's SGD) or dense (DenseUpdate run
    eagerly: the body a CUDA graph captures, on its static buffers). Returns the network, its
    optimizer's state dict, the has-grad flags and each update's (loss, norm)."""
    net = _supernet(NetworkShape(channels=3, cells_per_stage=1))
    optimizer = make_optimizer(net, cfg)
    stepper = DenseUpdate(net, cfg, optimizer) if dense else None
    x, y = _images()
    results = []
    for i, rollouts in enumerate(updates):
        lr = cosine_lr(i, len(updates), cfg.supernet.lr, cfg.supernet.lr_min)
        if stepper is None:
            for group in optimizer.param_groups:
                group["lr"] = lr
            results.append(supernet_update(net, x, y, rollouts, cfg, optimizer))
        else:
            weights = torch.from_numpy(stepper.weights(rollouts))
            results.append(stepper.update(x, y, tamper(weights) if tamper and i == 0 else weights, lr))
    if stepper is not None:
        stepper.write_back(optimizer, lr)
        has_grad = stepper.has_grad()
    else:
        has_grad = [p.grad is not None for p in net.parameters()]
    return net, optimizer.state_dict(), has_grad, results


def _max_difference(a: NB201Network, b: NB201Network) -> float:
    return max(float((s - t).abs().max()) for s, t in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("update_unsampled", [True, False], ids=["update-unsampled", "sampled-only"])
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_a_dense_update_equals_the_sparse_update_for_every_algorithm(algorithm: str, update_unsampled: bool) -> None:
    """Three updates of each algorithm, dense against sparse (``supernet_update``), from the first
    update on: weights and BN running statistics, which weights hold a gradient (a weight never
    sampled has none in the sparse path, so weight decay and momentum leave it alone: the dense step
    masks it), the momentum buffers in torch's state-dict format, losses and gradient norms. FairNAS
    with a gradient clip that binds."""
    cfg = _config(algorithm, update_unsampled, grad_clip=0.5 if algorithm == "fairnas" else None)
    generator = np.random.default_rng(7)
    updates = [ALGORITHMS[algorithm].draw(SPACE, generator, cfg.n_cells) for _ in range(3)]
    sparse_net, sparse_state, sparse_has, sparse_results = _run_updates(cfg, updates, dense=False)
    dense_net, dense_state, dense_has, dense_results = _run_updates(cfg, updates, dense=True)
    for name, tensor in sparse_net.state_dict().items():
        torch.testing.assert_close(dense_net.state_dict()[name], tensor, rtol=1e-12, atol=1e-14, msg=lambda m: f"{name}: {m}")
    assert dense_has == sparse_has
    if update_unsampled and algorithm in ("spos", "randomnas"):
        assert not all(sparse_has)  # some weight was never sampled: the first-use rule was exercised
    with_buffer = {k for k, v in sparse_state["state"].items() if "momentum_buffer" in v}
    assert set(dense_state["state"]) == with_buffer
    for k in with_buffer:
        torch.testing.assert_close(dense_state["state"][k]["momentum_buffer"], sparse_state["state"][k]["momentum_buffer"],
                                   rtol=1e-12, atol=1e-14)
    assert dense_state["param_groups"] == sparse_state["param_groups"]
    for (loss, norm), (dense_loss, dense_norm) in zip(sparse_results, dense_results):
        torch.testing.assert_close(dense_loss, loss, rtol=1e-12, atol=0)
        torch.testing.assert_close(dense_norm, norm, rtol=1e-12, atol=0)
    before = _supernet(NetworkShape(channels=3, cells_per_stage=1))
    assert _max_difference(dense_net, before) > 1e-3


def test_the_update_comparison_catches_a_wrong_weight_and_a_weight_stepped_before_its_first_use() -> None:
    """The comparison above can fail: a 1.0 moved to another op in one cell of the first update, or a
    dense step that treats every weight as having a gradient from the start (no first-use mask)."""
    cfg = _config("spos")
    updates = [ALGORITHMS["spos"].draw(SPACE, np.random.default_rng(7), cfg.n_cells) for _ in range(3)]
    sparse_net, _, sparse_has, _ = _run_updates(cfg, updates, dense=False)

    def moved(weights: torch.Tensor) -> torch.Tensor:
        weights = weights.clone()
        weights[0, 0, 0, 0] = torch.roll(weights[0, 0, 0, 0], 1)
        return weights

    assert _max_difference(_run_updates(cfg, updates, dense=True, tamper=moved)[0], sparse_net) > 1e-6

    def everything(weights: torch.Tensor) -> torch.Tensor:  # every op live in the first update
        return torch.ones_like(weights)

    wrong_net, _, wrong_has, _ = _run_updates(cfg, updates, dense=True, tamper=everything)
    assert all(wrong_has) and not all(sparse_has) and _max_difference(wrong_net, sparse_net) > 1e-6


def test_a_dense_update_has_one_shape_per_run() -> None:
    cfg = _config("spos")
    net = _supernet(NetworkShape(channels=3, cells_per_stage=1))
    stepper = DenseUpdate(net, cfg, make_optimizer(net, cfg))
    x, y = _images()
    weights = torch.from_numpy(stepper.weights(ALGORITHMS["spos"].draw(SPACE, np.random.default_rng(0), cfg.n_cells)))
    stepper.update(x, y, weights, 0.01)
    with pytest.raises(HarnessError, match=r"fixed shape \[8, 3, 16, 16\] \(captured once per run\); got \[4, 3, 16, 16\]"):
        stepper.update(x[:4], y[:4], weights, 0.01)


# --------------------------------------------------------------------------- training, checkpoints, settings


def _train_config(root: Path, dense: str, epochs: int = 2) -> WSConfig:
    return WSConfig().with_overrides(
        data={"root": str(root)},
        network={"channels": 2, "cells_per_stage": 1},
        supernet={"epochs": epochs, "batch_size": 16, "algorithm": "multipath"},
        finetune={"steps": 2, "eval_every": 1},
        device={"device": "cpu", "dense_supernet": dense},
        report={"sum_step": 1},
    )


def test_dense_training_resumes_exactly_writes_the_sparse_checkpoint_format_and_may_switch(tmp_path: Path) -> None:
    """A killed dense run resumes to identical weights, optimizer state and history; its checkpoints
    match the sparse run's (same keys, same weights with momentum, same has-grad flags; values to
    float32 rounding); a run trained sparsely for an epoch and resumed densely ends where the sparse run does."""
    write_cifar10(tmp_path / "data", n_train=64)
    dense_cfg, sparse_cfg = _train_config(tmp_path / "data", "on"), _train_config(tmp_path / "data", "off")
    train, _ = load_images(dense_cfg, torch.device("cpu"))
    straight = load_checkpoint(train_supernet(dense_cfg, 0, train, tmp_path / "straight", progress=False))
    train_supernet(dense_cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    resumed = load_checkpoint(train_supernet(dense_cfg, 0, train, tmp_path / "killed", progress=False))
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["has_grad"] == resumed["has_grad"]
    for key, state in straight["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed["optimizer"]["state"][key]["momentum_buffer"])
    without_seconds = [[{k: v for k, v in h.items() if k != "seconds"} for h in json.loads(s["history"])] for s in (straight, resumed)]
    assert without_seconds[0] == without_seconds[1]

    sparse = load_checkpoint(train_supernet(sparse_cfg, 0, train, tmp_path / "sparse", progress=False))
    train_supernet(sparse_cfg, 0, train, tmp_path / "switched", stop_after_epoch=1, progress=False)
    switched = load_checkpoint(train_supernet(dense_cfg, 0, train, tmp_path / "switched", progress=False))
    for other in (straight, switched):
        assert other.keys() == sparse.keys() and other["has_grad"] == sparse["has_grad"]
        assert other["model"].keys() == sparse["model"].keys()
        for name, tensor in sparse["model"].items():
            torch.testing.assert_close(other["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
        with_buffer = {k for k, v in sparse["optimizer"]["state"].items() if "momentum_buffer" in v}
        assert set(other["optimizer"]["state"]) == with_buffer
    assert json.loads(switched["config"])["device"]["dense_supernet"] == "on"


def test_the_dense_setting_is_checked_resolved_per_device_and_logistics() -> None:
    with pytest.raises(HarnessError, match=r"unknown device.dense_supernet 'yes'; valid: 'auto', 'on', 'off'"):
        config_from_dict({"device": {"dense_supernet": "yes"}})
    with pytest.raises(HarnessError, match=r"\[device\] dense_supernet must be a string"):
        config_from_dict({"device": {"dense_supernet": True}})
    with pytest.raises(HarnessError, match="needs network.bn_track_running_stats = false"):
        config_from_dict({"device": {"dense_supernet": "on"}, "network": {"bn_track_running_stats": True}})
    cfg = WSConfig()
    assert cfg.device.dense_supernet == "auto"
    assert not uses_dense(cfg, torch.device("cpu")) and uses_dense(cfg, torch.device("cuda"))
    running = cfg.with_overrides(network={"bn_track_running_stats": True})
    assert not uses_dense(running, torch.device("cuda"))
    assert uses_dense(cfg.with_overrides(device={"dense_supernet": "on"}), torch.device("cpu"))
    assert not uses_dense(cfg.with_overrides(device={"dense_supernet": "off"}), torch.device("cuda"))
    saved = json.loads(json.dumps(cfg.to_dict(), default=list))
    assert changed_settings(saved, cfg.with_overrides(device={"dense_supernet": "off"}), ("device",)) == []


# --------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (benchmarks/gpu/table41.sh runs this there)")
@pytest.mark.parametrize("algorithm", ["spos", "metaprox"])
def test_cuda_graph_replays_compute_the_eager_dense_update(algorithm: str) -> None:
    """fp32, no autocast, deterministic cuDNN: updates after the capture (graph replays) against the
    same updates run eagerly; both against the sparse update (to float32 rounding)."""
    cfg = _config(algorithm).with_overrides(device={"device": "cuda", "amp": False, "channels_last": False, "cudnn_benchmark": False})
    updates = [ALGORITHMS[algorithm].draw(SPACE, np.random.default_rng(1), cfg.n_cells) for _ in range(DenseUpdate.WARMUP + 3)]
    x, y = _images()
    x, y = x.float().cuda(), y.cuda()
    nets = []
    deterministic = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        for graphs in (False, True):
            net = _supernet(NetworkShape(channels=3, cells_per_stage=1)).float().cuda()
            stepper = DenseUpdate(net, cfg.with_overrides(device={"cuda_graphs": graphs}), make_optimizer(net, cfg))
            for i, rollouts in enumerate(updates):
                stepper.update(x, y, torch.from_numpy(stepper.weights(rollouts)).cuda(), cosine_lr(i, len(updates), 0.05, 0.001))
            assert (stepper.graph is not None) is graphs
            nets.append(net)
        sparse = _supernet(NetworkShape(channels=3, cells_per_stage=1)).float().cuda()
        optimizer = make_optimizer(sparse, cfg)
        for i, rollouts in enumerate(updates):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(i, len(updates), 0.05, 0.001)
            supernet_update(sparse, x, y, rollouts, cfg, optimizer)
        torch.cuda.synchronize()
    finally:
        torch.backends.cudnn.deterministic = deterministic
    assert _max_difference(*nets) < 1e-6
    assert _max_difference(nets[0], sparse) < 1e-3
