"""Inherit-and-finetune: each sampled arch takes its supernet weights and trains F more minibatches.

Per arch (thesis Sec. 4.2): materialise the arch from the supernet (an exact copy of its weights and
of its BNs' running statistics, where they keep them; the thesis code finetunes a deep copy of
the whole supernet fixed to the arch, which computes the same), then run F SGD steps (Nesterov
momentum, weight decay, constant lr :attr:`WSConfig.finetune_lr`) on training minibatches, in train
mode. Row ``t`` (0..F) of the arch's log describes the network after ``t`` updates:

==============  ===========================================================================
column          value at row t
==============  ===========================================================================
train_loss      loss of the minibatch of update t (computed in its forward pass); NaN at t=0.
                SoTL(t) = sum of train_loss over rows 1..t.
tl_mini         loss of one training minibatch at the weights after t updates, in train mode
                (TLMini); it is the next update's minibatch, so tl_mini[t] == train_loss[t + 1].
                Row F uses one extra minibatch, forward only.
val_acc_mini    accuracy (%) on one validation minibatch in eval mode (ValAccMini), a fresh one
                per row; the thesis code measures it after the first update (row 1).
val_acc         accuracy (%) on the whole validation split in eval mode (ValAcc) at t = 0 and
                every ``eval_every`` steps; NaN elsewhere (not measured).
val_loss        mean loss on the whole validation split, where val_acc is measured.
grad_l1         ||g_t||_1, L1 norm of update t's raw minibatch gradient (before clipping;
                weight decay excluded); NaN at t=0. SoGN(t) = sum of grad_l1 over rows 1..t.
grad_l2         ||g_t||_2, the same gradient's L2 norm; SoGN-L2(t) = sum over rows 1..t.
grad_sum_l1     ||g_1 + ... + g_t||_1, L1 norm of the summed gradients (SoG(t)); 0 at t=0.
==============  ===========================================================================

Eval mode matters only for the BNs that keep running statistics, which then use them instead of the
batch's (there is no dropout). Under each space's defaults those are NB201's stem and reduction
blocks (:mod:`harness.supernet.model`) and the DARTS network's stem
(:mod:`harness.supernet.darts_model`), whose cells' BNs keep none, and every BN of the
NAS-Bench-1Shot1 one-shot model (:mod:`harness.supernet.nb1shot1_model`, as NB101's ConvBnRelu);
``network.bn_track_running_stats`` and ``outer_bn_running_stats`` change which.

The data streams depend only on ``arch_seed``: every arch is finetuned on the same minibatches
(images, order, crops and flips) and validated on the same validation minibatches, as the thesis
code's fixed loader order does, so archs differ only in what they are; every supernet and algorithm
sees the same data too, whichever group an arch is in. Archs are finetuned in groups of
``device.archs_per_group``, side by side in one network (the space's
:meth:`~harness.supernet.spaces.base.Space.materialise_group`; NB201's is
:func:`~harness.supernet.model.materialise_group`); each keeps its own minibatches, loss, gradient,
clipping and update, so a group changes only the rounding. All per-step values stay on the device
until the group is done (one host sync per group, none per step).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from harness.atomic import write_atomic
from harness import rng
from harness.data.loader import DeviceImages
from harness.supernet.config import WSConfig
from harness.errors import HarnessError
from harness.supernet.spaces import get_space
from harness.supernet.spaces.base import Arch
from harness.supernet.train import autocast, uses_channels_last

LOG_COLUMNS = ("step", "train_loss", "tl_mini", "val_acc_mini", "val_acc", "val_loss", "grad_l1", "grad_l2", "grad_sum_l1")


def _index_batches(n: int, batch: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` batches ``[count, batch]`` from shuffled passes over range(n) (a pass's last partial
    batch is dropped, as a DataLoader with drop_last does)."""
    per_pass = n // batch
    passes = -(-count // per_pass)
    out = [rng.permutation(n)[: per_pass * batch].reshape(per_pass, batch) for _ in range(passes)]
    return np.concatenate(out)[:count]


def arch_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per arch ``[K]`` of group logits ``[B, K, classes]`` and labels ``[B, K]``."""
    batch, n_archs, classes = logits.shape
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 under autocast: fp32 loss
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), labels.reshape(-1), reduction="none")
    return losses.view(batch, n_archs).mean(0)


@torch.no_grad()
def evaluate(net: torch.nn.Module, data: DeviceImages, cfg: WSConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy (%) and mean cross-entropy over a whole split for each arch of the group ``net``
    (device tensors ``[K]``, no host sync)."""
    if net.group is None:
        raise HarnessError("evaluate takes an arch group (materialise_group); a standalone arch is a group of one")
    n_archs = len(net.group)
    correct = torch.zeros(n_archs, device=data.device)
    total_loss = torch.zeros(n_archs, device=data.device)
    size = cfg.finetune.eval_batch_size
    for start in range(0, len(data), size):
        index = torch.arange(start, min(start + size, len(data)), device=data.device)
        x, y = data.gather(index)
        with autocast(cfg, data.device):
            logits = net(x.repeat(1, n_archs, 1, 1))
        labels = y[:, None].expand(-1, n_archs)
        correct += (logits.argmax(-1) == labels).sum(0)
        total_loss += arch_losses(logits, labels) * len(y)
    return 100.0 * correct / len(data), total_loss / len(data)


class FlatSGD:
    """SGD with (Nesterov) momentum and weight decay for an arch group, with per-arch gradient clipping
    and gradient statistics, on one flat buffer.

    Every parameter becomes a view of ``values`` and its gradient a view of ``grads`` (backward
    accumulates into the views in place); a parameter's rows (dim 0) are blocks of its archs
    (``net.parameter_archs()``, e.g. :meth:`harness.supernet.model.NB201Network.parameter_archs`), so the flat buffers are consecutive *blocks*, each of
    one arch. Per-arch norms are the norms of the blocks (``torch._foreach_norm``, as
    ``clip_grad_norm_`` computes them) added up per arch, so no arch's values, however large or
    non-finite, reach another's; a handful of kernels for the whole group. The update equals
    ``torch.optim.SGD`` (dampening 0) after ``clip_grad_norm_`` on each arch's own gradient when
    ``max_norm`` is set: ``g <- g * min(1, c / (||g||_2 + 1e-6))``, ``d = g + wd * w``,
    ``m <- mu * m + d``, ``w <- w - lr * (d + mu * m)`` with Nesterov, ``w <- w - lr * m`` without.
    """

    ALIGN = 64  # elements

    def __init__(self, net: torch.nn.Module, lr: float, momentum: float, weight_decay: float, max_norm: float | None,
                 nesterov: bool = False):
        self.lr, self.momentum, self.weight_decay, self.max_norm, self.nesterov = lr, momentum, weight_decay, max_norm, nesterov
        if net.group is None:
            raise HarnessError("FlatSGD takes an arch group (materialise_group), not a supernet or standalone network")
        owners = net.parameter_archs()
        device, dtype = owners[0][0].device, owners[0][0].dtype
        self.n_archs = len(net.group)
        # Each parameter starts on an ALIGN-element boundary (convolution kernels are slower on
        # misaligned memory); the gaps are segments of a pseudo-arch n_archs, scaled by 1, read by nothing.
        lengths, segment_archs, offset = [], [], 0
        blocks: list[tuple[int, int, int]] = []  # (start, length, arch) of every parameter block
        self.params = []
        for p, archs in owners:
            if not (p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)):
                raise HarnessError(f"parameter of shape {list(p.shape)} is not dense; cannot flatten it")
            gap = -offset % self.ALIGN
            lengths.append(gap)
            segment_archs.append(self.n_archs)
            offset += gap
            size = p.numel() // len(archs)
            blocks += [(offset + j * size, size, a) for j, a in enumerate(archs)]
            lengths += [size] * len(archs)
            segment_archs += list(archs)
            self.params.append((p, offset))
            offset += p.numel()
        self.values = torch.zeros(offset, device=device, dtype=dtype)
        self.grads, self.buffer = torch.zeros_like(self.values), torch.zeros_like(self.values)
        self.running = torch.zeros_like(self.values)  # g_1 + ... + g_t (SoG)
        for p, start in self.params:
            view = self.values.as_strided(p.shape, p.stride(), start)
            view.copy_(p.detach())
            p.data = view
            p.grad = self.grads.as_strided(p.shape, p.stride(), start)
        self.lengths = torch.tensor(lengths, device=device)
        self.segment_archs = torch.tensor(segment_archs, device=device)
        self.grad_blocks = [self.grads[start : start + size] for start, size, _ in blocks]
        self.running_blocks = [self.running[start : start + size] for start, size, _ in blocks]
        self.block_archs = torch.tensor([a for _, _, a in blocks], device=device)

    def check_gradients_in_place(self) -> None:
        """Raise unless backward wrote every gradient into the flat buffer (call after a backward)."""
        for p, _ in self.params:
            if p.grad is None or p.grad.untyped_storage().data_ptr() != self.grads.untyped_storage().data_ptr():
                raise HarnessError("a gradient was not accumulated into the flat buffer; this torch version "
                                   "replaces .grad tensors, which the arch-group finetuner relies on")

    def arch_norms(self, blocks: list[torch.Tensor], order: int) -> torch.Tensor:
        """``[K]``: each arch's L1 (``order`` 1) or L2 (2) norm over its blocks of the flat buffer."""
        per_block = torch.stack(torch._foreach_norm(blocks, order))
        if order == 2:
            per_block = per_block.square()
        sums = torch.zeros(self.n_archs, dtype=per_block.dtype, device=per_block.device).index_add_(0, self.block_archs, per_block)
        return sums if order == 1 else sums.sqrt()

    def step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip (when ``max_norm`` is set), update; returns ``||g_t||_1``, ``||g_t||_2`` and
        ``||g_1 + ... + g_t||_1`` per arch (raw gradients)."""
        grad_l1 = self.arch_norms(self.grad_blocks, 1)
        self.running.add_(self.grads)
        grad_sum_l1 = self.arch_norms(self.running_blocks, 1)
        norm = self.arch_norms(self.grad_blocks, 2)
        if self.max_norm is not None:
            scale = torch.cat([(self.max_norm / (norm + 1e-6)).clamp(max=1.0), norm.new_ones(1)])  # gaps: 1
            self.grads.mul_(torch.repeat_interleave(scale[self.segment_archs], self.lengths, output_size=self.grads.numel()))
        direction = self.grads.add(self.values, alpha=self.weight_decay)
        self.buffer.mul_(self.momentum).add_(direction)
        if self.nesterov:
            direction.add_(self.buffer, alpha=self.momentum)
            self.values.add_(direction, alpha=-self.lr)
        else:
            self.values.add_(self.buffer, alpha=-self.lr)
        return grad_l1, norm, grad_sum_l1


class FinetuneRun:
    """One arch group's finetuning (K archs side by side in one network, see
    :func:`~harness.supernet.model.materialise_group`), advanced one row at a time so that several
    groups can be in flight. Each arch keeps its own minibatches, logs and update: the group only
    shares kernel launches.

    On CUDA each run owns a stream; with ``device.cuda_graphs`` the training step (forward, backward,
    gradient statistics, clipping, SGD) and the validation-minibatch forward are captured as CUDA
    graphs after ``WARMUP`` eager steps and replayed, which removes the per-kernel launch cost that
    dominates a network this small. Replays compute exactly what the eager step computes.
    """

    WARMUP = 3

    def __init__(self, supernet: torch.nn.Module, archs: Sequence[tuple[int, Arch]], cfg: WSConfig,
                 train: DeviceImages, valid: DeviceImages):
        self.cfg = cfg
        self.indices = [int(index) for index, _ in archs]
        self.space = get_space(cfg.space)
        self.archs = [arch for _, arch in archs]
        self.n_archs = len(archs)
        self.train_data, self.valid_data = train, valid
        self.device = train.device
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        if self.stream is not None:  # the supernet's weights were written on the default stream
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        self.use_graphs = cuda and cfg.device.cuda_graphs
        ft = cfg.finetune
        self.steps = ft.steps
        channels_last = uses_channels_last(cfg, self.device)
        with self._on_stream():
            self.net = self.space.materialise_group(supernet, self.archs)
            if channels_last:
                self.net = self.net.to(memory_format=torch.channels_last)
            self.optimizer = FlatSGD(self.net, cfg.finetune_lr, ft.momentum, ft.weight_decay, ft.grad_clip, ft.nesterov)
            # Every random draw of the run, made up front: the same for every arch (depends on arch_seed only).
            rows = self.steps + 1
            val_batch = min(ft.val_mini_batch_size, len(valid))
            train_index = _index_batches(len(train), ft.batch_size, rows, rng.stream(rng.FINETUNE, ft.arch_seed, 0))
            augment_rng = rng.stream(rng.FINETUNE, ft.arch_seed, 1)
            draws = [train.draw_augmentation(augment_rng, ft.batch_size) for _ in range(rows)]
            val_index = _index_batches(len(valid), val_batch, rows, rng.stream(rng.FINETUNE, ft.arch_seed, 2))
            # [rows, batch]: row t holds minibatch t, which every arch of the group trains on
            self.train_index = train.to_device(train_index)
            self.train_offsets = train.to_device(np.stack([d[0] for d in draws]))
            self.train_flips = train.to_device(np.stack([d[1] for d in draws]))
            self.val_index = valid.to_device(val_index)
            nan = torch.full((rows, self.n_archs), float("nan"), device=self.device)
            self.tl_mini, self.val_acc_mini, self.val_acc, self.val_loss, self.grad_l1, self.grad_l2 = (nan.clone() for _ in range(6))
            self.grad_sum_l1 = torch.zeros(rows, self.n_archs, device=self.device)
            k = self.n_archs
            self.static = {
                "x": torch.empty((ft.batch_size, 3 * k, train.side, train.side), device=self.device),
                "y": torch.empty((ft.batch_size, k), dtype=torch.int64, device=self.device),
                "xv": torch.empty((val_batch, 3 * k, valid.side, valid.side), device=self.device),
                "yv": torch.empty((val_batch, k), dtype=torch.int64, device=self.device),
            }
            if channels_last:
                for key in ("x", "xv"):
                    self.static[key] = self.static[key].contiguous(memory_format=torch.channels_last)
        self.train_graph: torch.cuda.CUDAGraph | None = None
        self.val_graph: torch.cuda.CUDAGraph | None = None
        self.t = 0

    def _on_stream(self) -> contextlib.AbstractContextManager[object]:
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    @property
    def done(self) -> bool:
        return self.t > self.steps

    # The two bodies below read only the static tensors, so they can be captured and replayed.
    def _val_mini_body(self) -> None:
        with torch.no_grad(), autocast(self.cfg, self.device):
            logits = self.net(self.static["xv"])
            self.static["val_acc_mini"] = 100.0 * (logits.argmax(-1) == self.static["yv"]).float().mean(0)

    def _train_body(self) -> None:
        self.optimizer.grads.zero_()
        with autocast(self.cfg, self.device):
            losses = arch_losses(self.net(self.static["x"]), self.static["y"])
        losses.sum().backward()  # arch a's parameters get the gradient of arch a's own mean loss
        self.static["loss"] = losses.detach()
        self.static["grad_l1"], self.static["grad_l2"], self.static["grad_sum_l1"] = self.optimizer.step()

    def _run(self, graph_attr: str, body: Callable[[], None]) -> None:
        """Run ``body``: eagerly, or from the CUDA graph stored in ``graph_attr`` (captured at WARMUP)."""
        graph = getattr(self, graph_attr)
        if graph is None and self.use_graphs and self.t == self.WARMUP:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                body()
            setattr(self, graph_attr, graph)
        if graph is not None:
            graph.replay()
        else:
            body()

    def _batch(self, data: DeviceImages, index: torch.Tensor, offsets: torch.Tensor | None = None,
               flips: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The minibatch as the group's input: every arch's channels hold the same images."""
        x, y = data.gather(index) if offsets is None else data.gather(index, offsets, flips)
        return x.repeat(1, self.n_archs, 1, 1), y[:, None].expand(-1, self.n_archs)

    def advance(self) -> None:
        """Compute row ``t`` (see the module docstring) and, unless t = F, apply update t + 1."""
        t, ft = self.t, self.cfg.finetune
        with self._on_stream():
            self.net.eval()
            if t % ft.eval_every == 0:
                self.val_acc[t], self.val_loss[t] = evaluate(self.net, self.valid_data, self.cfg)
            xv, yv = self._batch(self.valid_data, self.val_index[t])
            self.static["xv"].copy_(xv)
            self.static["yv"].copy_(yv)
            self._run("val_graph", self._val_mini_body)
            self.val_acc_mini[t] = self.static["val_acc_mini"]
            self.net.train()
            x, y = self._batch(self.train_data, self.train_index[t], self.train_offsets[t], self.train_flips[t])
            self.static["x"].copy_(x)
            self.static["y"].copy_(y)
            if t == self.steps:
                with torch.no_grad(), autocast(self.cfg, self.device):
                    self.tl_mini[t] = arch_losses(self.net(self.static["x"]), self.static["y"])
            else:
                self._run("train_graph", self._train_body)
                if t == 0:
                    self.optimizer.check_gradients_in_place()
                self.tl_mini[t] = self.static["loss"]
                self.grad_l1[t + 1] = self.static["grad_l1"]
                self.grad_l2[t + 1] = self.static["grad_l2"]
                self.grad_sum_l1[t + 1] = self.static["grad_sum_l1"]
        self.t += 1

    def result(self) -> list[pd.DataFrame]:
        """The finished logs, one per arch (one host sync)."""
        with self._on_stream():
            columns = torch.stack([self.tl_mini, self.val_acc_mini, self.val_acc, self.val_loss, self.grad_l1, self.grad_l2,
                                   self.grad_sum_l1])
            columns = columns.float().cpu().numpy()  # [7, rows, K]
        self.train_graph = self.val_graph = None
        logs = []
        for a, (arch_index, arch) in enumerate(zip(self.indices, self.archs)):
            tl = columns[0, :, a].astype(np.float64)
            log = pd.DataFrame(
                {
                    "step": np.arange(self.steps + 1),
                    "train_loss": np.concatenate([[np.nan], tl[:-1]]),
                    "tl_mini": tl,
                    "val_acc_mini": columns[1, :, a],
                    "val_acc": columns[2, :, a],
                    "val_loss": columns[3, :, a],
                    "grad_l1": columns[4, :, a],
                    "grad_l2": columns[5, :, a],
                    "grad_sum_l1": columns[6, :, a],
                }
            )
            log.insert(0, "arch", self.space.encode(arch))
            log.insert(0, "arch_index", arch_index)
            logs.append(log)
        return logs


def arch_log_path(out_dir: Path, arch_index: int) -> Path:
    return Path(out_dir) / f"arch-{arch_index:05d}.parquet"


def finetune_archs(
    supernet: torch.nn.Module,
    archs: Sequence[tuple[int, Arch]],
    cfg: WSConfig,
    train: DeviceImages,
    valid: DeviceImages,
    out_dir: Path,
    label: str = "",
    progress: bool = True,
) -> list[Path]:
    """Finetune every ``(index, arch)`` in ``archs``, writing one parquet log per arch as it finishes.

    Archs go in groups of ``device.archs_per_group`` through one network each (:class:`FinetuneRun`).
    On CUDA, ``device.archs_in_flight`` archs advance together: that many divided by the group size
    groups, round-robin, each on its own stream, so the GPU overlaps their small kernels. A log
    already present is kept and its arch skipped, so a restarted run resumes. Files are written to a
    temp name and renamed. Each log carries ``seconds``: wall time from its group's start to its end
    (with several archs at once, the throughput per arch is the wall time divided by the archs).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [arch_log_path(out_dir, index) for index, _ in archs]
    todo = [(index, ops) for (index, ops), path in zip(archs, paths) if not path.is_file()]
    per_group = cfg.device.archs_per_group
    groups = [todo[i : i + per_group] for i in range(0, len(todo), per_group)]
    in_flight = max(1, cfg.device.archs_in_flight // per_group) if train.device.type == "cuda" else 1
    active: list[tuple[FinetuneRun, float]] = []
    bar = tqdm(total=len(archs), initial=len(archs) - len(todo), desc=f"finetune {label}".strip(), disable=not progress)
    while groups or active:
        while groups and len(active) < in_flight:
            active.append((FinetuneRun(supernet, groups.pop(0), cfg, train, valid), time.perf_counter()))
        for run, _ in active:
            run.advance()
        for run, started in [item for item in active if item[0].done]:
            seconds = time.perf_counter() - started
            for log in run.result():
                log["seconds"] = seconds
                write_atomic(arch_log_path(out_dir, int(log.arch_index.iloc[0])), lambda tmp: log.to_parquet(tmp, index=False))
                bar.update(1)
        active = [item for item in active if not item[0].done]
    bar.close()
    return paths
