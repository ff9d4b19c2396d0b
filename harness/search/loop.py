"""The search loop: epochs of blocks (:func:`harness.search.algorithms.search_block`), per-epoch
checkpoints, exact resume, and the per-epoch log of the derived arch.

Epoch e draws its minibatches from ``harness.rng.stream(SEARCH, seed, e, sub_stream)``: the training
split's sample order and augmentation (sub-streams 0, 1) and the validation split's (2, 3); the seeds
of DrNAS's Dirichlet samples come from sub-stream 4 (``state.draws``, one seed per forward pass in the
order the blocks run them; :mod:`harness.search.algorithms`). All are a pure function of (seed,
epoch); nothing else in the loop is random. An epoch has ``steps = len(train) // batch_size``
training minibatches in ``steps // n`` blocks of ``n`` (n = ``search.unroll_steps`` for SoTL-/SoVL-DARTS
and SoTL-DrNAS, else 1); the last ``steps mod n`` minibatches of an epoch are not used. Block b's
algorithm reads validation minibatches ``n b + 1 .. n b + n`` of a sequence of augmented validation
minibatches, one shuffle of the validation split after another (NB201's search data augments both
halves alike). The weights' lr is cosine-annealed per minibatch, ``lr_t = lr_min + (lr - lr_min) (1 +
cos(pi t / S)) / 2`` over all S used minibatches of the search (:func:`harness.supernet.train.cosine_lr`).

After every epoch the state (weights and BN statistics, alpha, both optimizers' states, of GAEA's
exponentiated gradient only its settings, the epochs done, the log) is written atomically to
``search-seed{seed}.pt`` and the log to ``search-seed{seed}.json``: per epoch the derived arch and its
truth (:func:`harness.search.derive.describe`), softmax(alpha), the mean architecture-objective and
training losses and the seconds taken. Resuming loads the checkpoint and replays the same streams, so
a killed search ends with the state an uninterrupted one reaches (bit for bit on a deterministic device
with the same thread count). The weights and alpha are drawn from torch seeded by the seed inside
``torch.random.fork_rng`` (the network first, then ``alpha = arch_init_std * N(0, 1)``; GAEA's alpha is
not drawn but uniform on each edge's simplex, :mod:`harness.search.config`), the caller's RNG
untouched. The architecture optimizer is Adam (weight decay ``drnas_reg_scale`` for DrNAS and
SoTL-DrNAS, else ``arch_weight_decay``), or GAEA's
:class:`~harness.search.algorithms.ExponentiatedGradient` at ``gaea_lr``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import rng
from harness.atomic import write_atomic
from harness.benchmark import Benchmark
from harness.data.loader import DeviceImages
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.search.algorithms import MIXINGS, Batch, ExponentiatedGradient, SearchState, search_block
from harness.search.config import MIXING, TRAINING_ONLY, SearchConfig, SearchSettings, changed_search_settings
from harness.search.derive import describe
from harness.spaces.nb201 import EDGES, OPS
from harness.supernet.model import NB201Network
from harness.supernet.spaces.nb201 import NB201Space
from harness.supernet.train import cosine_lr

STREAM_TRAIN_ORDER, STREAM_TRAIN_AUGMENT, STREAM_VALID_ORDER, STREAM_VALID_AUGMENT, STREAM_MIXING = 0, 1, 2, 3, 4


def checkpoint_path(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"search-seed{seed}.pt"


def log_path(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"search-seed{seed}.json"


def init_state(cfg: SearchConfig, seed: int, device: torch.device, dtype: torch.dtype = torch.float32) -> SearchState:
    """Fresh weights and alpha from ``seed`` (module docstring) and both optimizers (config docstring)."""
    s = cfg.search
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = NB201Network(NB201Space().shape(cfg.ws_config()))
        alpha = _initial_alpha(s)
    net = net.to(device=device, dtype=dtype)
    alpha = alpha.to(device=device, dtype=dtype).requires_grad_()
    w_optimizer = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay)
    return SearchState(net=net, alpha=alpha, w_optimizer=w_optimizer, a_optimizer=_arch_optimizer(alpha, s),
                       mixing=MIXINGS[MIXING[s.algorithm]], draws=rng.stream(rng.SEARCH, seed, 0, STREAM_MIXING),
                       hessian_r=s.hessian_r)


def _initial_alpha(s: SearchSettings) -> torch.Tensor:
    """``arch_init_std * N(0, 1)`` per edge and op (from torch's seeded RNG), or for GAEA uniform
    weights on each edge's simplex over the ops (``none`` at 0 when ``gaea_exclude_none``)."""
    if MIXING[s.algorithm] != "simplex":
        return s.arch_init_std * torch.randn(len(EDGES), len(OPS), dtype=torch.float64)
    support = torch.tensor([not (s.gaea_exclude_none and op == "none") for op in OPS], dtype=torch.float64)
    return (support / support.sum()).expand(len(EDGES), len(OPS)).clone()


def _arch_optimizer(alpha: torch.Tensor, s: SearchSettings) -> torch.optim.Optimizer:
    """GAEA's exponentiated gradient at ``gaea_lr``, else Adam with DrNAS's or DARTS's weight decay
    (module docstring)."""
    mixing = MIXING[s.algorithm]
    if mixing == "simplex":
        return ExponentiatedGradient([alpha], lr=s.gaea_lr)
    weight_decay = s.drnas_reg_scale if mixing == "dirichlet" else s.arch_weight_decay
    return torch.optim.Adam([alpha], lr=s.arch_lr, betas=(s.arch_beta1, s.arch_beta2), eps=s.arch_eps, weight_decay=weight_decay)


def _minibatches(images: DeviceImages, order: np.random.Generator, augment: np.random.Generator, n: int, batch_size: int,
                 dtype: torch.dtype) -> list[Batch]:
    """``n`` augmented minibatches: shuffles of ``images`` one after another, each cut into whole batches."""
    index: list[np.ndarray] = []
    while len(index) < n:
        shuffle = images.epoch_batches(order, batch_size)
        if not shuffle:
            raise HarnessError(f"a split of {len(images)} images has no whole batch of {batch_size}")
        index.extend(shuffle)
    out = []
    for rows in index[:n]:
        offsets, flips = images.draw_augmentation(augment, len(rows))
        x, y = images.gather(images.to_device(rows), images.to_device(offsets), images.to_device(flips))
        out.append((x.to(dtype), y))
    return out


def _state_dict(state: SearchState, epoch: int, seed: int, history: list[dict[str, Any]], cfg: SearchConfig) -> dict[str, Any]:
    return {
        "model": {name: t.clone() for name, t in state.net.state_dict().items()},
        "alpha": state.alpha.detach().clone(),
        "w_optimizer": state.w_optimizer.state_dict(),
        "a_optimizer": state.a_optimizer.state_dict(),
        "epoch": epoch,
        "seed": seed,
        "history": json.dumps(history),
        "config": json.dumps(cfg.to_dict()),
        "streams": rng.STREAMS_VERSION,
    }


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise HarnessError(f"cannot read search checkpoint {path}: {err}") from err


def search(cfg: SearchConfig, seed: int, train: DeviceImages, valid: DeviceImages | None, out_dir: Path,
           stop_after_epoch: int | None = None, dtype: torch.dtype = torch.float32, bench: Benchmark | None = None) -> SearchState:
    """Run (or resume) the search of ``seed`` into ``out_dir``; returns its state after the last epoch
    run. ``valid`` may be None for SoTL-DARTS and SoTL-DrNAS, which read no validation data.
    ``stop_after_epoch`` ends early, as a kill would (tests); ``bench``: the embedded NB201 benchmark
    (loaded when None)."""
    s = cfg.search
    if valid is None and s.algorithm not in TRAINING_ONLY:
        raise HarnessError(f"{s.algorithm} needs the validation split")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bench = load_benchmark("nb201") if bench is None else bench
    state = init_state(cfg, seed, train.device, dtype)
    path, start, history = checkpoint_path(out_dir, seed), 0, []
    if path.is_file():
        saved = load_checkpoint(path, train.device)
        changes = changed_search_settings(json.loads(saved["config"]), cfg)
        if changes:
            raise HarnessError(f"{path} was searched under other settings ({'; '.join(changes)}); resume with its own "
                               "settings or search into a new folder")
        if saved["streams"] != rng.STREAMS_VERSION:
            raise HarnessError(f"{path} used the random streams of another harness version; search anew in a new folder")
        state.net.load_state_dict(saved["model"])
        with torch.no_grad():
            state.alpha.copy_(saved["alpha"])
        state.w_optimizer.load_state_dict(saved["w_optimizer"])
        state.a_optimizer.load_state_dict(saved["a_optimizer"])
        start, history = int(saved["epoch"]), json.loads(saved["history"])
    n = cfg.block_steps
    blocks = len(train) // s.batch_size // n
    if blocks == 0:
        raise HarnessError(f"an architecture step of {s.algorithm} needs {n} minibatches of {s.batch_size}; the training "
                           f"split has {len(train)} images")
    total = s.epochs * blocks * n
    stop = s.epochs if stop_after_epoch is None else min(stop_after_epoch, s.epochs)
    for epoch in range(start, stop):
        started = time.perf_counter()
        state.net.train()
        streams = [rng.stream(rng.SEARCH, seed, epoch, sub) for sub in range(5)]
        state.draws = streams[STREAM_MIXING]
        train_batches = _minibatches(train, streams[STREAM_TRAIN_ORDER], streams[STREAM_TRAIN_AUGMENT], blocks * n, s.batch_size, dtype)
        valid_batches = ([] if valid is None or s.algorithm in TRAINING_ONLY else _minibatches(
            valid, streams[STREAM_VALID_ORDER], streams[STREAM_VALID_AUGMENT], blocks * n, s.batch_size, dtype))
        arch_losses, train_losses = [], []
        for b in range(blocks):
            part = slice(b * n, (b + 1) * n)
            lrs = [cosine_lr(epoch * blocks * n + t, total, s.lr, s.lr_min) for t in range(part.start, part.stop)]
            arch_loss, train_loss = search_block(state, s.algorithm, train_batches[part], valid_batches[part], lrs)
            arch_losses.append(arch_loss)
            train_losses.append(train_loss)
        alpha = state.alpha.detach().cpu().double().numpy()
        history.append({
            "epoch": epoch + 1,
            **describe(alpha, bench),
            "arch_loss": float(torch.stack(arch_losses).mean()),
            "train_loss": float(torch.stack(train_losses).mean()),
            "softmax_alpha": torch.softmax(torch.from_numpy(alpha), dim=-1).tolist(),
            "seconds": time.perf_counter() - started,
        })
        write_atomic(path, lambda tmp: torch.save(_state_dict(state, epoch + 1, seed, history, cfg), tmp))
        write_atomic(log_path(out_dir, seed), lambda tmp: tmp.write_text(json.dumps(history, indent=1)))
    return state
