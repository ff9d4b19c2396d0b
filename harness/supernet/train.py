"""Supernet training (SPOS or FairNAS) with per-epoch checkpoints and exact resume.

Each minibatch trains the paths that ``supernet.algorithm``'s sampler draws
(:mod:`harness.supernet.sampling`): one uniformly drawn arch for SPOS / RandomNAS (Guo et al. 2020,
"Single Path One-Shot"; Li & Talwalkar 2019, "Random Search and Reproducibility for NAS"), five
arch paths that together place every op of every edge once for FairNAS (Chu et al. 2021). The paths
run on the same minibatch, their gradients add up, ``g = sum_k grad L(w; path_k, batch)``, and one
SGD step follows (momentum, weight decay, gradient clipping of g, and a per-step cosine schedule
``lr_t = lr_min + (lr - lr_min) * (1 + cos(pi * t / T)) / 2`` over all T steps). Ops on no
sampled path get no gradient, so SGD leaves them (and their momentum) untouched in that step. The
logged loss of a step is the mean over its paths.

Randomness: epoch e draws its sample order, augmentation and archs from
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from harness.atomic import write_atomic
from harness.data.loader import DeviceImages
from harness import rng
from harness.data.nb201 import dataset_info, load_nb201
from harness.errors import HarnessError
from harness.supernet.config import WSConfig, changed_settings
from harness.supernet.model import NB201Network, NetworkShape
from harness.supernet.sampling import ALGORITHMS, PathOps

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


def network_shape(cfg: WSConfig) -> NetworkShape:
    net = cfg.network
    return NetworkShape(
        channels=net.channels,
        cells_per_stage=net.cells_per_stage,
        n_classes=dataset_info(cfg.data.dataset).n_classes,
        bn_affine=net.bn_affine,
        bn_track_running_stats=net.bn_track_running_stats,
    )


def uses_channels_last(cfg: WSConfig, device: torch.device) -> bool:
    return cfg.device.channels_last and device.type == "cuda"


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
    last = uses_channels_last(cfg, device)
    return DeviceImages(train, info, device, last), DeviceImages(valid, info, device, last)


def init_supernet(cfg: WSConfig, seed: int) -> NB201Network:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NB201Network(network_shape(cfg))


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


def load_supernet(path: Path, cfg: WSConfig, device: torch.device, allow_unfinished: bool = False) -> NB201Network:
    """The trained supernet; an unfinished one (fewer epochs than configured) only if allowed."""
    state = load_checkpoint(path, device)
    net = NB201Network(network_shape(cfg)).to(device)
    net.load_state_dict(state["model"])
    if state["epoch"] != cfg.supernet.epochs and not allow_unfinished:
        raise HarnessError(f"{path} holds epoch {state['epoch']} of {cfg.supernet.epochs}; finish training first")
    return net


def _batches(train: DeviceImages, cfg: WSConfig, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[PathOps]]]:
    """Epoch ``epoch``'s minibatches and the paths each trains. All draws are made up front and sent to the device in
    one transfer per array, so the loop itself never waits on a host-to-device copy."""
    order_rng = epoch_rng(seed, epoch, STREAM_ORDER)
    augment_rng = epoch_rng(seed, epoch, STREAM_AUGMENT)
    arch_rng = epoch_rng(seed, epoch, STREAM_ARCH)
    index = np.stack(train.epoch_batches(order_rng, cfg.supernet.batch_size))
    draws = [train.draw_augmentation(augment_rng, index.shape[1]) for _ in range(len(index))]
    sample = ALGORITHMS[cfg.supernet.algorithm].paths
    paths = [sample(arch_rng) for _ in range(len(index))]
    index_t = train.to_device(index)
    offsets_t = train.to_device(np.stack([d[0] for d in draws]))
    flips_t = train.to_device(np.stack([d[1] for d in draws]))
    for i, step_paths in enumerate(paths):
        x, y = train.gather(index_t[i], offsets_t[i], flips_t[i])
        yield x, y, step_paths


def supernet_step(
    net: NB201Network, x: torch.Tensor, y: torch.Tensor, paths: list[PathOps], cfg: WSConfig,
    optimizer: torch.optim.Optimizer,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update: the gradients of every path's loss on ``(x, y)`` added up, clipped to norm
    ``supernet.grad_clip``, one optimizer step. Returns the mean loss over the paths and the L2
    norm of the summed gradient before clipping (0-d tensors, left on the device)."""
    optimizer.zero_grad(set_to_none=True)
    losses = []
    for ops in paths:
        with autocast(cfg, x.device):
            loss = torch.nn.functional.cross_entropy(net(x, ops), y)
        loss.backward()
        losses.append(loss.detach())
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.supernet.grad_clip)
    optimizer.step()
    return torch.stack(losses).mean(), norm


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
    """
    device = train.device
    sn = cfg.supernet
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(out_dir, seed)
    net = init_supernet(cfg, seed).to(device)
    if uses_channels_last(cfg, device):
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=sn.lr, momentum=sn.momentum, weight_decay=sn.weight_decay)
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
        start, history = int(state["epoch"]), json.loads(state["history"])
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
        for i, (x, y, paths) in enumerate(_batches(train, cfg, seed, epoch)):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(epoch * steps_per_epoch + i, total, sn.lr, sn.lr_min)
            losses[i], norms[i] = supernet_step(net, x, y, paths, cfg, optimizer)
        history.append({
            "epoch": epoch + 1, "train_loss": float(losses.mean()),
            "grad_norm_median": float(norms.median()),  # before clipping
            "clipped_fraction": float((norms > sn.grad_clip).float().mean()),
            "seconds": time.perf_counter() - started,
        })
        state = {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "seed": seed,
            "history": json.dumps(history),
            "config": json.dumps(cfg.to_dict()),
            "streams": rng.STREAMS_VERSION,
        }
        _save_atomic(state, path)
    if start >= stop and not path.is_file():  # zero epochs asked: save the initial weights
        _save_atomic({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 0, "seed": seed,
                      "history": "[]", "config": json.dumps(cfg.to_dict()), "streams": rng.STREAMS_VERSION}, path)
    return path
