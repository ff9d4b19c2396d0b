"""Supernet training with the algorithms of the thesis's Table 4.1, per-epoch checkpoints and exact resume.

Each minibatch is one *update* of the supernet, shaped by ``supernet.algorithm``
(:mod:`harness.supernet.sampling`). All algorithms share one optimizer step,
:func:`optimizer_step`: the gradient of the rollout's mean loss ``(1/k) sum_k L(w; path_k, batch)``
(plus ``lambda (w - w0)``, the gradient of Metaprox's proximal term ``lambda/2 ||w - w0||^2``), an
optional clip of its L2 norm, and one SGD step (momentum, Nesterov, weight decay; lr cosine-annealed
per update, ``lr_t = lr_min + (lr - lr_min) (1 + cos(pi t / T)) / 2`` over all T updates).

- :func:`plain_update` (SPOS, RandomNAS, FairNAS, MultiPath): one optimizer step on the rollout.
- :func:`meta_update` (Reptile, Metaprox, MultiPath + Metaprox): from w0, each of ``meta_batch``
  rollouts makes ``inner_steps`` optimizer steps on the same minibatch (each rollout restarting from
  w0 and the optimizer state at w0); then ``w <- w0 + meta_lr (mean of the rollouts' end points - w0)``
  and the momentum buffers become the mean of the rollouts'. BatchNorm running statistics are not
  rolled back: they follow every forward pass.

With ``supernet.update_unsampled`` (the default) a gradient is zeroed, not freed, between steps, as
the thesis code's ``zero_grad()`` did under PyTorch 1.x: a weight whose op is not on this step's paths
keeps a zero gradient, so weight decay and momentum still move it. Without it only the sampled
paths' weights change. The logged loss of an update is its first step's loss (mean over its paths
and rollouts), taken at the weights the update starts from.

Execution (``device.dense_supernet``, :func:`uses_dense`): sparse, the functions above, running only
the paths' ops, eagerly (the CPU default); or dense, :class:`harness.supernet.dense.DenseUpdate`, every
op weighted 0/1 by the paths and the whole update replayed as one CUDA graph (the CUDA default). Both
compute the same update to rounding, write the same checkpoint, and a run may switch between them.

Randomness: epoch e draws its sample order, augmentation and paths from
``harness.rng.stream(SUPERNET, seed, e, sub_stream)``, a pure function of (seed, epoch). Resuming from the
checkpoint of epoch e therefore replays exactly the streams an uninterrupted run would have used, and
on a deterministic device ends with the same weights. Network initialisation seeds torch inside
``torch.random.fork_rng`` so the caller's global RNG is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from harness.atomic import write_atomic
from harness.data.loader import DeviceImages
from harness import rng
from harness.data.nb201 import dataset_info, load_nb201
from harness.errors import HarnessError
from harness.supernet.config import WSConfig, changed_settings
from harness.supernet.sampling import ALGORITHMS, Algorithm, Rollout
from harness.supernet.spaces import get_space

if TYPE_CHECKING:
    from harness.supernet.dense import DenseUpdate

STREAM_ORDER, STREAM_AUGMENT, STREAM_ARCH = 0, 1, 2


def resolve_device(cfg: WSConfig) -> torch.device:
    name = cfg.device.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise HarnessError("device 'cuda' asked for but torch sees no GPU; use device = 'cpu' or 'auto'")
        torch.backends.cudnn.benchmark = cfg.device.cudnn_benchmark
    return device


@contextlib.contextmanager
def cpu_threads(cfg: WSConfig) -> Iterator[None]:
    """torch's CPU operators on ``device.threads`` threads while inside (the caller's count after).

    The thread count changes how a CPU kernel splits its sums, hence the rounding, so it is a recorded
    setting (the run's config.json) rather than whatever the machine has."""
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.device.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def uses_channels_last(cfg: WSConfig, device: torch.device) -> bool:
    return cfg.device.channels_last and device.type == "cuda"


def uses_dense(cfg: WSConfig, device: torch.device) -> bool:
    """Whether updates run dense (:mod:`harness.supernet.dense`): ``device.dense_supernet``, where
    ``auto`` is on for CUDA (unless the cells' BNs keep running statistics, which a dense update
    would move for every op) and off for the CPU, which keeps the sparse path of committed runs."""
    setting = cfg.device.dense_supernet
    if setting == "auto":
        return device.type == "cuda" and get_space(cfg.space).supports_dense and not cfg.network.bn_track_running_stats
    return setting == "on"


def autocast(cfg: WSConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on CUDA when ``device.amp``; a no-op elsewhere."""
    if cfg.device.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)  # graph-safe
    return contextlib.nullcontext()


def load_images(cfg: WSConfig, device: torch.device) -> tuple[DeviceImages, DeviceImages]:
    """The run's train and valid splits, on ``device``."""
    from harness.data.formats import download_cifar

    root = Path(cfg.data.root)
    if cfg.data.download and cfg.data.dataset.startswith("cifar"):
        download_cifar("cifar100" if cfg.data.dataset == "cifar100" else "cifar10", root)
    split_file = Path(cfg.data.split_file) if cfg.data.split_file else None
    parts = load_nb201(cfg.data.dataset, root, ("train", "valid"), split_file, cfg.data.split_seed)
    train, valid = parts["train"], parts["valid"]
    if cfg.data.limit_train is not None:
        train = train.subset(np.arange(min(cfg.data.limit_train, len(train))))
    if cfg.data.limit_valid is not None:
        valid = valid.subset(np.arange(min(cfg.data.limit_valid, len(valid))))
    info = dataset_info(cfg.data.dataset)
    if cfg.data.image_size is not None and cfg.data.image_size != info.side:
        factor = info.side // cfg.data.image_size
        train, valid = train.downsampled(factor), valid.downsampled(factor)
        info = replace(info, side=cfg.data.image_size, crop_padding=max(1, info.crop_padding // factor))
    last = uses_channels_last(cfg, device)
    return DeviceImages(train, info, device, last), DeviceImages(valid, info, device, last)


def init_supernet(cfg: WSConfig, seed: int) -> torch.nn.Module:
    """The space's supernet with weights drawn from torch seeded by ``seed`` (the caller's global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_space(cfg.space).build_supernet(cfg)


def cosine_lr(step: int, total: int, lr: float, lr_min: float) -> float:
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * step / max(total, 1))) / 2


def epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return rng.stream(rng.SUPERNET, seed, epoch, stream)


def checkpoint_path(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"supernet-seed{seed}.pt"


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    if not Path(path).is_file():
        raise HarnessError(f"no supernet checkpoint at {path}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise HarnessError(f"cannot read supernet checkpoint {path}: {err}") from err


def load_supernet(path: Path, cfg: WSConfig, device: torch.device, allow_unfinished: bool = False) -> torch.nn.Module:
    """The trained supernet; an unfinished one (fewer epochs than configured) only if allowed."""
    state = load_checkpoint(path, device)
    net = get_space(cfg.space).build_supernet(cfg).to(device)
    net.load_state_dict(state["model"])
    if state["epoch"] != cfg.supernet.epochs and not allow_unfinished:
        raise HarnessError(f"{path} holds epoch {state['epoch']} of {cfg.supernet.epochs}; finish training first")
    return net


def make_optimizer(net: torch.nn.Module, cfg: WSConfig) -> torch.optim.SGD:
    """The supernet's SGD (``supernet.momentum``, ``nesterov``, ``weight_decay``; lr set per update)."""
    sn = cfg.supernet
    return torch.optim.SGD(net.parameters(), lr=sn.lr, momentum=sn.momentum, nesterov=sn.nesterov,
                           weight_decay=sn.weight_decay)


def _batches(train: DeviceImages, cfg: WSConfig, seed: int, epoch: int, dense: DenseUpdate | None = None
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[Rollout], torch.Tensor | None]]:
    """Epoch ``epoch``'s minibatches, the rollouts each update trains and, for a ``dense`` update, their
    path weights (else None). All draws are made up front and sent to the device in one transfer per
    array, so the loop itself never waits on a host-to-device copy."""
    order_rng = epoch_rng(seed, epoch, STREAM_ORDER)
    augment_rng = epoch_rng(seed, epoch, STREAM_AUGMENT)
    arch_rng = epoch_rng(seed, epoch, STREAM_ARCH)
    index = np.stack(train.epoch_batches(order_rng, cfg.supernet.batch_size))
    draws = [train.draw_augmentation(augment_rng, index.shape[1]) for _ in range(len(index))]
    algorithm = ALGORITHMS[cfg.supernet.algorithm]
    space, n_cells = get_space(cfg.space), cfg.n_cells
    rollouts = [algorithm.draw(space, arch_rng, n_cells) for _ in range(len(index))]
    index_t = train.to_device(index)
    offsets_t = train.to_device(np.stack([d[0] for d in draws]))
    flips_t = train.to_device(np.stack([d[1] for d in draws]))
    weights_t = None if dense is None else train.to_device(np.stack([dense.weights(r) for r in rollouts]))
    for i, step_rollouts in enumerate(rollouts):
        x, y = train.gather(index_t[i], offsets_t[i], flips_t[i])
        yield x, y, step_rollouts, None if weights_t is None else weights_t[i]


def rollout_backward(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rollout: Rollout, cfg: WSConfig) -> torch.Tensor:
    """Accumulate the gradient of the rollout's mean loss ``(1/k) sum_k L(w; path_k, (x, y))`` into
    ``.grad`` (one backward per path); returns that mean loss (0-d, detached, on the device)."""
    total = torch.zeros((), device=x.device)
    for path in rollout:
        with autocast(cfg, x.device):
            loss = torch.nn.functional.cross_entropy(net(x, path), y)
        (loss / len(rollout)).backward()
        total = total + loss.detach()
    return total / len(rollout)


def optimizer_step(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rollout: Rollout, cfg: WSConfig, optimizer: torch.optim.Optimizer,
    anchor: list[torch.Tensor] | None = None, prox_lambda: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The step every algorithm shares: zero the gradients (freeing them unless
    ``supernet.update_unsampled``), the rollout's gradient (:func:`rollout_backward`), plus
    ``prox_lambda (w - anchor)`` on every weight (the gradient of ``prox_lambda/2 ||w - anchor||^2``,
    which reaches every weight, so with a proximal term every weight gets a gradient, as autograd of
    the thesis code's penalty gave it), the L2 norm clipped to ``supernet.grad_clip`` when set, one
    optimizer step. Returns the rollout's loss and the gradient's L2 norm before clipping (0-d
    device tensors)."""
    optimizer.zero_grad(set_to_none=not cfg.supernet.update_unsampled)
    loss = rollout_backward(net, x, y, rollout, cfg)
    params = list(net.parameters())
    if prox_lambda:
        assert anchor is not None, "a proximal term needs the weights it pulls towards"
        with torch.no_grad():
            for p, p0 in zip(params, anchor):
                pull = (p - p0).mul_(prox_lambda)
                p.grad = pull if p.grad is None else p.grad.add_(pull)
    clip = cfg.supernet.grad_clip
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else math.inf)
    optimizer.step()
    return loss, norm


def plain_update(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rollouts: list[Rollout], cfg: WSConfig,
                 optimizer: torch.optim.Optimizer, algorithm: Algorithm) -> tuple[torch.Tensor, torch.Tensor]:
    """SPOS, RandomNAS, FairNAS, MultiPath: one :func:`optimizer_step` on the update's one rollout."""
    (rollout,) = rollouts
    return optimizer_step(net, x, y, rollout, cfg, optimizer)


def _momentum(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return [optimizer.state[p]["momentum_buffer"].clone() if "momentum_buffer" in optimizer.state.get(p, {}) else None
            for p in params]


def _set_momentum(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], buffers: list[torch.Tensor | None]) -> None:
    for p, buffer in zip(params, buffers):
        if buffer is None:
            optimizer.state.get(p, {}).pop("momentum_buffer", None)  # torch starts a missing buffer from zero
        else:
            optimizer.state[p]["momentum_buffer"] = buffer.clone()


def meta_update(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rollouts: list[Rollout], cfg: WSConfig,
                optimizer: torch.optim.Optimizer, algorithm: Algorithm) -> tuple[torch.Tensor, torch.Tensor]:
    """Reptile, Metaprox, MultiPath + Metaprox (module docstring): each rollout makes
    ``algorithm.inner_steps`` :func:`optimizer_step` calls from w0 (Metaprox: with the proximal term
    towards w0), then ``w <- w0 + meta_lr (mean end - w0)``; momentum buffers become the rollouts' mean
    (a missing buffer counts as zero, as torch starts it). Returns the mean over rollouts of their
    first step's loss and the first step's gradient norm."""
    params = list(net.parameters())
    start = [p.detach().clone() for p in params]
    several = len(rollouts) > 1
    start_momentum = _momentum(optimizer, params) if several else []
    ends: list[list[torch.Tensor]] = []
    momenta: list[list[torch.Tensor | None]] = []
    losses, first_norm = [], None
    for r, rollout in enumerate(rollouts):
        if r:
            with torch.no_grad():
                for p, p0 in zip(params, start):
                    p.copy_(p0)
            _set_momentum(optimizer, params, start_momentum)
        for k in range(algorithm.inner_steps):
            loss, norm = optimizer_step(net, x, y, rollout, cfg, optimizer, anchor=start, prox_lambda=algorithm.prox_lambda)
            if k == 0:
                losses.append(loss)
                first_norm = norm if first_norm is None else first_norm
        if several:
            ends.append([p.detach().clone() for p in params])
            momenta.append(_momentum(optimizer, params))
    with torch.no_grad():
        for i, (p, p0) in enumerate(zip(params, start)):
            end = torch.stack([e[i] for e in ends]).mean(0) if several else p.detach().clone()
            p.copy_(torch.lerp(p0, end, cfg.supernet.meta_lr))  # weight 1 gives ``end`` exactly
    if several:
        mean = []
        for i, p in enumerate(params):
            present = [m[i] for m in momenta if m[i] is not None]
            mean.append(torch.stack(present).sum(0) / len(momenta) if present else None)
        _set_momentum(optimizer, params, mean)
    assert first_norm is not None
    return torch.stack(losses).mean(), first_norm


def supernet_update(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rollouts: list[Rollout], cfg: WSConfig,
                    optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of ``supernet.algorithm``: :func:`meta_update` for the Reptile-style algorithms,
    :func:`plain_update` for the rest. Returns the update's loss and first gradient norm."""
    algorithm = ALGORITHMS[cfg.supernet.algorithm]
    update = meta_update if algorithm.is_meta else plain_update
    return update(net, x, y, rollouts, cfg, optimizer, algorithm)


def train_supernet(
    cfg: WSConfig,
    seed: int,
    train: DeviceImages,
    out_dir: Path,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> Path:
    """Train (or resume) the supernet of ``seed`` with ``supernet.algorithm``; returns its checkpoint path.

    A checkpoint (weights, optimizer state, epochs done, per-epoch history) is written atomically
    after every epoch. ``stop_after_epoch`` ends the call early, as a kill would (used by tests).
    Updates run sparse (:func:`supernet_update`) or dense (:class:`~harness.supernet.dense.DenseUpdate`,
    :func:`uses_dense`); both write the same checkpoint, so a run may switch between them.
    """
    from harness.supernet.dense import DenseUpdate  # dense builds on this module

    device = train.device
    sn = cfg.supernet
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(out_dir, seed)
    net = init_supernet(cfg, seed).to(device)
    if uses_channels_last(cfg, device):
        net = net.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(net, cfg)
    start, history = 0, []
    if path.is_file():
        state = load_checkpoint(path, device)
        changes = changed_settings(json.loads(state["config"]), cfg, ("data", "network", "supernet", "device"),
                                   ignore=frozenset({"data.limit_valid"}))  # validation images: finetuning only
        if changes:
            raise HarnessError(f"{path} was trained under other settings ({'; '.join(changes)}); resuming would mix "
                               "two trainings. Resume with its own settings or train into a new folder.")
        if state.get("streams", 1) != rng.STREAMS_VERSION:
            raise HarnessError(f"{path} was trained with the random streams of an older harness (version "
                               f"{state.get('streams', 1)}, now {rng.STREAMS_VERSION}); resuming would change its data "
                               "order mid-run: train it anew in a new folder")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for p, had in zip(net.parameters(), state["has_grad"]):  # zeroed, not freed: update_unsampled
            p.grad = torch.zeros_like(p) if had else None
        start, history = int(state["epoch"]), json.loads(state["history"])
    dense = DenseUpdate(net, cfg, optimizer) if uses_dense(cfg, device) else None
    steps_per_epoch = len(train) // sn.batch_size
    if steps_per_epoch == 0:
        raise HarnessError(f"training split has {len(train)} images, fewer than one batch of {sn.batch_size}")
    total = sn.epochs * steps_per_epoch
    stop = sn.epochs if stop_after_epoch is None else min(stop_after_epoch, sn.epochs)
    for epoch in tqdm(range(start, stop), desc=f"supernet seed {seed}", disable=not progress, initial=start, total=stop):
        net.train()
        started = time.perf_counter()
        losses = torch.zeros(steps_per_epoch, device=device)
        norms = torch.zeros(steps_per_epoch, device=device)
        for i, (x, y, rollouts, weights) in enumerate(_batches(train, cfg, seed, epoch, dense)):
            lr = cosine_lr(epoch * steps_per_epoch + i, total, sn.lr, sn.lr_min)
            if dense is None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
                losses[i], norms[i] = supernet_update(net, x, y, rollouts, cfg, optimizer)
            else:
                assert weights is not None
                losses[i], norms[i] = dense.update(x, y, weights, lr)
        if dense is not None:
            dense.write_back(optimizer, lr)  # the checkpoint keeps torch's SGD state-dict format
        entry = {"epoch": epoch + 1, "train_loss": float(losses.mean()), "grad_norm_median": float(norms.median())}
        if sn.grad_clip is not None:  # norms are before clipping
            entry["clipped_fraction"] = float((norms > sn.grad_clip).float().mean())
        history.append({**entry, "seconds": time.perf_counter() - started})
        state = {
            "model": {name: tensor.clone() for name, tensor in net.state_dict().items()},  # dense: not views of one buffer
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "seed": seed,
            "history": json.dumps(history),
            "config": json.dumps(cfg.to_dict()),
            "streams": rng.STREAMS_VERSION,
            "has_grad": dense.has_grad() if dense is not None else [p.grad is not None for p in net.parameters()],
        }
        _save_atomic(state, path)
    if start >= stop and not path.is_file():  # zero epochs asked: save the initial weights
        _save_atomic({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 0, "seed": seed,
                      "history": "[]", "config": json.dumps(cfg.to_dict()), "streams": rng.STREAMS_VERSION,
                      "has_grad": [False] * len(list(net.parameters()))}, path)
    return path
