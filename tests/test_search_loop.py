"""The search loop: a killed search resumes to the state an uninterrupted one reaches, a seed fixes the
whole search, the per-epoch log's derived arch and truth, config checks, and the CLI on the toy config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.search.config import SearchConfig, load_search_config
from harness import rng
from harness.search.algorithms import loss
from harness.search.derive import derived_genotype, derived_ops, describe
from harness.search.diagnostics import cell_depth_darts, cell_depth_nb201
from harness.search.loop import _minibatches, checkpoint_path, init_state, load_checkpoint, log_path, search
from harness.spaces.nb201 import OPS, ops_to_arch
from harness.supernet.train import load_images
from image_fixtures import write_cifar10
from search_fixtures import assert_same_search_state

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
BENCH = load_benchmark("nb201")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_train=64, n_test=8)
    return root


def _config(root: Path, algorithm: str, epochs: int = 2) -> SearchConfig:
    return SearchConfig().with_overrides(
        data={"root": str(root), "image_size": 8},
        network={"channels": 2, "cells_per_stage": 1},
        search={"algorithm": algorithm, "seeds": [0], "epochs": epochs, "batch_size": 8, "unroll_steps": 2},
        device={"device": "cpu"},
    )


def _search(cfg: SearchConfig, out: Path, seed: int = 0, stop: int | None = None) -> None:
    train, valid = load_images(cfg.ws_config(), torch.device("cpu"))
    search(cfg, seed, train, None if cfg.search.algorithm == "sotl-darts" else valid, out, stop_after_epoch=stop,
           dtype=torch.float64, bench=BENCH)


@pytest.mark.parametrize("algorithm", ["sotl-darts", "darts-2"])
def test_a_killed_search_resumes_to_the_uninterrupted_state(data_root: Path, tmp_path: Path, algorithm: str) -> None:
    cfg = _config(data_root, algorithm, epochs=3)
    _search(cfg, tmp_path / "whole")
    _search(cfg, tmp_path / "killed", stop=1)
    assert load_checkpoint(checkpoint_path(tmp_path / "killed", 0))["epoch"] == 1
    _search(cfg, tmp_path / "killed")
    assert_same_search_state(checkpoint_path(tmp_path / "whole", 0), checkpoint_path(tmp_path / "killed", 0))
    assert len(json.loads(log_path(tmp_path / "killed", 0).read_text())) == 3


def test_resuming_under_other_settings_is_refused(data_root: Path, tmp_path: Path) -> None:
    cfg = _config(data_root, "darts-1", epochs=2)
    _search(cfg, tmp_path, stop=1)
    with pytest.raises(HarnessError, match="search.arch_lr"):
        _search(cfg.with_overrides(search={"arch_lr": 1e-3}), tmp_path)


@pytest.mark.parametrize("algorithm", ["darts-1", "sovl-darts"])
def test_a_seed_fixes_the_search_and_another_seed_changes_it(data_root: Path, tmp_path: Path, algorithm: str) -> None:
    cfg = _config(data_root, algorithm, epochs=1)
    _search(cfg, tmp_path / "a")
    _search(cfg, tmp_path / "b")
    _search(cfg, tmp_path / "c", seed=1)
    assert_same_search_state(checkpoint_path(tmp_path / "a", 0), checkpoint_path(tmp_path / "b", 0))
    a, c = load_checkpoint(checkpoint_path(tmp_path / "a", 0)), load_checkpoint(checkpoint_path(tmp_path / "c", 1))
    assert not torch.equal(a["alpha"], c["alpha"])


def test_the_log_holds_the_argmax_arch_its_truth_and_op_counts(data_root: Path, tmp_path: Path) -> None:
    cfg = _config(data_root, "sotl-darts", epochs=1)
    _search(cfg, tmp_path)
    (entry,) = json.loads(log_path(tmp_path, 0).read_text())
    alpha = load_checkpoint(checkpoint_path(tmp_path, 0))["alpha"].numpy()
    ops = tuple(OPS[int(i)] for i in alpha.argmax(axis=1))
    assert entry["arch"] == ops_to_arch(ops)
    assert entry["arch_index"] == int(BENCH.resolve([ops])[0])
    assert entry["cifar10_test_200"] == float(BENCH.final([entry["arch_index"]], "cifar10", "accuracy", "ori-test", "200")[0])
    assert entry["n_skip"] == ops.count("skip_connect")
    np.testing.assert_allclose(np.asarray(entry["op_weights"]).sum(axis=1), 1.0, rtol=1e-12)
    assert np.isfinite([entry["arch_loss"], entry["train_loss"]]).all()


@pytest.mark.parametrize("algorithm", ["sotl-darts", "darts-1"])
def test_the_logged_eigenvalue_is_the_dominant_one_of_the_exact_hessian_on_the_right_minibatch(
        data_root: Path, tmp_path: Path, algorithm: str) -> None:
    """Power iteration on the epoch's first training minibatch for SoTL-DARTS (the thesis tracks its
    training loss), the first validation minibatch for DARTS, at the epoch's final weights: equal to
    the largest-magnitude eigenvalue of the explicit float64 Hessian of that loss in alpha."""
    cfg = _config(data_root, algorithm, epochs=1).with_overrides(search={"eigenvalue_tol": 1e-10, "eigenvalue_iterations": 500})
    _search(cfg, tmp_path)
    (entry,) = json.loads(log_path(tmp_path, 0).read_text())
    saved = load_checkpoint(checkpoint_path(tmp_path, 0))
    state = init_state(cfg, 0, torch.device("cpu"), torch.float64)
    state.net.load_state_dict(saved["model"])
    train, valid = load_images(cfg.ws_config(), torch.device("cpu"))
    images, order, augment = (train, 0, 1) if algorithm == "sotl-darts" else (valid, 2, 3)
    steps = len(train) // cfg.search.batch_size
    batch = _minibatches(images, rng.stream(rng.SEARCH, 0, 0, order), rng.stream(rng.SEARCH, 0, 0, augment), steps,
                         cfg.search.batch_size, torch.float64)[0]
    hessian = torch.autograd.functional.hessian(lambda a: loss(state.net, a, batch), saved["alpha"]).reshape(30, 30)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    dominant = float(eigenvalues[eigenvalues.abs().argmax()])
    assert entry["hessian_eigenvalue"] == pytest.approx(dominant, rel=1e-6)
    assert 1 <= entry["eigenvalue_iterations"] <= 500
    assert entry["depth"] == cell_depth_nb201(entry["arch"])


def test_a_search_on_the_darts_s2_space_logs_nb301_truth_depth_and_resumes(data_root: Path, tmp_path: Path) -> None:
    cfg = SearchConfig().with_overrides(
        space="darts-s2", data={"root": str(data_root), "image_size": 8}, network={"channels": 4, "cells_per_stage": 1},
        search={"algorithm": "darts-1", "seeds": [0], "epochs": 2, "batch_size": 16, "eigenvalue_iterations": 5},
        device={"device": "cpu"})
    bench = load_benchmark("nb301")
    train, valid = load_images(cfg.ws_config(), torch.device("cpu"))
    search(cfg, 0, train, valid, tmp_path / "a", dtype=torch.float64, bench=bench)
    search(cfg, 0, train, valid, tmp_path / "b", stop_after_epoch=1, dtype=torch.float64, bench=bench)
    search(cfg, 0, train, valid, tmp_path / "b", dtype=torch.float64, bench=bench)
    assert_same_search_state(checkpoint_path(tmp_path / "a", 0), checkpoint_path(tmp_path / "b", 0))
    history = json.loads(log_path(tmp_path / "a", 0).read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    for entry in history:
        genotype = derived_genotype(np.asarray(entry["op_weights"]), ("skip_connect", "sep_conv_3x3"))
        assert entry["arch"] == str(genotype) and entry["depth"] == cell_depth_darts(genotype.normal)
        assert entry["cifar10_valid_98"] == float(bench.final([genotype], "cifar10", "accuracy", "valid", "98")[0])
        assert np.isfinite(entry["hessian_eigenvalue"])
    with pytest.raises(HarnessError, match="space: 'darts-s2' -> 'darts'"):
        search(cfg.with_overrides(space="darts"), 0, train, valid, tmp_path / "a", bench=bench)


def test_derive_counts_and_looks_up_a_known_arch() -> None:
    ops = ("skip_connect", "none", "avg_pool_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1")
    alpha = np.full((6, 5), -1.0)
    for k, op in enumerate(ops):
        alpha[k, OPS.index(op)] = 2.0
    alpha[0, OPS.index("none")] = 2.0  # a tie goes to the op first in OPS
    assert derived_ops(alpha) == ("none",) + ops[1:]
    info = describe(alpha, BENCH)
    assert (info["n_skip"], info["n_parameter_free"]) == (1, 4)
    index = int(BENCH.resolve([("none",) + ops[1:]])[0])
    assert info["imagenet16_test_12"] == float(BENCH.final([index], "ImageNet16-120", "accuracy", "x-test", "12")[0])
    with pytest.raises(HarnessError, match="shape"):
        derived_ops(np.zeros((6, 4)))


def test_config_defaults_are_table_b1_and_bad_settings_are_refused() -> None:
    s = SearchConfig().search
    assert (s.lr, s.lr_min, s.momentum, s.weight_decay, s.arch_lr, s.arch_weight_decay, s.epochs, s.batch_size) == (
        0.025, 0.001, 0.9, 5e-4, 3e-4, 1e-3, 50, 64)
    assert (s.arch_beta1, s.arch_beta2, s.unroll_steps) == (0.5, 0.999, 100)
    with pytest.raises(HarnessError, match="search algorithm"):
        SearchConfig().with_overrides(search={"algorithm": "gaea"})
    with pytest.raises(HarnessError, match="bn_track_running_stats"):
        SearchConfig().with_overrides(network={"bn_track_running_stats": True})
    with pytest.raises(HarnessError, match="key in \\[search\\]"):
        SearchConfig().with_overrides(search={"unroll": 3})


def test_cli_runs_the_toy_config_and_the_config_layer_imports_without_torch(tmp_path: Path) -> None:
    data_root = tmp_path / "cifar"
    write_cifar10(data_root, n_train=512, n_test=8)  # 256 training images: the toy config's 8 batches of 32
    toy = ROOT / "configs" / "search-toy-cpu.toml"
    assert load_search_config(toy).search.unroll_steps == 4
    out = tmp_path / "run"
    assert main(["search", "run", "--config", str(toy), "--data-root", str(data_root), "--out", str(out),
                 "--algorithm", "sotl-darts"]) == 0
    assert len(json.loads((out / "search-seed0.json").read_text())) == 2
    assert load_search_config(out / "config.json").search.algorithm == "sotl-darts"
    code = ("import sys; import harness.search.config, harness.search.derive, harness.commands.search; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("search-*.toml")), ids=lambda path: path.name)
def test_every_shipped_search_config_loads_and_the_unrolled_algorithms_take_an_architecture_step_per_epoch(path: Path) -> None:
    """Each config loads; under it SoTL-DARTS's T unrolled minibatches fit an epoch of the training half
    (an epoch with no architecture step would be refused at run time, after the data load)."""
    cfg = load_search_config(path).with_overrides(search={"algorithm": "sotl-darts"})
    train_images = cfg.data.limit_train or 25_000  # cifar10-valid's training half
    assert train_images // cfg.search.batch_size // cfg.block_steps >= 1, path.name
