"""Supernet training (SPOS, FairNAS): per-epoch checkpoints, exact resume, seeded init that leaves global RNGs alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.supernet.config import WSConfig
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
    with pytest.raises(HarnessError, match=r"random streams of an older harness \(version 1, now 2\)"):
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


@pytest.mark.parametrize("algorithm", ["spos", "fairnas"])
def test_every_epoch_draws_its_own_batches_and_archs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    """Pitfall pinned: epoch e must draw from the streams of (seed, e); drawing every epoch from the
    streams of epoch 0 repeats the same batches and archs in the same order each epoch (and resume
    stays exact, so the resume test cannot see it). FairNAS draws its 5 paths per step from the same
    arch stream, one permutation per edge after another."""
    from harness import rng
    from harness.spaces.nb201 import EDGES, OPS
    from harness.supernet.model import NB201Network

    write_cifar10(tmp_path / "data", n_train=200)
    cfg = _config(tmp_path / "data", epochs=2).with_overrides(supernet={"algorithm": algorithm})
    train, _ = load_images(cfg, torch.device("cpu"))
    seen: list[tuple[tuple[str, ...], torch.Tensor]] = []
    forward = NB201Network.forward

    def recording_forward(self: NB201Network, x: torch.Tensor, ops=None) -> torch.Tensor:
        seen.append((tuple(ops), x.detach().clone()))
        return forward(self, x, ops)

    monkeypatch.setattr(NB201Network, "forward", recording_forward)
    train_supernet(cfg, 3, train, tmp_path / "run", progress=False)
    steps = len(train) // cfg.supernet.batch_size
    per_step = 1 if algorithm == "spos" else len(OPS)
    assert len(seen) == 2 * steps * per_step
    for epoch in (0, 1):
        # the documented draws from stream (SUPERNET, seed, epoch, 2), step after step. SPOS: the arch
        # is OPS[integers(0, 5, 6)]; FairNAS: permutation(5) per edge, path k takes entry k of each.
        arch_rng = rng.stream(rng.SUPERNET, 3, epoch, 2)
        expected = []
        for _ in range(steps):
            if algorithm == "spos":
                expected.append(tuple(OPS[i] for i in arch_rng.integers(0, len(OPS), size=len(EDGES))))
            else:
                perms = [arch_rng.permutation(len(OPS)) for _ in EDGES]
                expected += [tuple(OPS[perm[k]] for perm in perms) for k in range(len(OPS))]
        block = seen[epoch * steps * per_step:(epoch + 1) * steps * per_step]
        assert [ops for ops, _ in block] == expected, epoch
        images = [x for _, x in block]
        for i in range(0, len(images), per_step):  # a step's paths all see the same minibatch
            assert all(torch.equal(images[i], images[j]) for j in range(i, i + per_step))
    first, second = seen[:steps * per_step], seen[steps * per_step:]
    assert [ops for ops, _ in first] != [ops for ops, _ in second]
    assert not any(torch.equal(a[1], b[1]) for a, b in zip(first, second))  # other images / crops at every step


def test_fairnas_places_every_op_of_every_edge_on_exactly_one_path_per_minibatch() -> None:
    """FairNAS's strict fairness (Chu et al. 2021): across a minibatch's five paths, each edge runs
    each op once; each path on its own is a uniform arch (every op at every position about 1/5)."""
    from harness.spaces.nb201 import EDGES, OPS
    from harness.supernet.sampling import fairnas_paths, spos_paths

    generator = np.random.default_rng(0)
    draws = [fairnas_paths(generator) for _ in range(2000)]
    for paths in draws:
        assert len(paths) == len(OPS) and all(len(p) == len(EDGES) for p in paths)
        for edge in range(len(EDGES)):
            assert sorted(p[edge] for p in paths) == sorted(OPS)
    for k in range(len(OPS)):  # path k, edge e: op counts over 2000 draws, each expected 400
        for edge in range(len(EDGES)):
            counts = np.array([sum(d[k][edge] == op for d in draws) for op in OPS])
            assert np.all(np.abs(counts - 400) < 80), (k, edge, counts)
    assert len({tuple(d) for d in map(tuple, draws)}) == len(draws)  # not one fixed permutation
    assert fairnas_paths(np.random.default_rng(3)) == fairnas_paths(np.random.default_rng(3))
    spos = [spos_paths(generator) for _ in range(200)]
    assert all(len(paths) == 1 for paths in spos)
    assert any(len(set(paths[0])) < len(EDGES) for paths in spos)  # ops repeat across edges under SPOS


def _double_supernet() -> "torch.nn.Module":
    from harness.supernet.model import NB201Network, NetworkShape

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return NB201Network(NetworkShape(channels=4, cells_per_stage=1, n_classes=10)).double()


def test_a_fairnas_step_adds_up_its_paths_gradients_and_clips_the_sum(tmp_path: Path) -> None:
    """Pitfalls pinned: one update per minibatch from the sum of the five paths' gradients (not the
    last path's, not five updates), and clipping applied to that sum (not to each path's gradient)."""
    from harness.supernet.model import live_edges
    from harness.supernet.sampling import fairnas_paths
    from harness.supernet.train import supernet_step

    cfg = _config(tmp_path).with_overrides(supernet={"algorithm": "fairnas", "grad_clip": 1e9})
    paths = fairnas_paths(np.random.default_rng(1))
    images = torch.randn(8, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(8) % 10
    net = _double_supernet()
    params = list(net.parameters())
    per_path = []
    for ops in paths:
        loss = torch.nn.functional.cross_entropy(net(images, ops), labels)
        per_path.append(torch.autograd.grad(loss, params, allow_unused=True))
    summed = [sum(g[i] if g[i] is not None else torch.zeros_like(p) for g in per_path) for i, p in enumerate(params)]
    with torch.no_grad():
        losses = [float(torch.nn.functional.cross_entropy(net(images, ops), labels)) for ops in paths]
    # an op's weights get a gradient from the one path that runs it there, if that edge is live in it
    trained = 0
    for i, (name, _) in enumerate(net.named_parameters()):
        if ".edges." in name:
            edge, op = int(name.split(".")[3]), name.split(".")[4]
            runs = [k for k, ops in enumerate(paths) if ops[edge] == op and live_edges(ops)[edge]]
            assert len(runs) <= 1
            assert [k for k, g in enumerate(per_path) if g[i] is not None and bool(g[i].abs().sum() > 0)] == runs, name
            trained += len(runs)
    assert trained >= 6  # most conv weights of the cell are trained in this one step

    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=1.0)
    mean_loss, norm = supernet_step(net, images, labels, paths, cfg, optimizer)
    assert float(mean_loss) == pytest.approx(np.mean(losses), rel=1e-12)
    assert float(norm) == pytest.approx(float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in summed]))), rel=1e-10)
    for p, b, g in zip(params, before, summed):
        torch.testing.assert_close(b - p.detach(), g, rtol=1e-10, atol=1e-12)

    clip = 0.01
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in summed]))
    assert norm > 10 * clip
    net = _double_supernet()
    params = list(net.parameters())
    optimizer = torch.optim.SGD(params, lr=1.0)
    supernet_step(net, images, labels, paths, cfg.with_overrides(supernet={"grad_clip": clip}), optimizer)
    for p, b, g in zip(params, before, summed):
        torch.testing.assert_close(b - p.detach(), g * (clip / (norm + 1e-6)), rtol=1e-8, atol=1e-14)


def test_fairnas_training_resumes_exactly_and_differs_from_spos(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=120)
    cfg = _config(tmp_path / "data", epochs=2).with_overrides(supernet={"algorithm": "fairnas"})
    train, _ = load_images(cfg, torch.device("cpu"))
    straight = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "straight", progress=False))
    train_supernet(cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    resumed = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "killed", progress=False))
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    spos_cfg = cfg.with_overrides(supernet={"algorithm": "spos"})
    with pytest.raises(HarnessError, match=r"supernet.algorithm: 'fairnas' -> 'spos'"):
        train_supernet(spos_cfg, 0, train, tmp_path / "killed", progress=False)
    spos = load_checkpoint(train_supernet(spos_cfg, 0, train, tmp_path / "spos", progress=False))
    assert not all(torch.equal(t, spos["model"][n]) for n, t in straight["model"].items())


def test_an_unknown_supernet_algorithm_names_the_valid_ones() -> None:
    from harness.supernet.config import config_from_dict

    with pytest.raises(HarnessError, match=r"unknown supernet algorithm 'darts'; valid: 'spos', 'fairnas'"):
        config_from_dict({"supernet": {"algorithm": "darts"}})


def test_the_history_logs_the_gradient_norm_before_clipping_and_how_often_it_was_clipped(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=120)
    for clip, fraction in ((1e-6, 1.0), (1e9, 0.0)):
        cfg = _config(tmp_path / "data", epochs=1).with_overrides(supernet={"algorithm": "fairnas", "grad_clip": clip})
        train, _ = load_images(cfg, torch.device("cpu"))
        (entry,) = json.loads(load_checkpoint(train_supernet(cfg, 0, train, tmp_path / str(clip), progress=False))["history"])
        assert entry["clipped_fraction"] == fraction and entry["grad_norm_median"] > 0
