"""The architecture step of each differentiable search algorithm, and the one block they share.

The network is the search space's mixed-op network (:mod:`harness.search.spaces`): every cell computes
the mixed edge

    node_i = sum over edges k = (j -> i) of sum over ops o of W[k, o] * o(node_j)

with path weights ``W`` of the architecture weights' shape (``none`` outputs zeros, so it enters
only through the weights): on NB201 one ``[6, 5]`` matrix shared by all cells, in the DARTS space one
``[14, ops]`` block for the normal cells and one for the reduction cells; on NAS-Bench-1Shot1 the rows of
the official model's op, output and input weights packed into one ``[rows, max length]`` array, each row
padded after its real entries (:mod:`harness.search.spaces`). The algorithm's *mixing* makes ``W`` of the
architecture weights ``alpha`` (:data:`MIXINGS`, over the last axis, each row over its real entries:
the space's ``alpha_mask``, ``SearchState.mask``, None where every entry is real; padding gets weight
exactly 0 and gradient exactly 0, so under Adam or the exponentiated gradient it stays 0; which algorithm
mixes how: :data:`harness.search.config.MIXING`):

* ``softmax`` (the DARTS family): ``W = softmax(alpha)`` per edge (Liu et al. 2019, Eq. 2), over a row's
  real entries (padding set to ``-inf`` first);
* ``dirichlet`` (DrNAS, SoTL-DrNAS): ``W ~ Dir(beta)`` per edge, ``beta = elu(alpha) + 1`` the
  Dirichlet concentrations, one fresh sample for every evaluation of ``L`` (every forward pass), the
  same for all cells (Chen et al. 2021; xiangning-chen/DrNAS ``utils.py``
  ``process_step_vector`` with ``method='dirichlet'``, called once per forward by ``TinyNetwork.forward``
  in ``201-space/search_model.py``). The sample is reparameterised (``Dirichlet.rsample``, as their
  code: torch's pathwise derivative of Jankowiak & Obermeyer 2018, the one the paper relies on), so
  ``dL/d alpha`` flows through it: the gradient of one sample of ``E_{W ~ Dir(beta)} L``. Torch's sampler takes no generator, so each
  sample is drawn on the CPU by torch's default generator seeded with the next integer of
  ``state.draws`` (the search's stream of seed and epoch) inside ``torch.random.fork_rng``: the
  caller's RNG is untouched and a resumed search draws the very same samples. With a mask, the rows are
  grouped by which entries are real (groups in order of their first row) and each group's real entries
  drawn by one ``rsample`` after the other, under the same seed; without one (or with a mask of one
  group, all real) it is a single draw of the whole array, the same numbers;
* ``simplex`` (GAEA): ``W = alpha`` itself, each row of ``alpha`` on the probability simplex (Li et
  al. 2021; liamcli/gaea_release: ``cnn/search_spaces/nasbench_201/model_search.py`` hands its
  ``alphas`` to the cells as they are, ``forward_edge_weights`` with edge weights fixed at 1).

``L(w, alpha; B)`` is the mean cross-entropy of minibatch ``B`` in training mode under the path weights
that ``alpha`` mixes (:meth:`SearchState.loss`).

Every algorithm runs the same *block* (:func:`search_block`) on ``n`` consecutive training
minibatches ``B_1..B_n`` (n = T for the unrolled algorithms, else 1) with their learning rates
``lr_1..lr_n``:

1. the architecture gradient ``g`` of the algorithm (below) into ``alpha.grad``;
2. one step of the architecture optimizer: Adam (DARTS family, DrNAS; DrNAS's regulariser is Adam's
   weight decay, :mod:`harness.search.config`), or GAEA's exponentiated gradient
   (:class:`ExponentiatedGradient`);
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
* ``drnas`` (Chen et al. 2021; xiangning-chen/DrNAS ``201-space/train_search.py``, ``--method
  dirichlet``): ``darts-1``'s gradient under Dirichlet mixing, ``g = d/d alpha L(w, W; V_1)`` with
  ``W ~ Dir(elu(alpha) + 1)`` reparameterised, first order (``architect.py``: ``unrolled`` is off by
  default); the weight step of step 3 draws a sample of its own, as their ``train()`` calls the model
  again.
* ``sotl-drnas`` (thesis Sec. 4.3; the thesis author's fork Mirofil/DrNAS,
  ``201-space/train_search_higher.py`` with ``201-space/sotl_utils.py``; Mirofil/AutoDL-Projects holds
  no Dirichlet code, only a DARTS-space genotype ``SOTL_DRNAS1``): ``sotl-darts``'s unrolled block
  under Dirichlet mixing, ``g = sum_t d/d alpha L(w_t, W_t; B_t)``: every rollout step t draws its
  own ``W_t`` (its one forward gives both the weight and the architecture gradient, as their
  ``diffopt.step``), and each retraining step of step 3 its own again (their second loop calls
  ``network`` afresh); the gradients are summed (``higher_reduction=sum``), the rollout runs on a copy
  (``higher_loop=bilevel``), T = ``inner_steps=100``.
* ``gaea-darts`` (Li et al. 2021, GAEA DARTS; Li's thesis Sec. 6.5.3; liamcli/gaea_release
  ``cnn/architect/architect_edarts.py``): ``darts-1``'s gradient under simplex mixing,
  ``g = d/d alpha L(w, alpha; V_1)`` first order (``ArchitectEDARTS.step`` backpropagates the
  validation loss at the current weights and never unrolls; ``search.single_level=false`` is the
  bilevel variant), then the exponentiated-gradient step of :class:`ExponentiatedGradient`.
* ``gaea-erm`` (GAEA DARTS single-level, the ERM row of Li's Table 6.4; ``search.single_level=true``): the same
  gradient and step on an architecture minibatch ``V_1`` that is a *training* minibatch, the training images drawn
  in an order of their own (the search's validation-order stream; their code's ``create_nasbench_201_data_queues``
  makes its architecture queue a second, independently shuffled loader over the training data). So it is
  ``gaea-darts`` whose validation split is the training split.

The T-th unrolled weight step is not taken: no gradient is read at ``w_{T+1}``.

**Not implemented** (differences from the published protocols, with their reasons):

* DrNAS's progressive learning: ``201-space/train_search_progressive.py`` (partial channels
  ``k = 4`` then ``2``, the ops of each edge pruned to the 3 largest after 50 of 100 epochs) is the
  repository's second NB201 script (its README: "With Progressively Pruning"); the first,
  ``train_search.py``, runs whole channels (``k = 1``) and all ops, and is the one here. The thesis
  fork's SoTL-DrNAS script is built on the progressive one (two stages of 50 epochs, ``k = 4`` then
  ``2``, pruning to 3 ops) and updates alpha only from the 10th epoch of each stage (``if epoch >= 10``
  in ``train_higher``, the epoch counted within the stage); neither the stages nor that warm-up are here.
* DrNAS's KL regulariser (``reg_type='kl'``, ``reg_scale * KL(Dir(beta) || Dir(1))`` added to the
  architecture loss) is not implemented: their default, and the thesis fork's, is ``reg_type='l2'``.
* GAEA's entropic regulariser ``arch_weight_decay * sum alpha log(n alpha)`` is not implemented: their
  NB201 config (``configs/cnn/search_method/edarts/method_edarts_space_nasbench201.yaml``) sets
  ``arch_weight_decay: 0.0``. GAEA's single-level variant reads CIFAR-10's whole training set (50,000 images); ``gaea-erm``
  reads the training half of the split (25,000) as every algorithm here that reads no validation data, so that none
  gets more data than DARTS.
* The weight-training settings are the search's shared ones (the thesis's Table B.1, config
  docstring) for every algorithm. DrNAS's ``train_search.py`` has 100 epochs, weight decay 3e-4, no
  Nesterov momentum, weight gradients clipped to norm 5 and BN running statistics; GAEA's NB201 mode
  (``configs/cnn/mode/search_nasbench201.yaml`` and ``config.yaml``) has 25 epochs of a cosine schedule
  laid over 50 (``run.scheduler_epochs: 50``), stepped per epoch, weight decay 3e-4, clipping to 5, 24
  initial channels (Li's thesis states 16) and BN running statistics. Epochs and weight decay are
  config keys; the search clips no gradient (the thesis code clips none) and its cells' BN keeps no
  running statistics (the mixed-op network runs every op).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from harness.search.spaces import SEARCH_SPACES, SearchSpace

Batch = tuple[torch.Tensor, torch.Tensor]  # images, labels
# (alpha, draws, mask) -> path weights W, alpha's shape; mask: alpha's real entries (bool), None: all
Mixing = Callable[[torch.Tensor, np.random.Generator, "torch.Tensor | None"], torch.Tensor]


def masked_softmax(alpha: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``softmax(alpha)`` over the last axis, over the real entries of ``mask`` (padding: weight 0, gradient 0)."""
    return torch.softmax(alpha if mask is None else alpha.masked_fill(~mask, float("-inf")), dim=-1)


def softmax_weights(alpha: torch.Tensor, draws: np.random.Generator, mask: torch.Tensor | None = None) -> torch.Tensor:
    """DARTS's path weights ``softmax(alpha)`` per edge, over its real entries (``draws`` unused)."""
    return masked_softmax(alpha, mask)


def dirichlet_weights(alpha: torch.Tensor, draws: np.random.Generator, mask: torch.Tensor | None = None) -> torch.Tensor:
    """DrNAS's path weights: one reparameterised sample ``W ~ Dir(elu(alpha) + 1)`` per edge over its real
    entries (padding 0), drawn by torch's CPU generator seeded with ``draws``'s next integer inside
    ``torch.random.fork_rng`` (module docstring), returned on alpha's device."""
    seed = int(draws.integers(2**63))
    concentration = (torch.nn.functional.elu(alpha) + 1).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if mask is None:
            sample = torch.distributions.Dirichlet(concentration).rsample()
        else:
            rows = concentration.reshape(-1, concentration.shape[-1])
            groups: dict[tuple[bool, ...], list[int]] = {}  # which entries are real -> its rows, in row order
            for r, pattern in enumerate(mask.cpu().reshape(rows.shape).tolist()):
                groups.setdefault(tuple(pattern), []).append(r)
            sample = torch.zeros_like(rows)
            for pattern, members in groups.items():
                index = torch.tensor(members)[:, None], torch.tensor([j for j, real in enumerate(pattern) if real])[None, :]
                sample = sample.index_put(index, torch.distributions.Dirichlet(rows[index]).rsample())
            sample = sample.reshape(concentration.shape)
    return sample.to(alpha.device)


def simplex_weights(alpha: torch.Tensor, draws: np.random.Generator, mask: torch.Tensor | None = None) -> torch.Tensor:
    """GAEA's path weights: ``alpha`` itself, each edge's row on the simplex of its real entries, padding 0
    (``draws`` and ``mask`` unused)."""
    return alpha


# mixing name (harness.search.config.MIXING) -> how alpha becomes the path weights (module docstring)
MIXINGS: dict[str, Mixing] = {"softmax": softmax_weights, "dirichlet": dirichlet_weights, "simplex": simplex_weights}
# mixing name -> the op weights an arch is derived from (harness.search.derive), deterministic, from
# (alpha, mask): softmax(alpha) over the real entries for the DARTS family and for DrNAS (DrNAS's
# genotype() reads softmax(alpha): DARTS-space/model_search.py, process_step_matrix(..., 'softmax', ...)),
# alpha itself for GAEA
DERIVATION: dict[str, Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]] = {
    "softmax": masked_softmax,
    "dirichlet": masked_softmax,
    "simplex": lambda alpha, mask: alpha,
}


def mixed_loss(space: SearchSpace, net: torch.nn.Module, weights: torch.Tensor, batch: Batch,
               params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The mean cross-entropy of ``batch`` by ``space``'s mixed-op network ``net`` with path weights
    ``weights`` (alpha's shape), at its own weights or ``params``."""
    x, y = batch
    return torch.nn.functional.cross_entropy(space.logits(net, x, weights, params), y)


def loss(net: torch.nn.Module, alpha: torch.Tensor, batch: Batch, params: dict[str, torch.Tensor] | None = None,
         space: SearchSpace = SEARCH_SPACES["nb201"]) -> torch.Tensor:
    """The DARTS family's ``L(w, alpha; B)``: :func:`mixed_loss` under ``softmax(alpha)``."""
    return mixed_loss(space, net, torch.softmax(alpha, dim=-1), batch, params)


@dataclass
class SearchState:
    """What a search changes: the network's weights (and BN statistics), alpha, both optimizers; and
    how alpha mixes the ops with the generator of the mixing's random draws (the loop sets one per
    epoch) and alpha's real entries (``mask``, the space's ``alpha_mask``; None: all)."""

    space: SearchSpace
    net: torch.nn.Module  # the space's mixed-op network
    alpha: torch.Tensor  # the space's alpha_shape, requires grad
    w_optimizer: torch.optim.SGD
    a_optimizer: torch.optim.Optimizer  # Adam, or ExponentiatedGradient for GAEA
    mixing: Mixing
    draws: np.random.Generator
    hessian_r: float = 0.01
    mask: torch.Tensor | None = None  # bool, alpha's shape and device

    def loss(self, batch: Batch, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``L(w, alpha; B)`` under this algorithm's mixing, at the network's weights or ``params``."""
        return mixed_loss(self.space, self.net, self.mixing(self.alpha, self.draws, self.mask), batch, params)


class ExponentiatedGradient(torch.optim.Optimizer):
    """GAEA's architecture step: exponentiated gradient on the simplex of each row (last axis),

        alpha <- a / sum(a),   a = max(alpha * exp(-lr g), floor) where alpha > 0, else 0,

    mirror descent with the entropy as mirror map (Li et al. 2021; liamcli/gaea_release
    ``cnn/architect/architect_edarts.py``, ``ArchitectEDARTS.step``: ``p.data.mul_(torch.exp(-lr *
    p.grad.data))`` then ``normalize``, which clamps at ``min_v=1e-5`` and divides by the row sum). An
    op of weight 0 (an excluded op) keeps 0, as it has no entry in their excluded-op search space; the
    floor holds the others off 0. It keeps no state beyond its settings; ``state_dict`` and
    ``load_state_dict`` are torch's."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, floor: float = 1e-5) -> None:
        super().__init__(params, {"lr": lr, "floor": floor})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                a = (p * torch.exp(-group["lr"] * p.grad)).clamp(min=group["floor"])
                a = torch.where(p > 0, a, torch.zeros_like(a))
                p.copy_(a / a.sum(dim=-1, keepdim=True))


def weight_step(state: SearchState, batch: Batch, lr: float) -> torch.Tensor:
    """One SGD step of the weights on ``L(w, alpha; batch)`` at ``lr`` (alpha's gradient untouched);
    returns that loss (detached)."""
    params = list(state.net.parameters())
    value = state.loss(batch)
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
    value = state.loss(valid[0])
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
    grads = torch.autograd.grad(state.loss(train[0]), params)
    with torch.no_grad():
        virtual = {}
        for name, p, g in zip(names, params, grads):
            buffer = state.w_optimizer.state.get(p, {}).get("momentum_buffer")
            moment = torch.zeros_like(p) if buffer is None else mu * buffer
            virtual[name] = (p - xi * (moment + g + wd * p)).requires_grad_()
    value = state.loss(valid[0], virtual)
    *v, g_alpha = torch.autograd.grad(value, [*virtual.values(), alpha])
    with torch.no_grad():
        eps = state.hessian_r / torch.cat([t.reshape(-1) for t in v]).norm()
    g_plus, g_minus = (
        torch.autograd.grad(state.loss(train[0], {n: p.detach() + sign * eps * t for n, p, t in zip(names, params, v)}), [alpha])[0]
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
            train_loss = state.loss(batch)
            if arch_on_valid:
                weight_grads = torch.autograd.grad(train_loss, params)
                arch_loss = state.loss(valid[t])
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
_sotl = _unrolled(arch_on_valid=False)
# name -> its architecture gradient (adds into alpha.grad; returns the losses it differentiated); the
# algorithms differ beyond it only in their mixing and architecture optimizer (module docstring)
ARCH_GRADIENTS: dict[str, ArchGradient] = {
    "darts-1": darts_first_order,
    "darts-2": darts_second_order,
    "sotl-darts": _sotl,
    "sovl-darts": _unrolled(arch_on_valid=True),
    "drnas": darts_first_order,
    "sotl-drnas": _sotl,
    "gaea-darts": darts_first_order,
    "gaea-erm": darts_first_order,  # on a training minibatch (the loop's architecture minibatches)
}


def search_block(state: SearchState, algorithm: str, train: Sequence[Batch], valid: Sequence[Batch],
                 lrs: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """One block (module docstring): the architecture gradient of ``algorithm`` on the training
    minibatches ``train`` (and architecture minibatches ``valid``: validation ones, training ones of GAEA ERM's own order;
    SoTL-DARTS and SoTL-DrNAS take none),
    one step of the architecture optimizer, then one SGD step per training minibatch at ``lrs``. Returns the mean of the losses the
    architecture gradient differentiated and the mean training loss of the weight steps (detached)."""
    state.a_optimizer.zero_grad(set_to_none=True)
    arch_losses = ARCH_GRADIENTS[algorithm](state, train, valid, lrs)
    state.a_optimizer.step()
    train_losses = [weight_step(state, batch, lr) for batch, lr in zip(train, lrs)]
    return torch.stack(arch_losses).mean(), torch.stack(train_losses).mean()
