"""Supernet training (the algorithms of Table 4.1): per-epoch checkpoints, exact resume, each update against an
independent float64 computation, seeded init that leaves global RNGs alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.supernet.config import WSConfig
from harness.supernet.spaces.nb201 import NB201Space
from image_fixtures import write_cifar10
from harness.supernet.train import (
    checkpoint_path,
    cosine_lr,
    load_checkpoint,
    load_images,
    train_supernet,
)


def _config(root: Path, epochs: int = 3) -> WSConfig:
    return WSConfig().with_overrides(
        data={"root": str(root)},
        network={"channels": 2, "cells_per_stage": 1},
        supernet={"epochs": epochs, "batch_size": 16},
        finetune={"steps": 2, "eval_every": 1},
        device={"device": "cpu"},
        report={"sum_step": 1},
    )


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """Pitfall pinned: a resumed run must know which weights have a (zeroed) gradient; with fresh
    None gradients the unsampled ops stop decaying and carrying momentum after the resume."""
    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data")
    train, _ = load_images(cfg, torch.device("cpu"))
    straight = train_supernet(cfg, 0, train, tmp_path / "straight", progress=False)
    train_supernet(cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    assert load_checkpoint(checkpoint_path(tmp_path / "killed", 0))["epoch"] == 1
    resumed = train_supernet(cfg, 0, train, tmp_path / "killed", progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["epoch"] == b["epoch"] == 3
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    # the resumed run's history is the uninterrupted one's: epoch 1 from before the kill, then 2 and 3
    # (wall-clock seconds aside), each epoch's mean loss bit for bit
    without_seconds = [[{k: v for k, v in h.items() if k != "seconds"} for h in json.loads(s["history"])] for s in (a, b)]
    assert [h["epoch"] for h in without_seconds[1]] == [1, 2, 3]
    assert without_seconds[0] == without_seconds[1]
    assert len({h["train_loss"] for h in without_seconds[1]}) == 3
    other = load_checkpoint(train_supernet(cfg, 1, train, tmp_path / "seed1", progress=False))
    assert not all(torch.equal(t, other["model"][n]) for n, t in a["model"].items())


def test_training_leaves_global_rngs_alone(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data", epochs=1)
    train, _ = load_images(cfg, torch.device("cpu"))
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    train_supernet(cfg, 0, train, tmp_path / "run", progress=False)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert np.array_equal(numpy_state, np.random.get_state()[1])


def test_cosine_schedule_ends() -> None:
    assert cosine_lr(0, 100, 0.025, 0.001) == pytest.approx(0.025)
    assert cosine_lr(100, 100, 0.025, 0.001) == pytest.approx(0.001)
    assert cosine_lr(50, 100, 0.025, 0.001) == pytest.approx(0.013)


def test_corrupt_checkpoint_raises(tmp_path: Path) -> None:
    path = tmp_path / "supernet-seed0.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(HarnessError, match="cannot read"):
        load_checkpoint(path)
    with pytest.raises(HarnessError, match="no supernet checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_training_applies_the_cosine_lr_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the lr the optimizer actually uses follows cosine_lr step by step, ending near lr_min."""
    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data")
    train, _ = load_images(cfg, torch.device("cpu"))
    applied: list[float] = []
    original_step = torch.optim.SGD.step

    def recording_step(self: torch.optim.SGD, *args: object, **kwargs: object) -> object:
        applied.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train_supernet(cfg, 0, train, tmp_path / "run", progress=False)
    total = len(applied)
    assert total > 3
    expected = [cosine_lr(i, total, cfg.supernet.lr, cfg.supernet.lr_min) for i in range(total)]
    assert applied == pytest.approx(expected)


def test_resuming_under_changed_training_settings_is_refused_not_mixed(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data", epochs=3)
    train, _ = load_images(cfg, torch.device("cpu"))
    train_supernet(cfg, 0, train, tmp_path / "run", stop_after_epoch=1, progress=False)
    changed = cfg.with_overrides(supernet={"lr": 0.5, "epochs": 4})
    with pytest.raises(HarnessError, match=r"other settings \(supernet.epochs: 3 -> 4; supernet.lr: 0.025 -> 0.5\)"):
        train_supernet(changed, 0, train, tmp_path / "run", progress=False)
    assert load_checkpoint(checkpoint_path(tmp_path / "run", 0))["epoch"] == 1  # left as it was
    # where the data lives, the finetuning settings and the seed list are not the training's business
    elsewhere = cfg.with_overrides(data={"root": str(tmp_path / "moved"), "limit_valid": 50},
                                   finetune={"steps": 7}, supernet={"seeds": [0, 5]})
    assert load_checkpoint(train_supernet(elsewhere, 0, train, tmp_path / "run", progress=False))["epoch"] == 3


def test_supernet_and_finetuning_streams_never_coincide() -> None:
    """Supernet seed 0's epoch 5 and arch 5 of arch seed 0 once drew from the same generator."""
    from harness import rng
    from harness.supernet.train import epoch_rng

    for sub_stream in range(3):
        supernet = epoch_rng(0, 5, sub_stream).integers(0, 2**62, 8)
        finetune = rng.stream(rng.FINETUNE, 0, 5, sub_stream).integers(0, 2**62, 8)
        split = rng.stream(rng.SPLIT, 0).integers(0, 2**62, 8)
        assert not np.array_equal(supernet, finetune) and not np.array_equal(split, np.random.default_rng(0).integers(0, 2**62, 8))


def test_settings_are_compared_as_they_act_amp_only_on_cuda_split_seed_only_without_a_split_file(tmp_path: Path) -> None:
    """Pitfall pinned: resuming a CPU run on CUDA silently switched fp32 to bf16 (device counted as
    logistics), while flipping amp on a CPU run, which changes nothing, was refused."""
    import json

    from harness.supernet.config import changed_settings

    cpu = _config(tmp_path)
    saved = json.loads(json.dumps(cpu.to_dict(), default=list))
    sections = ("data", "network", "supernet", "device")
    assert changed_settings(saved, cpu.with_overrides(device={"amp": False}), sections) == []
    assert changed_settings(saved, cpu.with_overrides(device={"device": "cuda"}), sections) == [
        "device.amp: False -> True (bf16 autocast acts on CUDA only, and device went 'cpu' -> 'cuda')"]
    assert changed_settings(saved, cpu.with_overrides(device={"device": "cuda", "amp": False}), sections) == []
    with_file = json.loads(json.dumps(cpu.with_overrides(data={"split_file": "split.txt"}).to_dict(), default=list))
    assert changed_settings(with_file, cpu.with_overrides(data={"split_file": "split.txt", "split_seed": 7}), sections) == []
    assert changed_settings(saved, cpu.with_overrides(data={"split_seed": 7}), sections) == ["data.split_seed: 0 -> 7"]


def test_a_checkpoint_from_before_the_tagged_streams_is_not_resumed(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data", epochs=2)
    train, _ = load_images(cfg, torch.device("cpu"))
    path = train_supernet(cfg, 0, train, tmp_path / "run", stop_after_epoch=1, progress=False)
    state = load_checkpoint(path)
    del state["streams"]  # what the harness wrote before the streams carried a purpose tag
    torch.save(state, path)
    with pytest.raises(HarnessError, match=r"random streams of an older harness \(version 1, now 3\)"):
        train_supernet(cfg, 0, train, tmp_path / "run", progress=False)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("supernet", {"seeds": []}, "supernet.seeds must be distinct integers >= 0"),
        ("supernet", {"seeds": [0, 0]}, "supernet.seeds must be distinct integers >= 0"),
        ("supernet", {"seeds": [-1]}, "supernet.seeds must be distinct integers >= 0"),
        ("data", {"download": "yes"}, r"\[data\] download must be true or false"),
        ("supernet", {"lr": "0.1"}, r"\[supernet\] lr must be a number"),
        ("finetune", {"steps": 2.5}, r"\[finetune\] steps must be an integer"),
        ("data", {"limit_train": True}, r"\[data\] limit_train must be an integer"),
        ("report", {"estimators": "SoTL"}, r"\[report\] estimators must be a list of str"),
        ("device", {"device": "gpu"}, r"unknown device 'gpu'; valid: 'auto', 'cpu', 'cuda', 'cuda:N'"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused_not_coerced(section: str, values: dict, message: str) -> None:
    from harness.supernet.config import config_from_dict

    with pytest.raises(HarnessError, match=message):
        config_from_dict({section: values})


def test_a_run_folders_config_json_is_a_valid_config(tmp_path: Path) -> None:
    import json

    from harness.supernet.config import load_config

    cfg = _config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=list))
    assert load_config(tmp_path / "config.json") == cfg



# --------------------------------------------------------------------------- the samplers


def test_every_epoch_draws_its_own_batches_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pitfall pinned: epoch e must draw from the streams of (seed, e); drawing every epoch from the
    streams of epoch 0 repeats the same batches and paths in the same order each epoch (and resume
    stays exact, so the resume test cannot see it). All of a step's paths see the same minibatch."""
    from harness import rng
    from harness.supernet.model import NB201Network
    from harness.supernet.sampling import ALGORITHMS

    write_cifar10(tmp_path / "data", n_train=200)
    for algorithm in ("spos", "fairnas", "multipath"):
        cfg = _config(tmp_path / "data", epochs=2).with_overrides(supernet={"algorithm": algorithm})
        train, _ = load_images(cfg, torch.device("cpu"))
        seen: list[tuple[object, torch.Tensor]] = []
        forward = NB201Network.forward

        def recording_forward(self: NB201Network, x: torch.Tensor, ops=None) -> torch.Tensor:
            seen.append((ops, x.detach().clone()))
            return forward(self, x, ops)

        monkeypatch.setattr(NB201Network, "forward", recording_forward)
        train_supernet(cfg, 3, train, tmp_path / algorithm, progress=False)
        monkeypatch.undo()
        steps = len(train) // cfg.supernet.batch_size
        per_step = len(ALGORITHMS[algorithm].rollout(NB201Space(), np.random.default_rng(0), cfg.n_cells))
        assert len(seen) == 2 * steps * per_step
        for epoch in (0, 1):
            arch_rng = rng.stream(rng.SUPERNET, 3, epoch, 2)  # the documented stream of (seed, epoch)
            expected = [path for _ in range(steps) for rollout in ALGORITHMS[algorithm].draw(NB201Space(), arch_rng, cfg.n_cells) for path in rollout]
            block = seen[epoch * steps * per_step:(epoch + 1) * steps * per_step]
            assert [ops for ops, _ in block] == expected, (algorithm, epoch)
            images = [x for _, x in block]
            for i in range(0, len(images), per_step):
                assert all(torch.equal(images[i], images[j]) for j in range(i, i + per_step))
        first, second = seen[:steps * per_step], seen[steps * per_step:]
        assert [ops for ops, _ in first] != [ops for ops, _ in second]
        assert not any(torch.equal(a[1], b[1]) for a, b in zip(first, second))  # other images / crops at every step


def test_spos_draws_each_cell_on_its_own_and_redraws_a_node_whose_inputs_are_all_none() -> None:
    """The thesis code's uniform random sampling (forward_urs): per cell, per edge uniform, and a node
    with only ``none`` coming in redraws them. So each node's ops are uniform over the 5**d - 1
    choices that are not all ``none``, and cells differ."""
    from collections import Counter

    from harness.spaces.nb201 import EDGES, OPS
    from harness.supernet.spaces.nb201 import per_cell_paths

    generator = np.random.default_rng(0)
    paths = [per_cell_paths(generator, 6) for _ in range(3000)]
    assert all(len(rollout) == 1 and len(rollout[0]) == 6 for rollout in paths)
    cells = [cell for rollout in paths for cell in rollout[0]]
    for node in (1, 2, 3):
        incoming = [k for k, (_, dst) in enumerate(EDGES) if dst == node]
        combos = Counter(tuple(cell[k] for k in incoming) for cell in cells)
        assert ("none",) * len(incoming) not in combos
        n_choices = len(OPS) ** len(incoming) - 1
        assert len(combos) == n_choices  # every other combination occurs
        expected = len(cells) / n_choices
        chi2 = sum((count - expected) ** 2 / expected for count in combos.values())
        assert chi2 < n_choices + 6 * np.sqrt(2 * n_choices), (node, chi2)
    assert sum(len(set(rollout[0])) > 1 for rollout in paths) > 0.99 * len(paths)  # cells draw on their own
    assert per_cell_paths(np.random.default_rng(4), 6) == per_cell_paths(np.random.default_rng(4), 6)


def test_randomnas_and_multipath_draw_whole_network_archs_uniformly_none_included() -> None:
    from harness.spaces.nb201 import OPS
    from harness.supernet.sampling import multipath_rollout
    from harness.supernet.spaces.nb201 import NB201Space, per_network_paths

    generator = np.random.default_rng(1)
    single = [per_network_paths(generator, 3)[0] for _ in range(4000)]
    assert all(len(set(path)) == 1 for path in single)  # one arch for every cell
    ops = np.array([path[0] for path in single])
    for edge in range(6):
        counts = np.array([(ops[:, edge] == op).sum() for op in OPS])
        assert np.all(np.abs(counts - 800) < 120), counts
    assert any(path[0][3:] == ("none",) * 3 for path in single)  # an all-none node is allowed
    rollouts = [multipath_rollout(NB201Space(), generator, 3) for _ in range(300)]
    assert all(len(rollout) == 4 for rollout in rollouts)
    assert any(len({path[0] for path in rollout}) < 4 for rollout in [multipath_rollout(NB201Space(), np.random.default_rng(s), 1) for s in range(3000)])


def test_fairnas_places_every_op_of_every_edge_on_exactly_one_path_per_minibatch() -> None:
    """FairNAS's strict fairness (Chu et al. 2021): across a minibatch's five paths, each edge runs
    each op once, in every cell; each path on its own is a uniform arch (every op at every position about 1/5)."""
    from harness.spaces.nb201 import EDGES, OPS
    from harness.supernet.spaces.nb201 import fairnas_paths

    generator = np.random.default_rng(0)
    draws = [[path[0] for path in fairnas_paths(generator, 3)] for _ in range(2000)]
    assert all(len(set(path)) == 1 for path in fairnas_paths(generator, 3))
    for paths in draws:
        assert len(paths) == len(OPS) and all(len(p) == len(EDGES) for p in paths)
        for edge in range(len(EDGES)):
            assert sorted(p[edge] for p in paths) == sorted(OPS)
    for k in range(len(OPS)):  # path k, edge e: op counts over 2000 draws, each expected 400
        for edge in range(len(EDGES)):
            counts = np.array([sum(d[k][edge] == op for d in draws) for op in OPS])
            assert np.all(np.abs(counts - 400) < 80), (k, edge, counts)
    assert len({tuple(d) for d in draws}) == len(draws)  # not one fixed permutation
    assert fairnas_paths(np.random.default_rng(3), 3) == fairnas_paths(np.random.default_rng(3), 3)


def test_an_unknown_supernet_algorithm_names_the_valid_ones() -> None:
    from harness.supernet.config import config_from_dict

    with pytest.raises(HarnessError, match=r"unknown supernet algorithm 'darts'; valid: 'spos', 'randomnas', 'fairnas', 'multipath', "
                                           r"'reptile', 'metaprox', 'multipath-metaprox'"):
        config_from_dict({"supernet": {"algorithm": "darts"}})


# --------------------------------------------------------------------------- each update, against float64 autograd


def _double_supernet(seed: int = 0) -> torch.nn.Module:
    from harness.supernet.model import NB201Network, NetworkShape

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NB201Network(NetworkShape(channels=3, cells_per_stage=1, n_classes=10)).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randn(8, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return images, torch.arange(8) % 10


def _reference_sgd(params: list[torch.Tensor], grads: list[torch.Tensor | None], buffers: list[torch.Tensor | None],
                   lr: float, momentum: float, weight_decay: float, nesterov: bool) -> None:
    """torch.optim.SGD's documented update, written out: d = g + wd w; b <- mu b + d (b = d at first);
    w <- w - lr (d + mu b) with Nesterov, w - lr b without; a weight without a gradient is left alone."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            continue
        d = g + weight_decay * p
        buffers[i] = d.clone() if buffers[i] is None else momentum * buffers[i] + d
        p -= lr * (d + momentum * buffers[i] if nesterov else buffers[i])


def _objective_grads(net: torch.nn.Module, params: list[torch.Tensor], rollout, images, labels, anchor=None, prox=0.0
                     ) -> list[torch.Tensor | None]:
    """autograd of the stated objective: the rollout's mean loss, plus prox/2 ||w - anchor||^2 over every weight."""
    loss = sum(torch.nn.functional.cross_entropy(net(images, path), labels) for path in rollout) / len(rollout)
    if prox:
        loss = loss + prox / 2 * sum(((p - p0) ** 2).sum() for p, p0 in zip(params, anchor))
    return list(torch.autograd.grad(loss, params, allow_unused=True))


ALGORITHM_NAMES = ("spos", "randomnas", "fairnas", "multipath", "reptile", "metaprox", "multipath-metaprox")


@pytest.mark.parametrize("algorithm", ALGORITHM_NAMES)
def test_each_algorithms_update_equals_its_objective_stepped_by_hand(tmp_path: Path, algorithm: str) -> None:
    """Two updates of each algorithm (the second carries momentum and the zeroed gradients of the
    first) against a float64 replay: autograd of the stated objective per inner step, torch's SGD
    formula written out, Reptile's outer step theta0 + eta (mean end - theta0) with eta = 0.5 (so it
    is not the identity), and, for a meta-batch, each rollout restarting from theta0 and its
    optimizer state, the momentum buffers averaged afterwards."""
    from harness.supernet.sampling import ALGORITHMS
    from harness.supernet.train import make_optimizer, supernet_update

    algo = ALGORITHMS[algorithm]
    cfg = _config(tmp_path).with_overrides(supernet={"algorithm": algorithm, "meta_lr": 0.5, "lr": 0.05})
    sn = cfg.supernet
    images, labels = _batch()
    generator = np.random.default_rng(7)
    updates = [algo.draw(NB201Space(), generator, cfg.n_cells) for _ in range(2)]

    net = _double_supernet()
    optimizer = make_optimizer(net, cfg)
    for rollouts in updates:
        supernet_update(net, images, labels, rollouts, cfg, optimizer)

    ref = _double_supernet()
    params = list(ref.parameters())
    buffers: list[torch.Tensor | None] = [None] * len(params)
    has_grad = [False] * len(params)
    for rollouts in updates:
        start = [p.detach().clone() for p in params]
        start_buffers, start_has = list(buffers), list(has_grad)
        ends, end_buffers = [], []
        for rollout in rollouts:
            with torch.no_grad():
                for p, p0 in zip(params, start):
                    p.copy_(p0)
            buffers, has_grad = list(start_buffers), list(start_has)
            for _ in range(algo.inner_steps):
                grads = _objective_grads(ref, params, rollout, images, labels, start, algo.prox_lambda)
                has_grad = [h or g is not None for h, g in zip(has_grad, grads)]
                grads = [g if g is not None else (torch.zeros_like(p) if h else None) for p, g, h in zip(params, grads, has_grad)]
                with torch.no_grad():
                    _reference_sgd(params, grads, buffers, sn.lr, sn.momentum, sn.weight_decay, sn.nesterov)
            ends.append([p.detach().clone() for p in params])
            end_buffers.append(list(buffers))
        with torch.no_grad():
            for i, (p, p0) in enumerate(zip(params, start)):
                end = torch.stack([e[i] for e in ends]).mean(0)
                p.copy_(p0 + (sn.meta_lr if algo.is_meta else 1.0) * (end - p0))
        buffers = [None if all(b[i] is None for b in end_buffers) else
                   sum(b[i] for b in end_buffers if b[i] is not None) / len(end_buffers) for i in range(len(params))]

    moved = 0
    for (name, p), r, before in zip(net.named_parameters(), params, _double_supernet().parameters()):
        torch.testing.assert_close(p.detach(), r.detach(), rtol=1e-9, atol=1e-12, msg=lambda m: f"{name}: {m}")
        moved += not torch.equal(p.detach(), before.detach())
    assert moved > 10


def test_unsampled_weights_move_by_weight_decay_and_momentum_only_with_update_unsampled(tmp_path: Path) -> None:
    """The thesis code's zero_grad() under PyTorch 1.x kept zero gradients, so SGD's weight decay and
    momentum moved every weight once trained; ``update_unsampled = false`` leaves them alone."""
    from harness.supernet.train import make_optimizer, supernet_update

    images, labels = _batch()
    conv_ops = ("nor_conv_3x3",) * 6
    pool_ops = ("avg_pool_3x3",) * 6
    for update_unsampled in (True, False):
        cfg = _config(tmp_path).with_overrides(supernet={"algorithm": "randomnas", "update_unsampled": update_unsampled})
        net = _double_supernet()
        optimizer = make_optimizer(net, cfg)
        supernet_update(net, images, labels, [[(conv_ops,) * cfg.n_cells]], cfg, optimizer)
        conv = net.layers[0].edges[0]["nor_conv_3x3"][1].weight
        after_first = conv.detach().clone()
        supernet_update(net, images, labels, [[(pool_ops,) * cfg.n_cells]], cfg, optimizer)
        assert torch.equal(conv.detach(), after_first) is not update_unsampled, update_unsampled


def test_the_proximal_term_pulls_towards_the_weights_the_update_started_from(tmp_path: Path) -> None:
    """Metaprox with a huge lambda barely leaves theta0; with lambda = 0 (Reptile) the same inner steps go further."""
    from harness.supernet.sampling import ALGORITHMS
    from harness.supernet.train import make_optimizer, meta_update

    images, labels = _batch()
    rollouts = ALGORITHMS["metaprox"].draw(NB201Space(), np.random.default_rng(3), 3)
    distance = {}
    for name in ("reptile", "metaprox"):
        cfg = _config(tmp_path).with_overrides(supernet={"algorithm": name, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
        net = _double_supernet()
        start = torch.cat([p.detach().flatten() for p in net.parameters()])
        meta_update(net, images, labels, rollouts, cfg, make_optimizer(net, cfg), ALGORITHMS[name])
        distance[name] = float(torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in net.parameters()]) - start))
    assert 0 < distance["metaprox"] < distance["reptile"]


@pytest.mark.parametrize("algorithm", ALGORITHM_NAMES)
def test_a_killed_run_of_each_algorithm_resumes_to_identical_weights(tmp_path: Path, algorithm: str) -> None:
    write_cifar10(tmp_path / "data", n_train=64)
    cfg = _config(tmp_path / "data", epochs=2).with_overrides(supernet={"algorithm": algorithm})
    train, _ = load_images(cfg, torch.device("cpu"))
    straight = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "straight", progress=False))
    train_supernet(cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    resumed = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "killed", progress=False))
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["optimizer"]["state"].keys() == resumed["optimizer"]["state"].keys()
    for key, state in straight["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed["optimizer"]["state"][key]["momentum_buffer"])


def test_a_run_folder_refuses_another_algorithm_and_algorithms_train_differently(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=64)
    cfg = _config(tmp_path / "data", epochs=1).with_overrides(supernet={"algorithm": "fairnas"})
    train, _ = load_images(cfg, torch.device("cpu"))
    fairnas = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "fairnas", progress=False))
    spos_cfg = cfg.with_overrides(supernet={"algorithm": "spos"})
    with pytest.raises(HarnessError, match=r"supernet.algorithm: 'fairnas' -> 'spos'"):
        train_supernet(spos_cfg.with_overrides(supernet={"epochs": 1}), 0, train, tmp_path / "fairnas", progress=False)
    spos = load_checkpoint(train_supernet(spos_cfg, 0, train, tmp_path / "spos", progress=False))
    assert not all(torch.equal(t, spos["model"][n]) for n, t in fairnas["model"].items())


def test_the_history_logs_the_gradient_norm_and_with_a_clip_how_often_it_clipped(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=120)
    for clip, fraction in ((1e-6, 1.0), (1e9, 0.0), (None, None)):
        cfg = _config(tmp_path / "data", epochs=1).with_overrides(supernet={"algorithm": "fairnas", "grad_clip": clip})
        train, _ = load_images(cfg, torch.device("cpu"))
        (entry,) = json.loads(load_checkpoint(train_supernet(cfg, 0, train, tmp_path / str(clip), progress=False))["history"])
        assert entry.get("clipped_fraction") == fraction and entry["grad_norm_median"] > 0
