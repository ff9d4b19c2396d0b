"""Inherit-and-finetune: each sampled arch takes its supernet weights and trains F more minibatches.

Per arch (thesis Sec. 4.2; issue 6 Sec. 4): materialise the arch from the supernet (exact weight
copy), then run F SGD steps on training minibatches. Row ``t`` (0..F) of the arch's log describes the
network after ``t`` updates:

==============  ===========================================================================
column          value at row t
==============  ===========================================================================
train_loss      loss of the minibatch of update t (computed in its forward pass); NaN at t=0.
                SoTL(t) = sum of train_loss over rows 1..t.
tl_mini         loss of one training minibatch at the weights after t updates (TLMini); it is
                the next update's minibatch, so tl_mini[t] == train_loss[t + 1]. Row F uses one
                extra minibatch, forward only.
val_acc_mini    accuracy (%) on one validation minibatch (ValAccMini), a fresh one per row.
val_acc         accuracy (%) on the whole validation split (ValAcc) at t = 0 and every
                ``eval_every`` steps; NaN elsewhere (not measured).
val_loss        mean loss on the whole validation split, where val_acc is measured.
grad_l1         ||g_t||_1, L1 norm of update t's raw minibatch gradient (before clipping;
                weight decay excluded); NaN at t=0. SoGN(t) = sum of grad_l1 over rows 1..t.
grad_sum_l1     ||g_1 + ... + g_t||_1, L1 norm of the summed gradients (SoG(t)); 0 at t=0.
==============  ===========================================================================

The data streams depend only on (arch_seed, arch index): every supernet and every algorithm sees
the same minibatches and validation minibatches for an arch. All per-step values stay on the device
until the arch is done (one host sync per arch, none per step).
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
from harness.spaces.nb201 import ops_to_arch
from harness.supernet.config import WSConfig
from harness.supernet.model import NB201Network, materialise
from harness.supernet.train import autocast, uses_channels_last

LOG_COLUMNS = ("step", "train_loss", "tl_mini", "val_acc_mini", "val_acc", "val_loss", "grad_l1", "grad_sum_l1")


def _index_batches(n: int, batch: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` batches ``[count, batch]`` from shuffled passes over range(n) (a pass's last partial
    batch is dropped, as a DataLoader with drop_last does)."""
    per_pass = n // batch
    passes = -(-count // per_pass)
    out = [rng.permutation(n)[: per_pass * batch].reshape(per_pass, batch) for _ in range(passes)]
    return np.concatenate(out)[:count]


@torch.no_grad()
def evaluate(net: NB201Network, data: DeviceImages, cfg: WSConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy (%) and mean cross-entropy over a whole split (device scalars, no host sync)."""
    correct = torch.zeros((), device=data.device)
    total_loss = torch.zeros((), device=data.device)
    size = cfg.finetune.eval_batch_size
    for start in range(0, len(data), size):
        index = torch.arange(start, min(start + size, len(data)), device=data.device)
        x, y = data.gather(index)
        with autocast(cfg, data.device):
            logits = net(x)
        correct += (logits.argmax(1) == y).sum()
        total_loss += torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum")
    return 100.0 * correct / len(data), total_loss / len(data)


class FinetuneRun:
    """One arch's finetuning, advanced one row at a time so that several can be in flight.

    On CUDA each run owns a stream; with ``device.cuda_graphs`` the training step (forward, backward,
    gradient statistics, clipping, SGD) and the validation-minibatch forward are captured as CUDA
    graphs after ``WARMUP`` eager steps and replayed, which removes the per-kernel launch cost that
    dominates a network this small. Replays compute exactly what the eager step computes.
    """

    WARMUP = 3

    def __init__(self, supernet: NB201Network, ops: Sequence[str], arch_index: int, cfg: WSConfig,
                 train: DeviceImages, valid: DeviceImages):
        self.cfg, self.ops, self.arch_index = cfg, tuple(ops), arch_index
        self.train_data, self.valid_data = train, valid
        self.device = train.device
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        if self.stream is not None:  # the supernet's weights were written on the default stream
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        self.use_graphs = cuda and cfg.device.cuda_graphs
        ft = cfg.finetune
        self.steps = ft.steps
        with self._on_stream():
            self.net = materialise(supernet, ops)
            if uses_channels_last(cfg, self.device):
                self.net = self.net.to(memory_format=torch.channels_last)
            self.params = list(self.net.parameters())
            self.optimizer = torch.optim.SGD(self.params, lr=ft.lr, momentum=ft.momentum, weight_decay=ft.weight_decay)
            # Every random draw of this arch's run, made up front (depends on arch_seed and arch index only).
            rows = self.steps + 1
            train_index = _index_batches(len(train), ft.batch_size, rows, rng.stream(rng.FINETUNE, ft.arch_seed, arch_index, 0))
            augment_rng = rng.stream(rng.FINETUNE, ft.arch_seed, arch_index, 1)
            draws = [train.draw_augmentation(augment_rng, ft.batch_size) for _ in range(rows)]
            val_batch = min(ft.val_mini_batch_size, len(valid))
            val_index = _index_batches(len(valid), val_batch, rows, rng.stream(rng.FINETUNE, ft.arch_seed, arch_index, 2))
            self.train_index = train.to_device(train_index)
            self.train_offsets = train.to_device(np.stack([d[0] for d in draws]))
            self.train_flips = train.to_device(np.stack([d[1] for d in draws]))
            self.val_index = valid.to_device(val_index)
            nan = torch.full((rows,), float("nan"), device=self.device)
            self.tl_mini, self.val_acc_mini, self.val_acc, self.val_loss, self.grad_l1 = (nan.clone() for _ in range(5))
            self.grad_sum_l1 = torch.zeros(rows, device=self.device)
            self.static = {
                "x": torch.empty((ft.batch_size, 3, train.side, train.side), device=self.device),
                "y": torch.empty(ft.batch_size, dtype=torch.int64, device=self.device),
                "xv": torch.empty((val_batch, 3, valid.side, valid.side), device=self.device),
                "yv": torch.empty(val_batch, dtype=torch.int64, device=self.device),
            }
            if uses_channels_last(cfg, self.device):
                for key in ("x", "xv"):
                    self.static[key] = self.static[key].contiguous(memory_format=torch.channels_last)
        self.with_grad: list[torch.nn.Parameter] = []
        self.running: list[torch.Tensor] = []
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
            self.static["val_acc_mini"] = 100.0 * (logits.argmax(1) == self.static["yv"]).float().mean()

    def _train_body(self) -> None:
        with autocast(self.cfg, self.device):
            loss = torch.nn.functional.cross_entropy(self.net(self.static["x"]).float(), self.static["y"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.with_grad]
        self.static["loss"] = loss.detach()
        self.static["grad_l1"] = torch.stack(torch._foreach_norm(grads, 1)).sum()
        torch._foreach_add_(self.running, grads)
        self.static["grad_sum_l1"] = torch.stack(torch._foreach_norm(self.running, 1)).sum()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.finetune.grad_clip, foreach=self.device.type == "cuda")
        self.optimizer.step()

    def _first_step(self) -> None:
        """Find the parameters that get gradients (ops feeding no output never do; they count as 0)."""
        with autocast(self.cfg, self.device):
            loss = torch.nn.functional.cross_entropy(self.net(self.static["x"]).float(), self.static["y"])
        loss.backward()
        self.with_grad = [p for p in self.params if p.grad is not None]
        self.running = [torch.zeros_like(p) for p in self.with_grad]
        self.optimizer.zero_grad(set_to_none=True)

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

    def advance(self) -> None:
        """Compute row ``t`` (see the module docstring) and, unless t = F, apply update t + 1."""
        t, ft = self.t, self.cfg.finetune
        with self._on_stream():
            self.net.eval()
            if t % ft.eval_every == 0:
                self.val_acc[t], self.val_loss[t] = evaluate(self.net, self.valid_data, self.cfg)
            xv, yv = self.valid_data.gather(self.val_index[t])
            self.static["xv"].copy_(xv)
            self.static["yv"].copy_(yv)
            self._run("val_graph", self._val_mini_body)
            self.val_acc_mini[t] = self.static["val_acc_mini"]
            self.net.train()
            x, y = self.train_data.gather(self.train_index[t], self.train_offsets[t], self.train_flips[t])
            self.static["x"].copy_(x)
            self.static["y"].copy_(y)
            if t == self.steps:
                with torch.no_grad(), autocast(self.cfg, self.device):
                    self.tl_mini[t] = torch.nn.functional.cross_entropy(self.net(self.static["x"]).float(), self.static["y"])
            else:
                if t == 0:
                    self._first_step()
                self._run("train_graph", self._train_body)
                self.tl_mini[t] = self.static["loss"]
                self.grad_l1[t + 1] = self.static["grad_l1"]
                self.grad_sum_l1[t + 1] = self.static["grad_sum_l1"]
        self.t += 1

    def result(self) -> pd.DataFrame:
        """The finished log (one host sync)."""
        with self._on_stream():
            columns = torch.stack([self.tl_mini, self.val_acc_mini, self.val_acc, self.val_loss, self.grad_l1, self.grad_sum_l1])
            columns = columns.float().cpu().numpy()
        self.train_graph = self.val_graph = None
        tl = columns[0].astype(np.float64)
        log = pd.DataFrame(
            {
                "step": np.arange(self.steps + 1),
                "train_loss": np.concatenate([[np.nan], tl[:-1]]),
                "tl_mini": tl,
                "val_acc_mini": columns[1],
                "val_acc": columns[2],
                "val_loss": columns[3],
                "grad_l1": columns[4],
                "grad_sum_l1": columns[5],
            }
        )
        log.insert(0, "arch", ops_to_arch(self.ops))
        log.insert(0, "arch_index", self.arch_index)
        return log


def finetune_arch(
    supernet: NB201Network,
    ops: Sequence[str],
    arch_index: int,
    cfg: WSConfig,
    train: DeviceImages,
    valid: DeviceImages,
) -> pd.DataFrame:
    """Finetune one arch from its inherited weights; returns its per-step log (see module doc)."""
    run = FinetuneRun(supernet, ops, arch_index, cfg, train, valid)
    while not run.done:
        run.advance()
    return run.result()


def arch_log_path(out_dir: Path, arch_index: int) -> Path:
    return Path(out_dir) / f"arch-{arch_index:05d}.parquet"


def finetune_archs(
    supernet: NB201Network,
    archs: Sequence[tuple[int, Sequence[str]]],
    cfg: WSConfig,
    train: DeviceImages,
    valid: DeviceImages,
    out_dir: Path,
    label: str = "",
    progress: bool = True,
) -> list[Path]:
    """Finetune every ``(index, ops)`` in ``archs``, writing one parquet log per arch as it finishes.

    On CUDA up to ``device.archs_in_flight`` archs advance together, round-robin, each on its own
    stream, so the GPU overlaps their small kernels. A log already present is kept and its arch
    skipped, so a restarted run resumes. Files are written to a temp name and renamed. Each log
    carries ``seconds``: wall time from the arch's start to its end (with several in flight, the
    throughput per arch is the batch's wall time divided by the archs).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [arch_log_path(out_dir, index) for index, _ in archs]
    todo = [(index, ops) for (index, ops), path in zip(archs, paths) if not path.is_file()]
    in_flight = max(1, cfg.device.archs_in_flight) if train.device.type == "cuda" else 1
    active: list[tuple[FinetuneRun, float]] = []
    bar = tqdm(total=len(archs), initial=len(archs) - len(todo), desc=f"finetune {label}".strip(), disable=not progress)
    pending = list(todo)
    while pending or active:
        while pending and len(active) < in_flight:
            index, ops = pending.pop(0)
            active.append((FinetuneRun(supernet, ops, index, cfg, train, valid), time.perf_counter()))
        for run, _ in active:
            run.advance()
        for run, started in [item for item in active if item[0].done]:
            log = run.result()
            log["seconds"] = time.perf_counter() - started
            write_atomic(arch_log_path(out_dir, run.arch_index), lambda tmp: log.to_parquet(tmp, index=False))
            bar.update(1)
        active = [item for item in active if not item[0].done]
    bar.close()
    return paths
