"""The architecture step of each differentiable search algorithm on NB201, and the one block they share.

The network is the supernet of :mod:`harness.supernet.model` run dense
(:func:`harness.supernet.dense.mixed_cell`): every cell computes DARTS's mixed edge

    node_i = sum over edges k = (j -> i) of sum over ops o of softmax(alpha)[k, o] * o(node_j)

with one ``alpha`` ``[6, 5]`` shared by all cells (``none`` outputs zeros, so it enters only through
the softmax), i.e. the dense path weights ``softmax(alpha)`` repeated for every cell.
``L(w, alpha; B)`` is the mean cross-entropy of minibatch ``B`` in training mode.

Every algorithm runs the same *block* (:func:`search_block`) on ``n`` consecutive training
minibatches ``B_1..B_n`` (n = T for the unrolled algorithms, else 1) with their learning rates
``lr_1..lr_n``:

1. the architecture gradient ``g`` of the algorithm (below) into ``alpha.grad``;
2. one Adam step of ``alpha``;
3. ``n`` SGD steps of the weights, step t on ``L(w, alpha; B_t)`` at lr ``lr_t`` under the new alpha.

The architecture gradients (weight optimizer: SGD with momentum mu and weight decay lambda at lr xi):

* ``darts-1`` (Liu et al. 2019, Alg. 1, first order): ``g = d/d alpha L(w, alpha; V_1)`` on the
  validation minibatch ``V_1``.
* ``darts-2`` (second order, Liu et al. 2019, Eqs. 6-8): the virtual step
  ``w' = w - xi (mu b + dL(w, alpha; B_1)/dw + lambda w)`` (``b``: the momentum buffer, 0 before the
  first step; the thesis code's ``backward_step_unrolled_darts``, ``lib/utils/train_loop.py``), then
  ``g = d/d alpha L(w', alpha; V_1) - xi (d/d alpha L(w+, alpha; B_1) - d/d alpha L(w-, alpha; B_1)) / (2 eps)``,
  ``w+- = w +- eps v``, ``v = dL(w', alpha; V_1)/dw'``, ``eps = r / ||v||`` (r = 0.01): the
  central-difference approximation of ``xi d^2 L / (d alpha dw) v``, the second-order term of
  ``d/d alpha L(w - xi dL/dw, alpha)``.
* ``sotl-darts`` (thesis Alg. 3, first order): from ``w_1 = w``, for t = 1..T the gradient
  ``d/d alpha L(w_t, alpha; B_t)`` is *added* to ``alpha.grad`` (never zeroed in between) and
  ``w_{t+1}`` is one SGD step from ``w_t`` on ``B_t``; so ``g = sum_t d/d alpha L(w_t, alpha; B_t)``,
  the first-order gradient of the sum of training losses (SoTL) along the trajectory (the code's
  ``higher_method=sotl``, ``higher_order=first``, ``higher_reduction=sum``). Then the weights, the
  BN running statistics and the SGD state saved before the unrolling are restored (the code's
  ``higher_loop=bilevel``: the rollout runs on a copy), so step 3 trains from the saved weights on the
  same minibatches under the new alpha (the code's ``train_real``). No validation data is read.
* ``sovl-darts``: the same unrolling, adding ``d/d alpha L(w_t, alpha; V_t)`` on validation minibatch
  ``V_t`` instead (the code's ``higher_method=val_multiple``, first order).

The T-th unrolled weight step is not taken: no gradient is read at ``w_{T+1}``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call

from harness.supernet.model import NB201Network

Batch = tuple[torch.Tensor, torch.Tensor]  # images, labels


@dataclass
class SearchState:
    """What a search changes: the network's weights (and BN statistics), alpha, both optimizers."""

    net: NB201Network
    alpha: torch.Tensor  # [6, 5], requires grad
    w_optimizer: torch.optim.SGD
    a_optimizer: torch.optim.Adam
    hessian_r: float = 0.01


def loss(net: NB201Network, alpha: torch.Tensor, batch: Batch, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``L(w, alpha; B)``: the mixed-op network's mean cross-entropy, at its own weights or ``params``."""
    x, y = batch
    mix = torch.softmax(alpha, dim=-1).expand(net.shape.n_cells, *alpha.shape)
    logits = net(x, mix) if params is None else functional_call(net, params, (x, mix))
    return torch.nn.functional.cross_entropy(logits, y)


def weight_step(state: SearchState, batch: Batch, lr: float) -> torch.Tensor:
    """One SGD step of the weights on ``L(w, alpha; batch)`` at ``lr`` (alpha's gradient untouched);
    returns that loss (detached)."""
    params = list(state.net.parameters())
    value = loss(state.net, state.alpha, batch)
    for p, g in zip(params, torch.autograd.grad(value, params)):
        p.grad = g
    for group in state.w_optimizer.param_groups:
        group["lr"] = lr
    state.w_optimizer.step()
    return value.detach()


def _add_arch_grad(state: SearchState, g: torch.Tensor) -> None:
    state.alpha.grad = g.clone() if state.alpha.grad is None else state.alpha.grad + g


def darts_first_order(state: SearchState, train: Sequence[Batch], valid: Sequence[Batch], lrs: Sequence[float]) -> list[torch.Tensor]:
    """``d/d alpha L(w, alpha; V_1)`` (module docstring); returns the validation loss."""
    value = loss(state.net, state.alpha, valid[0])
    (g,) = torch.autograd.grad(value, [state.alpha])
    _add_arch_grad(state, g)
    return [value.detach()]


def darts_second_order(state: SearchState, train: Sequence[Batch], valid: Sequence[Batch], lrs: Sequence[float]) -> list[torch.Tensor]:
    """DARTS's unrolled gradient with the finite-difference Hessian-vector product (module
    docstring); returns the validation loss at the virtual weights ``w'``."""
    net, alpha, xi = state.net, state.alpha, lrs[0]
    names, params = zip(*net.named_parameters())
    group = state.w_optimizer.param_groups[0]
    mu, wd = group["momentum"], group["weight_decay"]
    grads = torch.autograd.grad(loss(net, alpha, train[0]), params)
    with torch.no_grad():
        virtual = {}
        for name, p, g in zip(names, params, grads):
            buffer = state.w_optimizer.state.get(p, {}).get("momentum_buffer")
            moment = torch.zeros_like(p) if buffer is None else mu * buffer
            virtual[name] = (p - xi * (moment + g + wd * p)).requires_grad_()
    value = loss(net, alpha, valid[0], virtual)
    *v, g_alpha = torch.autograd.grad(value, [*virtual.values(), alpha])
    with torch.no_grad():
        eps = state.hessian_r / torch.cat([t.reshape(-1) for t in v]).norm()
    g_plus, g_minus = (
        torch.autograd.grad(loss(net, alpha, train[0], {n: p.detach() + sign * eps * t for n, p, t in zip(names, params, v)}), [alpha])[0]
        for sign in (1.0, -1.0)
    )
    _add_arch_grad(state, g_alpha - xi * (g_plus - g_minus) / (2 * eps))
    return [value.detach()]


def _unrolled(arch_on_valid: bool) -> ArchGradient:
    def gradient(state: SearchState, train: Sequence[Batch], valid: Sequence[Batch], lrs: Sequence[float]) -> list[torch.Tensor]:
        net, alpha = state.net, state.alpha
        params = list(net.parameters())
        saved_net = {name: t.clone() for name, t in net.state_dict().items()}
        saved_optimizer = copy.deepcopy(state.w_optimizer.state_dict())
        losses = []
        for t, batch in enumerate(train):
            train_loss = loss(net, alpha, batch)
            if arch_on_valid:
                weight_grads = torch.autograd.grad(train_loss, params)
                arch_loss = loss(net, alpha, valid[t])
                (g,) = torch.autograd.grad(arch_loss, [alpha])
            else:  # one backward gives both: SoTL's gradient is the training loss's
                *weight_grads, g = torch.autograd.grad(train_loss, [*params, alpha])
                arch_loss = train_loss
            _add_arch_grad(state, g)
            losses.append(arch_loss.detach())
            if t + 1 < len(train):
                for p, grad in zip(params, weight_grads):
                    p.grad = grad
                for group in state.w_optimizer.param_groups:
                    group["lr"] = lrs[t]
                state.w_optimizer.step()
        net.load_state_dict(saved_net)
        state.w_optimizer.load_state_dict(saved_optimizer)
        return losses

    return gradient


ArchGradient = Callable[[SearchState, Sequence[Batch], Sequence[Batch], Sequence[float]], list[torch.Tensor]]
# name -> its architecture gradient (adds into alpha.grad; returns the losses it differentiated)
ARCH_GRADIENTS: dict[str, ArchGradient] = {
    "darts-1": darts_first_order,
    "darts-2": darts_second_order,
    "sotl-darts": _unrolled(arch_on_valid=False),
    "sovl-darts": _unrolled(arch_on_valid=True),
}


def search_block(state: SearchState, algorithm: str, train: Sequence[Batch], valid: Sequence[Batch],
                 lrs: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """One block (module docstring): the architecture gradient of ``algorithm`` on the training
    minibatches ``train`` (and validation minibatches ``valid``; SoTL-DARTS takes none), one Adam step
    of alpha, then one SGD step per training minibatch at ``lrs``. Returns the mean of the losses the
    architecture gradient differentiated and the mean training loss of the weight steps (detached)."""
    state.a_optimizer.zero_grad(set_to_none=True)
    arch_losses = ARCH_GRADIENTS[algorithm](state, train, valid, lrs)
    state.a_optimizer.step()
    train_losses = [weight_step(state, batch, lr) for batch, lr in zip(train, lrs)]
    return torch.stack(arch_losses).mean(), torch.stack(train_losses).mean()
