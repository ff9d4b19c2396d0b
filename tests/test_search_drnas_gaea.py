"""DrNAS, SoTL-DrNAS and GAEA DARTS against independent float64 computations: DrNAS's architecture
gradient is the reparameterised gradient of one Dirichlet sample drawn from the search's stream (and
unbiased for the expected loss), leaving torch's and numpy's global RNGs alone; SoTL-DrNAS sums the
rollout's training-loss gradients under fresh samples, restores and retrains; GAEA's step is the
closed-form exponentiated-gradient update on the simplex. A killed search of each resumes to the
uninterrupted state, and the CLI runs each on the toy config."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.search.algorithms import ExponentiatedGradient, SearchState, dirichlet_weights, search_block
from harness.search.config import SearchConfig, changed_search_settings, load_search_config
from harness.search.loop import checkpoint_path, init_state, load_checkpoint, log_path, search
from harness.spaces.nb201 import OPS
from harness.supernet.train import load_images
from image_fixtures import write_cifar10
from test_search_gradients import _batches, _config, _state
from test_search_loop import _config as _run_config
from test_search_loop import _search

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
NEW = ["drnas", "sotl-drnas", "gaea-darts", "gaea-erm"]


def _seeds(draws: np.random.Generator, n: int) -> list[int]:
    """The seeds of the next ``n`` Dirichlet samples of ``draws``, one integer each."""
    return [int(draws.integers(2**63)) for _ in range(n)]


def _sample(alpha: torch.Tensor, seed: int) -> torch.Tensor:
    """``W ~ Dir(elu(alpha) + 1)``, reparameterised, from torch's generator seeded with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        concentration = torch.where(alpha > 0, alpha + 1, torch.exp(alpha))  # elu(alpha) + 1, written out
        return torch.distributions.Dirichlet(concentration).rsample()


def _ce(state: SearchState, weights: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of ``batch`` with the path weights ``weights`` in every cell."""
    x, y = batch
    logits = state.net(x, weights.expand(state.net.shape.n_cells, 6, 5))
    return torch.nn.functional.cross_entropy(logits, y)


def _sgd_step(state: SearchState, value: torch.Tensor, lr: float) -> None:
    params = list(state.net.parameters())
    for p, g in zip(params, torch.autograd.grad(value, params)):
        p.grad = g
    for group in state.w_optimizer.param_groups:
        group["lr"] = lr
    state.w_optimizer.step()


def _adam_step(alpha: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """alpha after the first step of DrNAS's Adam (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) on ``grad``."""
    alpha = alpha.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([alpha], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    alpha.grad = grad.clone()
    optimizer.step()
    return alpha


def _assert_same_weights(state: SearchState, reference: SearchState) -> None:
    for (name, ours), theirs in zip(state.net.state_dict().items(), reference.net.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12, msg=name)
    for p, q in zip(state.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(state.w_optimizer.state[p]["momentum_buffer"], reference.w_optimizer.state[q]["momentum_buffer"],
                                   rtol=1e-10, atol=1e-12)


def test_drnas_gradient_is_the_reparameterised_gradient_of_one_dirichlet_sample_and_the_rngs_are_untouched() -> None:
    state = _state(_config(algorithm="drnas"))
    state.draws = np.random.default_rng(5)
    train, valid = _batches(1, seed=1), _batches(1, seed=2)
    reference = copy.deepcopy(state)
    seeds = _seeds(np.random.default_rng(5), 2)

    # independently: the validation loss under the seeds[0] sample of Dir(elu(alpha) + 1), every cell the
    # same sample, differentiated through the sample; DrNAS's Adam step (L2 regulariser = weight decay 1e-3);
    # then the weight step under a fresh sample (seeds[1]) of the new alpha
    expected = torch.autograd.grad(_ce(reference, _sample(reference.alpha, seeds[0]), valid[0]), [reference.alpha])[0]
    new_alpha = _adam_step(reference.alpha, expected)
    _sgd_step(reference, _ce(reference, _sample(new_alpha.detach(), seeds[1]), train[0]), 0.02)

    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    search_block(state, "drnas", train, valid, [0.02])

    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_rng))
    torch.testing.assert_close(state.alpha.grad, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(state.alpha.detach(), new_alpha.detach(), rtol=1e-12, atol=1e-14)
    _assert_same_weights(state, reference)
    assert int(state.draws.integers(2**63)) == _seeds(np.random.default_rng(5), 3)[2]  # one seed per forward pass, two used
    # the softmax (DARTS) gradient at the same point is another one
    softmax_grad = torch.autograd.grad(_ce(reference, torch.softmax(reference.alpha, dim=-1), valid[0]), [reference.alpha])[0]
    assert (softmax_grad - expected).abs().max() > 1e-3 * expected.abs().max()


def test_a_dirichlet_sample_is_fixed_by_its_draws_and_its_gradient_is_unbiased_for_the_expected_loss() -> None:
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_()
    one, two = (dirichlet_weights(alpha, np.random.default_rng(3)) for _ in range(2))
    assert torch.equal(one, two)
    assert not torch.equal(one, dirichlet_weights(alpha, np.random.default_rng(4)))
    torch.testing.assert_close(one.sum(dim=-1), torch.ones(6, dtype=torch.float64), rtol=1e-14, atol=1e-14)
    # E_{W ~ Dir(beta)} sum c * W = sum c * beta / sum(beta): the mean of the pathwise gradients of samples is its gradient
    c = torch.randn(6, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    beta = torch.nn.functional.elu(alpha) + 1
    (exact,) = torch.autograd.grad((c * beta / beta.sum(dim=-1, keepdim=True)).sum(), [alpha])
    draws = np.random.default_rng(6)
    grads = torch.stack([torch.autograd.grad((c * dirichlet_weights(alpha, draws)).sum(), [alpha])[0] for _ in range(3000)])
    error = (grads.mean(dim=0) - exact).abs()
    assert (error <= 5 * grads.std(dim=0) / np.sqrt(len(grads))).all(), error.max()


def test_sotl_drnas_sums_the_rollouts_gradients_under_fresh_samples_restores_and_retrains() -> None:
    state = _state(_config(algorithm="sotl-drnas", unroll_steps=3))
    state.draws = np.random.default_rng(9)
    train, lrs = _batches(3, seed=1), [0.05, 0.04, 0.03]
    reference = copy.deepcopy(state)
    seeds = _seeds(np.random.default_rng(9), 6)

    # independently: the trajectory w_1..w_3 with torch's SGD on a copy, sample t for step t, the arch
    # gradients of the training losses summed
    rollout = copy.deepcopy(reference)
    params = list(rollout.net.parameters())
    expected = torch.zeros_like(reference.alpha)
    for t, batch in enumerate(train):
        *weight_grads, g = torch.autograd.grad(_ce(rollout, _sample(rollout.alpha, seeds[t]), batch), [*params, rollout.alpha])
        if t == 0:
            first_step_only = g
        expected += g
        for p, grad in zip(params, weight_grads):
            p.grad = grad
        for group in rollout.w_optimizer.param_groups:
            group["lr"] = lrs[t]
        rollout.w_optimizer.step()
    # one Adam step on the sum, then the saved weights retrained on the same minibatches, samples 4..6 of the new alpha
    new_alpha = _adam_step(reference.alpha, expected).detach()
    for t, (batch, lr) in enumerate(zip(train, lrs)):
        _sgd_step(reference, _ce(reference, _sample(new_alpha, seeds[3 + t]), batch), lr)

    search_block(state, "sotl-drnas", train, [], lrs)

    torch.testing.assert_close(state.alpha.grad, expected, rtol=1e-12, atol=1e-14)
    assert (expected - first_step_only).abs().max() > 1e-3 * expected.abs().max()  # the sum is not one step's
    torch.testing.assert_close(state.alpha.detach(), new_alpha, rtol=1e-12, atol=1e-14)
    _assert_same_weights(state, reference)
    rolled = dict(rollout.net.named_parameters())  # and not the weights the unrolling reached: the restore happened
    assert max((p - rolled[n]).abs().max() for n, p in state.net.named_parameters()) > 1e-6


def test_gaea_step_is_the_exponentiated_gradient_update_and_stays_on_the_simplex() -> None:
    cfg = _config(algorithm="gaea-darts")
    fresh = init_state(cfg, seed=0, device=torch.device("cpu"), dtype=torch.float64)
    assert torch.equal(fresh.alpha.detach(), torch.tensor([[0.0, 0.25, 0.25, 0.25, 0.25]] * 6, dtype=torch.float64))
    assert isinstance(fresh.a_optimizer, ExponentiatedGradient) and fresh.a_optimizer.param_groups[0]["lr"] == 0.1
    with_none = init_state(cfg.with_overrides(search={"gaea_exclude_none": False}), 0, torch.device("cpu"), torch.float64)
    assert torch.equal(with_none.alpha.detach(), torch.full((6, 5), 0.2, dtype=torch.float64))

    state = _state(cfg)
    with torch.no_grad():
        u = torch.rand(6, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 0.1
        u[:, OPS.index("none")] = 0
        state.alpha.copy_(u / u.sum(dim=-1, keepdim=True))
    train, valid = _batches(1, seed=1), _batches(1, seed=2)
    reference = copy.deepcopy(state)
    # independently: the validation loss with alpha itself as the path weights, alpha * exp(-0.1 g) renormalised
    (g,) = torch.autograd.grad(_ce(reference, reference.alpha, valid[0]), [reference.alpha])
    step = reference.alpha.detach() * torch.exp(-0.1 * g)
    new_alpha = step / step.sum(dim=-1, keepdim=True)
    _sgd_step(reference, _ce(reference, new_alpha, train[0]), 0.02)

    search_block(state, "gaea-darts", train, valid, [0.02])

    torch.testing.assert_close(state.alpha.grad, g, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(state.alpha.detach(), new_alpha, rtol=1e-12, atol=1e-15)
    assert (state.alpha.detach() - reference.alpha.detach()).abs().max() > 1e-4  # the step moved alpha
    torch.testing.assert_close(state.alpha.detach().sum(dim=-1), torch.ones(6, dtype=torch.float64), rtol=1e-14, atol=1e-14)
    assert (state.alpha[:, OPS.index("none")] == 0).all() and (state.alpha > 0).sum() == 6 * 4
    _assert_same_weights(state, reference)


def test_exponentiated_gradient_floors_the_support_and_checkpoints_its_settings() -> None:
    p = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype=torch.float64, requires_grad=True)
    optimizer = ExponentiatedGradient([p], lr=1.0)
    p.grad = torch.tensor([[0.0, 100.0, 0.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    optimizer.step()
    floored = torch.tensor([0.0, 1e-5, 0.5], dtype=torch.float64)  # 0.5 e^-100 held at the floor 1e-5; 0 stays 0
    second = torch.tensor([0.2, 0.3 * np.exp(-1.0), 0.5 * np.exp(1.0)], dtype=torch.float64)
    torch.testing.assert_close(p.detach(), torch.stack([floored / floored.sum(), second / second.sum()]), rtol=1e-14, atol=0)
    restored = ExponentiatedGradient([p], lr=0.5)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["lr"] == 1.0 and restored.param_groups[0]["floor"] == 1e-5


def test_config_defaults_the_optimizers_and_bad_settings() -> None:
    s = SearchConfig().search
    assert (s.drnas_reg_scale, s.gaea_lr, s.gaea_exclude_none) == (1e-3, 0.1, True)
    for algorithm, decay in (("drnas", 2e-3), ("sotl-drnas", 2e-3), ("darts-1", 1e-3)):  # DrNAS's L2 is Adam's weight decay
        cfg = _config(algorithm=algorithm, drnas_reg_scale=2e-3)
        optimizer = init_state(cfg, 0, torch.device("cpu"), torch.float64).a_optimizer
        assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["weight_decay"] == decay
    with pytest.raises(HarnessError, match="search.gaea_lr"):
        SearchConfig().with_overrides(search={"gaea_lr": 0.0})
    with pytest.raises(HarnessError, match="search.drnas_reg_scale"):
        SearchConfig().with_overrides(search={"drnas_reg_scale": -1.0})
    # a folder searched before these keys existed resumes: a key it lacks counts as its default
    old = json.loads(json.dumps(SearchConfig().to_dict()))
    for key in ("drnas_reg_scale", "gaea_lr", "gaea_exclude_none"):
        del old["search"][key]
    assert changed_search_settings(old, SearchConfig()) == []
    assert changed_search_settings(old, SearchConfig().with_overrides(search={"gaea_lr": 0.2})) == ["search.gaea_lr: None -> 0.2"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_train=64, n_test=8)
    return root


def _assert_equal(one: Any, two: Any, where: str = "") -> None:
    if isinstance(one, torch.Tensor):
        assert torch.equal(one, two), where
    elif isinstance(one, dict):
        assert one.keys() == two.keys(), where
        for key in one:
            _assert_equal(one[key], two[key], f"{where}.{key}")
    elif isinstance(one, (list, tuple)):
        assert len(one) == len(two), where
        for i, (a, b) in enumerate(zip(one, two)):
            _assert_equal(a, b, f"{where}[{i}]")
    else:
        assert one == two, where


@pytest.mark.parametrize("algorithm", NEW)
def test_a_killed_search_resumes_to_the_uninterrupted_state(data_root: Path, tmp_path: Path, algorithm: str) -> None:
    cfg = _run_config(data_root, algorithm, epochs=3)
    _search(cfg, tmp_path / "whole")
    _search(cfg, tmp_path / "killed", stop=1)
    assert load_checkpoint(checkpoint_path(tmp_path / "killed", 0))["epoch"] == 1
    _search(cfg, tmp_path / "killed")
    whole, killed = (load_checkpoint(checkpoint_path(tmp_path / run, 0)) for run in ("whole", "killed"))
    strip = lambda history: [{k: v for k, v in entry.items() if k != "seconds"} for entry in json.loads(history)]  # noqa: E731
    assert strip(whole.pop("history")) == strip(killed.pop("history"))
    _assert_equal(whole, killed)
    assert len(json.loads(log_path(tmp_path / "killed", 0).read_text())) == 3
    assert not torch.equal(whole["alpha"], init_state(cfg, 0, torch.device("cpu"), torch.float64).alpha.detach())


def test_gaea_erm_is_gaea_darts_whose_validation_split_is_the_training_split(data_root: Path, tmp_path: Path) -> None:
    cfg = _run_config(data_root, "gaea-erm", epochs=2)
    train, valid = load_images(cfg.ws_config(), torch.device("cpu"))
    bench = load_benchmark("nb201")
    erm = search(cfg, 0, train, None, tmp_path / "erm", dtype=torch.float64, bench=bench)
    bilevel = search(cfg.with_overrides(search={"algorithm": "gaea-darts"}), 0, train, train, tmp_path / "bilevel",
                     dtype=torch.float64, bench=bench)
    assert torch.equal(erm.alpha, bilevel.alpha) and not torch.equal(erm.alpha, init_state(cfg, 0, torch.device("cpu"),
                                                                                              torch.float64).alpha)
    for ours, theirs in zip(erm.net.state_dict().values(), bilevel.net.state_dict().values()):
        assert torch.equal(ours, theirs)
    on_valid = search(cfg.with_overrides(search={"algorithm": "gaea-darts"}), 0, train, valid, tmp_path / "valid",
                      dtype=torch.float64, bench=bench)
    assert not torch.equal(on_valid.alpha, erm.alpha)  # the architecture minibatches differ: not the validation data
    assert (erm.alpha.sum(dim=-1) - 1).abs().max() < 1e-12 and (erm.alpha[:, 0] == 0).all()  # on the simplex, none at 0


def test_drnas_needs_the_validation_split_and_sotl_drnas_does_not(data_root: Path, tmp_path: Path) -> None:
    cfg = _run_config(data_root, "drnas", epochs=1)
    train, _ = load_images(cfg.ws_config(), torch.device("cpu"))
    with pytest.raises(HarnessError, match="drnas needs the validation split"):
        search(cfg, 0, train, None, tmp_path / "drnas", dtype=torch.float64)
    state = search(cfg.with_overrides(search={"algorithm": "sotl-drnas"}), 0, train, None, tmp_path / "sotl", dtype=torch.float64,
                   bench=load_benchmark("nb201"))
    assert torch.isfinite(state.alpha).all()


def test_cli_runs_each_new_algorithm_on_the_toy_config(tmp_path: Path) -> None:
    data_root = tmp_path / "cifar"
    write_cifar10(data_root, n_train=512, n_test=8)  # 256 training images: the toy config's 8 batches of 32
    toy = ROOT / "configs" / "search-toy-cpu.toml"
    for algorithm in NEW:
        out = tmp_path / algorithm
        assert main(["search", "run", "--config", str(toy), "--data-root", str(data_root), "--out", str(out),
                     "--algorithm", algorithm, "--no-progress"]) == 0
        log = json.loads((out / "search-seed0.json").read_text())
        assert len(log) == 2 and all(np.isfinite([entry["arch_loss"], entry["train_loss"]]).all() for entry in log)
        assert load_search_config(out / "config.json").search.algorithm == algorithm
