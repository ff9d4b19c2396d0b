"""Dense execution of a supernet update: every candidate op runs, the path picks by 0/1 weights.

The sparse update (:func:`harness.supernet.train.supernet_update`) runs only the ops of its paths, so
each update launches other kernels and cannot be captured as a CUDA graph; on a GPU a network this
small is then bound by Python and launch overhead. Here a path is a tensor ``weights[cell, edge, op]``
(``[n_cells, 6, 5]``, op axis in :data:`~harness.spaces.nb201.OPS` order) holding 1.0 where the
sparse forward runs ``op`` on ``edge`` of ``cell`` and 0.0 elsewhere, and every cell computes

    node_i = sum over edges k = (j -> i), in EDGES order, of sum over ops o != none, in OPS order,
             of weights[cell, k, o] * o(node_j)

(:func:`mixed_cell`: DARTS's mixed edge, Liu et al. 2019, with one-hot weights). Every update then
runs the same kernels, so the whole update (forward, backward, optimizer step, Reptile's inner and
outer steps) is captured once as a CUDA graph and replayed with new inputs (:class:`DenseUpdate`).

What equals what (``tests/test_supernet_dense.py`` checks each in float64 on the CPU):

* Forward values are the sparse forward's bit for bit (up to the sign of a zero): ``1 * y = y``,
  ``0 * y = 0`` and ``t + 0 = t``, and each node adds its non-zero terms in the sparse order.
  The 1.0s mark the *live* ops (:func:`~harness.supernet.model.live_edges`): an op the sparse
  forward skips has weight 0. An op fed by a node without signal sees zeros there and, with the
  default BN (no affine parameters, no running statistics), is skipped and maps them to zeros; with
  affine cell BNs it is live and outputs BN's shift, in both forwards. An op whose output is unused
  has weight 0. This holds while every op's output is finite (``0 * inf`` is NaN).
* Gradients: the sampled ops' gradients equal the sparse ones (to rounding: autograd may add a
  node's incoming gradients in another order, and the conv ops of a node share one ReLU here);
  every other weight gets exactly 0.
* BatchNorm: the stem's and the reduction blocks' running statistics move exactly as in the sparse
  forward (same modules, same inputs). Cells whose BNs keep running statistics are refused: every
  op would update its statistics, not only the sampled ones.
* The optimizer (:class:`FlatSupernetSGD`): the sparse path lets ``torch.optim.SGD`` skip weights
  whose gradient is None, i.e. weights never sampled yet, or (``update_unsampled = false``) not
  sampled in this step; here every weight has a gradient tensor, so the step is masked instead by
  the same rule, tracked on the device from the weights tensors: with ``update_unsampled`` a weight
  has a gradient from the first step in which its op runs on, without it only in the steps in which
  its op runs, and in a step with Metaprox's proximal term every weight has one (weights outside
  the cells run in every step). Momentum buffers start at zero, which gives torch's first
  step (``buf = d``) exactly. So the dense update equals the sparse one from the first update on,
  to rounding (the lr is a device tensor: ``w - lr * step`` rather than torch's ``add_(alpha=-lr)``;
  mean end points and momenta are summed in another order).

The cost: every cell runs all 4 non-``none`` ops on all 6 edges, about 5x the convolution FLOPs of
an average SPOS path (about 90 against 18 GFLOP per update of the C=16, N=5 network at batch 64,
forward and backward), so on a CPU the dense update is 3-4x slower (``benchmarks/supernet_speed.py``);
it pays on a GPU, where a network this small is bound by launches, not FLOPs, and the graph replays
the whole update in one launch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from harness.errors import HarnessError
from harness.spaces.nb201 import EDGES, N_NODES, OPS, check_ops
from harness.supernet.config import SupernetConfig, WSConfig
from harness.supernet.model import Cell, NB201Network, ReLUConvBN, live_edges
from harness.supernet.sampling import ALGORITHMS, Rollout
from harness.supernet.spaces.nb201 import Path201
from harness.supernet.train import rollout_backward


@lru_cache(maxsize=None)  # at most 2 x 15,625 entries
def _cell_weights(ops: tuple[str, ...], zeros_stay_zero: bool) -> np.ndarray:
    weights = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
    for k, (op, live) in enumerate(zip(check_ops(ops), live_edges(ops, zeros_stay_zero))):
        weights[k, OPS.index(op)] = float(live)
    weights.flags.writeable = False
    return weights


def path_weights(path: Path201, zeros_stay_zero: bool) -> np.ndarray:
    """``[n_cells, 6, 5]``: 1.0 where cell c of ``path`` runs op o on edge k in the sparse forward
    (the op is on the path and live: :func:`~harness.supernet.model.live_edges`), else 0.0."""
    return np.stack([_cell_weights(tuple(ops), zeros_stay_zero) for ops in path])


def update_weights(rollouts: Sequence[Rollout], zeros_stay_zero: bool) -> np.ndarray:
    """``[rollouts, paths, n_cells, 6, 5]``: :func:`path_weights` of every path of an update's rollouts."""
    if len({len(rollout) for rollout in rollouts}) != 1 or len({len(path) for rollout in rollouts for path in rollout}) != 1:
        raise HarnessError("a dense update takes rollouts of equally many paths, each of one 6-op tuple per cell; got "
                           f"paths per rollout {[len(r) for r in rollouts]}")
    return np.stack([np.stack([path_weights(path, zeros_stay_zero) for path in rollout]) for rollout in rollouts])


def check_dense(net: NB201Network, weights: torch.Tensor) -> None:
    """Raise unless ``net`` can run the dense forward of ``weights``."""
    if net.group is not None or net.candidates != (OPS,) * len(EDGES):
        raise HarnessError("a dense forward needs the supernet (every op on every edge), not a standalone arch or an arch group")
    expected = (net.shape.n_cells, len(EDGES), len(OPS))
    if tuple(weights.shape) != expected:
        raise HarnessError(f"dense path weights have shape [cells, edges, ops] = {list(expected)} here, got {list(weights.shape)}")
    if net.training and net.shape.bn_track_running_stats:
        raise HarnessError("a dense forward in training mode would move the running statistics of every cell op; it needs "
                           "network.bn_track_running_stats = false (device.dense_supernet = 'off' trains sparsely)")


def mixed_cell(cell: Cell, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The cell's output, every op weighted by ``weights[edge, op]`` (module docstring formula).

    The ReLU-Conv-BN ops of one source node share one ReLU of it (ReLU is exact, so the values are
    those of each op's own ReLU; it saves kernels). A node's sum starts from its first term and adds
    the others with ``addcmul``, which keeps the layout of the activations (channels-last)."""
    nodes = [x]
    relu: dict[int, torch.Tensor] = {}
    for node in range(1, N_NODES):
        total: torch.Tensor | None = None
        for k, (src, dst) in enumerate(EDGES):
            if dst != node:
                continue
            for op, module in cell.edges[k].items():
                if isinstance(module, ReLUConvBN):
                    if src not in relu:
                        relu[src] = module[0](nodes[src])
                    y = module[2](module[1](relu[src]))
                else:
                    y = module(nodes[src])
                w = weights[k, OPS.index(op)]
                total = y * w if total is None else torch.addcmul(total, y, w)
        assert total is not None
        nodes.append(total)
    return nodes[-1]


class FlatSupernetSGD:
    """``torch.optim.SGD`` (momentum, dampening 0, Nesterov or not, weight decay) for a supernet, on
    flat buffers, stepping only the weights that the sparse path would give a gradient.

    Every parameter becomes a view of ``values`` and its gradient a view of ``grads`` (backward
    accumulates into them in place), each starting on a 64-element boundary; the gaps are segments
    that nothing steps. Per segment the device holds ``has_grad`` (the sparse path's ``p.grad is not
    None``) and ``stepped`` (torch has a momentum buffer for it). A step with the live ops ``live``
    (``[n_cells * 6 * 5]`` 0/1, :meth:`step`) sets ``has_grad <- has_grad | live`` with
    ``update_unsampled`` (zeroed gradients are kept), else ``has_grad <- live``; weights outside the
    cells are live in every step. Then, where ``has_grad``: ``d = g + wd w``, ``b <- mu b + d``,
    ``w <- w - lr (d + mu b)`` (Nesterov) or ``w - lr b``, as torch's SGD; elsewhere nothing moves.
    ``b`` starts at 0, so the first step gives torch's ``b = d`` exactly.

    The state round-trips through the run's ``torch.optim.SGD`` (:meth:`write_back`), so checkpoints
    keep its state-dict format and a run can switch between dense and sparse updates."""

    ALIGN = 64  # elements

    def __init__(self, net: NB201Network, sn: SupernetConfig, optimizer: torch.optim.Optimizer):
        self.momentum, self.weight_decay, self.nesterov = sn.momentum, sn.weight_decay, sn.nesterov
        self.keep = sn.update_unsampled
        params = list(net.parameters())
        if [id(p) for p in optimizer.param_groups[0]["params"]] != [id(p) for p in params] or len(optimizer.param_groups) != 1:
            raise HarnessError("the optimizer must hold the supernet's parameters in one group, in order (make_optimizer)")
        n_slots = net.shape.n_cells * len(EDGES) * len(OPS)
        always, gap = n_slots, n_slots + 1  # slots of the weights outside cells and of the alignment gaps
        slot_of: dict[int, int] = {}
        cells = [layer for layer in net.layers if isinstance(layer, Cell)]
        for c, cell in enumerate(cells):
            for k, edge in enumerate(cell.edges):
                for op, module in edge.items():
                    for p in module.parameters():
                        slot_of[id(p)] = (c * len(EDGES) + k) * len(OPS) + OPS.index(op)
        lengths, slots, offset = [], [], 0
        self.params: list[tuple[nn.Parameter, int, int]] = []  # (parameter, start in the flat buffers, segment)
        for p in params:
            if not (p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)):
                raise HarnessError(f"parameter of shape {list(p.shape)} is not dense; cannot flatten it")
            gap_length = -offset % self.ALIGN
            lengths += [gap_length, p.numel()]
            slots += [gap, slot_of.get(id(p), always)]
            self.params.append((p, offset + gap_length, len(slots) - 1))
            offset += gap_length + p.numel()
        first = params[0]
        self.values = torch.zeros(offset, device=first.device, dtype=first.dtype)
        self.grads, self.buffer = torch.zeros_like(self.values), torch.zeros_like(self.values)
        device = first.device
        self.has_grad = torch.zeros(len(slots), dtype=torch.bool, device=device)
        self.stepped = torch.zeros(len(slots), dtype=torch.bool, device=device)
        has_grad, stepped = [False] * len(slots), [False] * len(slots)
        for p, start, segment in self.params:
            has_grad[segment] = p.grad is not None  # a resumed run: zeroed, not freed
            previous = optimizer.state.get(p, {}).get("momentum_buffer")
            stepped[segment] = previous is not None
            if previous is not None:
                self._view(self.buffer, p, start).copy_(previous)
            view = self._view(self.values, p, start)
            view.copy_(p.detach())
            p.data = view
            p.grad = self._view(self.grads, p, start)
        self.has_grad.copy_(torch.tensor(has_grad))
        self.stepped.copy_(torch.tensor(stepped))
        self.lengths = torch.tensor(lengths, device=device)
        self.slots = torch.tensor(slots, device=device)
        self.fixed = torch.tensor([1.0, 0.0], device=device)  # the values of the slots ``always`` and ``gap``
        self.every_op = torch.ones(n_slots, device=device)  # ``live`` of a step with a proximal term
        self.param_list = params

    @staticmethod
    def _view(flat: torch.Tensor, p: torch.Tensor, start: int) -> torch.Tensor:
        return flat.as_strided(p.shape, p.stride(), start)

    def step(self, live: torch.Tensor, lr: torch.Tensor) -> None:
        """One SGD step of the weights that have a gradient (class docstring); ``live``:
        ``[n_cells * 6 * 5]``, 1.0 for each (cell, edge, op) that ran in this step; ``lr``: 0-d."""
        now = torch.cat([live.to(self.fixed.dtype), self.fixed])[self.slots] > 0
        if self.keep:
            self.has_grad |= now
        else:
            self.has_grad.copy_(now)
        self.stepped |= self.has_grad
        active = torch.repeat_interleave(self.has_grad, self.lengths, output_size=self.values.numel())
        d = self.grads.add(self.values, alpha=self.weight_decay)
        self.buffer.copy_(torch.where(active, self.buffer.mul(self.momentum).add_(d), self.buffer))
        direction = d.add(self.buffer, alpha=self.momentum) if self.nesterov else self.buffer
        self.values.copy_(torch.where(active, self.values - lr * direction, self.values))

    def check_gradients_in_place(self) -> None:
        """Raise unless backward accumulated every gradient into ``grads`` (call after a backward)."""
        for p, _, _ in self.params:
            if p.grad is None or p.grad.untyped_storage().data_ptr() != self.grads.untyped_storage().data_ptr():
                raise HarnessError("a gradient was not accumulated into the flat buffer; this torch version replaces "
                                   ".grad tensors, which the dense supernet update relies on (device.dense_supernet = 'off')")

    def has_grad_list(self) -> list[bool]:
        """Per parameter, whether the sparse path would hold a gradient tensor for it (one host sync)."""
        flags = self.has_grad.tolist()
        return [flags[segment] for _, _, segment in self.params]

    def write_back(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        """Put the momentum buffers (of the weights stepped so far) and the last ``lr`` into the run's
        ``torch.optim.SGD``, as its own steps would have left them (one host sync)."""
        stepped = self.stepped.tolist()
        for p, start, segment in self.params:
            if self.momentum and stepped[segment]:
                optimizer.state[p] = {"momentum_buffer": self._view(self.buffer, p, start).clone()}
            else:
                optimizer.state.pop(p, None)
        for group in optimizer.param_groups:
            group["lr"] = lr


class DenseUpdate:
    """The update of ``supernet.algorithm`` (:func:`harness.supernet.train.supernet_update`'s
    semantics) on dense paths, from static buffers so that it can be captured as a CUDA graph.

    ``update(x, y, weights, lr)`` copies the minibatch, the update's path weights
    (``[rollouts, paths, n_cells, 6, 5]``, :func:`update_weights`) and the lr into static tensors,
    then runs :meth:`_body`, which reads only those: zero the gradients, each path's forward and
    backward (:func:`~harness.supernet.train.rollout_backward`, the mean loss of a rollout), the
    proximal term, gradient clipping, :class:`FlatSupernetSGD`'s step, and for the Reptile-style
    algorithms every inner step of every rollout and the outer step ``w <- w0 + meta_lr (mean end -
    w0)`` with the momentum buffers averaged (:func:`~harness.supernet.train.meta_update`). On CUDA
    with ``device.cuda_graphs``, after ``WARMUP`` eager updates on a side stream (cuDNN autotuning,
    lazy initialisation), the body is captured once and every later update is one graph replay.
    """

    WARMUP = 3

    def __init__(self, net: NB201Network, cfg: WSConfig, optimizer: torch.optim.Optimizer):
        self.net, self.cfg = net, cfg
        self.algorithm = ALGORITHMS[cfg.supernet.algorithm]
        self.sgd = FlatSupernetSGD(net, cfg.supernet, optimizer)
        device = self.sgd.values.device
        self.lr = torch.zeros((), dtype=self.sgd.values.dtype, device=device)
        self.static: dict[str, torch.Tensor] = {}
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None
        self.use_graph = self.cuda and cfg.device.cuda_graphs
        self.graph: torch.cuda.CUDAGraph | None = None
        self.updates = 0

    def weights(self, rollouts: Sequence[Rollout]) -> np.ndarray:
        """The update's path weights (:func:`update_weights` under this network's BN setting)."""
        return update_weights(rollouts, self.net.zeros_stay_zero)

    def update(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One update; returns its loss (its first step's, mean over paths and rollouts) and its first
        step's gradient norm before clipping (0-d device tensors, as ``supernet_update`` returns)."""
        batch = {"x": x, "y": y, "weights": weights.to(self.sgd.values.dtype)}
        if not self.static:
            self.static = {name: torch.empty_like(tensor) for name, tensor in batch.items()}
        for name, tensor in batch.items():
            if tensor.shape != self.static[name].shape:
                raise HarnessError(f"a dense update's {name} has the fixed shape {list(self.static[name].shape)} "
                                   f"(captured once per run); got {list(tensor.shape)}")
            self.static[name].copy_(tensor)
        self.lr.fill_(lr)
        if self.use_graph and self.graph is None and self.updates == self.WARMUP:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"):
                self._body()
        if self.graph is not None:
            self.graph.replay()
        elif self.stream is not None:  # eager on CUDA: on the side stream that capture will use
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                self._body()
            torch.cuda.current_stream().wait_stream(self.stream)
        else:
            self._body()
        if self.updates == 0:
            self.sgd.check_gradients_in_place()
        self.updates += 1
        return self.static["loss"].clone(), self.static["norm"].clone()

    def _step(self, paths: torch.Tensor, anchor: torch.Tensor | None, prox_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`~harness.supernet.train.optimizer_step` on the dense paths ``[paths, n_cells, 6, 5]``."""
        sgd, clip = self.sgd, self.cfg.supernet.grad_clip
        sgd.grads.zero_()
        loss = rollout_backward(self.net, self.static["x"], self.static["y"], paths, self.cfg)
        if prox_lambda:
            assert anchor is not None, "a proximal term needs the weights it pulls towards"
            sgd.grads.add_((sgd.values - anchor).mul_(prox_lambda))
        norm = torch.nn.utils.clip_grad_norm_(sgd.param_list, clip if clip is not None else math.inf)
        sgd.step(sgd.every_op if prox_lambda else paths.amax(0).flatten(), self.lr)
        return loss, norm

    def _body(self) -> None:
        """The whole update, reading only the static tensors (capturable)."""
        sgd, algorithm, weights = self.sgd, self.algorithm, self.static["weights"]
        if not algorithm.is_meta:
            self.static["loss"], self.static["norm"] = self._step(weights[0], None, 0.0)
            return
        rollouts = weights.shape[0]
        anchor = sgd.values.clone()
        several = rollouts > 1
        if several:
            start_buffer, start_stepped = sgd.buffer.clone(), sgd.stepped.clone()
            end_sum, buffer_sum, stepped_any = torch.zeros_like(sgd.values), torch.zeros_like(sgd.buffer), torch.zeros_like(sgd.stepped)
        losses, first_norm = [], None
        for r in range(rollouts):
            if r:
                sgd.values.copy_(anchor)
                sgd.buffer.copy_(start_buffer)
                sgd.stepped.copy_(start_stepped)
            for k in range(algorithm.inner_steps):
                loss, norm = self._step(weights[r], anchor, algorithm.prox_lambda)
                if k == 0:
                    losses.append(loss)
                    first_norm = norm if first_norm is None else first_norm
            if several:
                end_sum += sgd.values
                buffer_sum += sgd.buffer
                stepped_any |= sgd.stepped
        end = end_sum / rollouts if several else sgd.values
        sgd.values.copy_(torch.lerp(anchor, end, self.cfg.supernet.meta_lr))  # weight 1 gives ``end`` exactly
        if several:
            sgd.buffer.copy_(buffer_sum / rollouts)
            sgd.stepped.copy_(stepped_any)
        assert first_norm is not None
        self.static["loss"], self.static["norm"] = torch.stack(losses).mean(), first_norm

    def has_grad(self) -> list[bool]:
        return self.sgd.has_grad_list()

    def write_back(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        self.sgd.write_back(optimizer, lr)
