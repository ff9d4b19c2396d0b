"""The architecture gradients of the differentiable search algorithms against independent float64
computations: DARTS second order's finite-difference Hessian-vector product against the exact
autograd derivative of the unrolled validation loss, and SoTL-DARTS's (and SoVL-DARTS's)
unroll-restore-retrain block against the trajectory recomputed step by step with torch's optimizers."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.search.algorithms import SearchState, darts_second_order, loss, search_block
from harness.search.config import SearchConfig
from harness.search.loop import init_state

torch.set_num_threads(1)


def _config(**search: object) -> SearchConfig:
    return SearchConfig().with_overrides(network={"channels": 2, "cells_per_stage": 1}, device={"device": "cpu"}, search=search)


def _batches(n: int, seed: int, size: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (size,), generator=g))
            for _ in range(n)]


def _state(cfg: SearchConfig, warm_steps: int = 2) -> SearchState:
    """A float64 search state with alpha away from uniform and momentum buffers already filled."""
    state = init_state(cfg, seed=3, device=torch.device("cpu"), dtype=torch.float64)
    with torch.no_grad():
        state.alpha.copy_(torch.randn(6, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64))
    for batch in _batches(warm_steps, seed=11):
        state.w_optimizer.zero_grad()
        loss(state.net, state.alpha.detach(), batch).backward()
        state.w_optimizer.step()
    return state


def test_darts_second_order_finite_difference_equals_the_exact_unrolled_gradient() -> None:
    # eps = r / ||v|| as the paper, with r = 1e-4 rather than its 0.01: on this C = 2 network a weight step of
    # norm 0.01 crosses ReLU kinks and the central difference is off by O(1) there (5x the gradient at r = 0.1,
    # 3e-6 at r = 1e-3, 3e-8 at r = 1e-4 against a Hessian-vector product of norm ~1.6)
    cfg = _config(algorithm="darts-2", hessian_r=1e-4)
    state = _state(cfg)
    train, valid = _batches(1, seed=1), _batches(1, seed=2)
    xi = 0.025
    reference = copy.deepcopy(state)

    # exact: d/d alpha L_val(w'(alpha), alpha), w'(alpha) = w - xi (mu b + dL_train(w, alpha)/dw + wd w), by autograd
    # through the virtual step (create_graph), i.e. dL_val/d alpha - xi d2L_train/(d alpha dw) v without approximation
    net, alpha = reference.net, reference.alpha
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(loss(net, alpha, train[0]), params, create_graph=True)
    group = reference.w_optimizer.param_groups[0]
    virtual = {n: p.detach() - xi * (group["momentum"] * reference.w_optimizer.state[p]["momentum_buffer"] + g
                                     + group["weight_decay"] * p.detach())
               for n, p, g in zip(names, params, grads)}
    (exact,) = torch.autograd.grad(loss(net, alpha, valid[0], virtual), [alpha])
    first_order_only = torch.autograd.grad(loss(net, alpha, valid[0], {n: v.detach() for n, v in virtual.items()}), [alpha])[0]

    state.a_optimizer.zero_grad()
    darts_second_order(state, train, valid, [xi])
    ours = state.alpha.grad
    scale = exact.abs().max()
    assert (ours - exact).abs().max() <= 1e-6 * scale
    # the Hessian term matters at this tolerance: without it the gradient is off by far more
    assert (first_order_only - exact).abs().max() > 1e-3 * scale


@pytest.mark.parametrize("algorithm", ["sotl-darts", "sovl-darts"])
def test_unrolled_block_sums_the_trajectorys_arch_gradients_restores_and_retrains(algorithm: str) -> None:
    cfg = _config(algorithm=algorithm, unroll_steps=3)
    state = _state(cfg)
    train, valid = _batches(3, seed=1), _batches(3, seed=2)
    lrs = [0.05, 0.04, 0.03]
    reference = copy.deepcopy(state)  # weights, alpha and both optimizers as before the block

    # independently: the trajectory w_1..w_3 with torch's SGD on a copy, the arch gradient of each step summed
    rollout = copy.deepcopy(reference)
    expected_grad = torch.zeros_like(reference.alpha)
    for t, batch in enumerate(train):
        arch_batch = batch if algorithm == "sotl-darts" else valid[t]
        step_grad = torch.autograd.grad(loss(rollout.net, rollout.alpha, arch_batch), [rollout.alpha])[0]
        if t == 0:
            first_step_only = step_grad
        expected_grad += step_grad
        rollout.w_optimizer.zero_grad()
        loss(rollout.net, rollout.alpha.detach(), batch).backward()
        for group in rollout.w_optimizer.param_groups:
            group["lr"] = lrs[t]
        rollout.w_optimizer.step()
    # one Adam step of alpha on the sum, then the saved weights trained on the same minibatches under the new alpha
    reference.alpha.grad = expected_grad.clone()
    reference.a_optimizer.step()
    for batch, lr in zip(train, lrs):
        reference.w_optimizer.zero_grad()
        loss(reference.net, reference.alpha.detach(), batch).backward()
        for group in reference.w_optimizer.param_groups:
            group["lr"] = lr
        reference.w_optimizer.step()

    search_block(state, algorithm, train, valid if algorithm == "sovl-darts" else [], lrs)

    torch.testing.assert_close(state.alpha.grad, expected_grad, rtol=1e-12, atol=1e-14)
    assert (expected_grad - first_step_only).abs().max() > 1e-3 * expected_grad.abs().max()  # the sum is not one step's
    torch.testing.assert_close(state.alpha.detach(), reference.alpha.detach(), rtol=1e-12, atol=1e-14)
    for (name, ours), theirs in zip(state.net.state_dict().items(), reference.net.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12, msg=name)
    for p, q in zip(state.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(state.w_optimizer.state[p]["momentum_buffer"], reference.w_optimizer.state[q]["momentum_buffer"],
                                   rtol=1e-10, atol=1e-12)
    # and not the weights the unrolling reached: the restore happened
    rolled = dict(rollout.net.named_parameters())
    assert max((p - rolled[n]).abs().max() for n, p in state.net.named_parameters()) > 1e-6


def test_darts_first_order_is_the_validation_gradient_then_a_weight_step() -> None:
    cfg = _config(algorithm="darts-1")
    state = _state(cfg)
    train, valid = _batches(1, seed=1), _batches(1, seed=2)
    reference = copy.deepcopy(state)
    reference.alpha.grad = torch.autograd.grad(loss(reference.net, reference.alpha, valid[0]), [reference.alpha])[0]
    reference.a_optimizer.step()
    reference.w_optimizer.zero_grad()
    loss(reference.net, reference.alpha.detach(), train[0]).backward()
    for group in reference.w_optimizer.param_groups:
        group["lr"] = 0.02
    reference.w_optimizer.step()

    search_block(state, "darts-1", train, valid, [0.02])

    torch.testing.assert_close(state.alpha.detach(), reference.alpha.detach(), rtol=1e-12, atol=1e-14)
    for ours, theirs in zip(state.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
