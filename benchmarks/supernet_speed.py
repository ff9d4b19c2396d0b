"""Supernet training speed: the harness's update, sparse and dense, against a plain PyTorch loop of the same single-path model.

In one run, on one device and thread count, over the same minibatches (drawn from CIFAR-10 in the
harness's device-side loader, so data loading is the same and small for all), on NB201 (the default
networks below) or on the space and network of a weight-sharing config (``--config``: NAS-Bench-1Shot1,
DARTS, NB201):

* ``plain``: a standalone network of one fixed arch (the space's ``materialise_group`` of that arch
  alone: a plain ``nn.Module`` with copies of its supernet weights), ``torch.optim.SGD`` (Nesterov
  momentum 0.9, the config's weight decay), ``zero_grad / forward / cross_entropy / backward / step`` -
  the loop a PyTorch user writes for that model. The arch: ``--arch`` (the space's text form), else a
  mid-size NB201 arch (``FIXED_ARCH``) on the default networks and the first arch of the config's arch
  set with ``--config``;
* ``sparse fixed``: the harness's :func:`harness.supernet.train.supernet_update` on the supernet,
  every step the same arch as ``plain`` (the cost of the shared supernet and the update logic);
* ``sparse <algorithm>``: the same with the algorithm's own sampled paths (per-cell SPOS draws,
  FairNAS's 5 paths, ...), i.e. what ``harness ws train`` runs per minibatch with
  ``device.dense_supernet = "off"`` (the CPU default);
* ``dense fixed`` and ``dense <algorithm>``: :class:`harness.supernet.dense.DenseUpdate`, every op of
  every edge run and weighted 0/1 by the path, the update ``harness ws train`` runs on CUDA by
  default (NB201 only; skipped on the other spaces). On a GPU (with ``device.cuda_graphs``) each
  algorithm's update is captured once as a CUDA graph after its warm-up and replayed; on a CPU it runs
  eagerly and is slower than the sparse update: it computes all 4 ops on all 6 edges of every cell (4x
  the convolutions of an average path).

Each network is set up as ``train_supernet`` sets it up (channels-last on CUDA, bf16 autocast per
``device.amp``). Prints one row per loop as soon as it is timed (updates per second, milliseconds per
update, best of ``--repeats``), so a run stopped by a time limit keeps what it measured.

    python benchmarks/supernet_speed.py --data-root DATA --steps 20 --repeats 2      # mini-protocol network, CPU
    python benchmarks/supernet_speed.py --data-root DATA --full --device cuda        # C=16, N=5, 32x32 on a GPU
    python benchmarks/supernet_speed.py --data-root DATA --threads 1 --steps 20 --repeats 2 \
        --config configs/ws-mini-cpu-darts.toml --algorithms spos,multipath,metaprox     # another space's mini network
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError
from harness.supernet.config import WSConfig, load_config
from harness.supernet.dense import DenseUpdate
from harness.supernet.sampling import ALGORITHMS, Rollout
from harness.supernet.spaces import get_space
from harness.supernet.train import (
    cpu_threads,
    init_supernet,
    load_images,
    make_optimizer,
    resolve_device,
    supernet_update,
    uses_channels_last,
)

FIXED_ARCH = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "avg_pool_3x3")
Step = Callable[[torch.Tensor, torch.Tensor, int], object]


def config(args: argparse.Namespace) -> WSConfig:
    """``--config``'s space and network, else NB201's mini-protocol network (``--full``: the thesis's), with
    ``--steps`` minibatches of training images and this run's device and threads."""
    data: dict[str, object] = {"root": str(args.data_root), "limit_train": 64 * (args.steps + 1), "limit_valid": 64}
    device = {"device": args.device, "threads": args.threads}
    if args.config is not None:
        if args.full:
            raise HarnessError("--full sets NB201's network; with --config the config's network is timed")
        return load_config(args.config).with_overrides(data=data, device=device)
    network = {"channels": 16, "cells_per_stage": 5} if args.full else {"channels": 8, "cells_per_stage": 2}
    if not args.full:
        data["image_size"] = 16
    return WSConfig().with_overrides(data=data, network=network, device=device)


def fixed_arch(args: argparse.Namespace, cfg: WSConfig) -> str:
    """The plain loop's arch as text (module docstring)."""
    if args.arch is not None:
        return args.arch
    if args.config is None:
        return get_space(cfg.space).encode(FIXED_ARCH)
    return get_space(cfg.space).arch_set(cfg).arches[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loop(step: Step, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device, repeats: int,
              warmup: int = 1) -> float:
    """Best-of-``repeats`` seconds per call of ``step(x, y, i)`` over ``batches`` (after ``warmup`` calls)."""
    for i in range(warmup):
        step(*batches[i % len(batches)], i % len(batches))
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        for i, (x, y) in enumerate(batches):
            step(x, y, i)
        _sync(device)
        best = min(best, (time.perf_counter() - started) / len(batches))
    return best


def training_supernet(cfg: WSConfig, device: torch.device) -> torch.nn.Module:
    """The supernet as ``train_supernet`` builds it (seed 0; channels-last on CUDA)."""
    net = init_supernet(cfg, 0).to(device)
    return net.to(memory_format=torch.channels_last) if uses_channels_last(cfg, device) else net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="CIFAR-10 in torchvision's layout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (every loop)")
    parser.add_argument("--steps", type=int, default=50, help="minibatches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the thesis's NB201 network (C=16, N=5, 32x32) instead of the mini protocol's")
    parser.add_argument("--config", type=Path, help="a weight-sharing config whose space and network to time (default: NB201's)")
    parser.add_argument("--arch", help="the fixed arch, in the space's text form (default: module docstring)")
    parser.add_argument("--algorithms", default="spos,fairnas,multipath,reptile,metaprox")
    parser.add_argument("--updates", default="sparse,dense", help="which supernet updates to time (sparse, dense or both)")
    args = parser.parse_args()
    names = args.algorithms.split(",")
    updates = args.updates.split(",")
    for name in names:
        if name not in ALGORITHMS:
            raise HarnessError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
    if not updates or not set(updates) <= {"sparse", "dense"}:
        raise HarnessError(f"--updates takes sparse, dense or both (comma-separated), got {args.updates!r}")
    cfg = config(args)
    space = get_space(cfg.space)
    for name in names:
        if name in space.refused_algorithms:
            raise HarnessError(f"{name} on {space.label}: {space.refused_algorithms[name]}")
    if "dense" in updates and not space.supports_dense:
        print(f"(no dense update on {space.label}: timing the sparse update only)", flush=True)
        updates = [update for update in updates if update != "dense"]
    arch_text = fixed_arch(args, cfg)
    arch = space.decode(arch_text)
    device = resolve_device(cfg)
    train, _ = load_images(cfg, device)
    rng = np.random.default_rng(0)
    batches = [train.batch(rng.choice(len(train), 64, replace=False), rng) for _ in range(args.steps)]
    graphs = device.type == "cuda" and cfg.device.cuda_graphs
    print(f"{space.label}, C={cfg.network.channels} N={cfg.network.cells_per_stage} {train.side}x{train.side} batch 64, "
          f"fixed arch {arch_text}, {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, torch {torch.__version__}, "
          f"{cfg.device.threads} thread(s), amp {cfg.device.amp and device.type == 'cuda'}, dense with CUDA graphs {graphs}, "
          f"best of {args.repeats} x {args.steps} updates", flush=True)
    print(f"{'loop':32s} {'ms/update':>10s} {'updates/s':>10s} {'fwd+bwd/update':>15s} {'x plain':>8s}", flush=True)
    with cpu_threads(cfg):
        net = space.materialise_group(init_supernet(cfg, 0), [arch]).to(device)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, nesterov=True,
                                    weight_decay=cfg.supernet.weight_decay)

        def plain_step(x: torch.Tensor, y: torch.Tensor, i: int) -> None:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x)[:, 0], y).backward()
            optimizer.step()

        plain = time_loop(plain_step, batches, device, args.repeats)

        def report(name: str, seconds: float, passes: int) -> None:
            print(f"{name:32s} {1000 * seconds:10.2f} {1 / seconds:10.1f} {passes:15d} {seconds / plain:8.2f}", flush=True)

        report("plain PyTorch, fixed arch", plain, 1)
        fixed: list[Rollout] = [[space.arch_path(arch, cfg.n_cells)]]
        loops: list[tuple[str, str, list[list[Rollout]]]] = [("spos", "fixed arch", [fixed] * len(batches))]
        for name in names:
            algorithm = ALGORITHMS[name]
            loops.append((name, name, [algorithm.draw(space, rng, cfg.n_cells) for _ in batches]))
        for update in updates:
            for name, label, draws in loops:
                algo_cfg = cfg.with_overrides(supernet={"algorithm": name})
                algorithm = ALGORITHMS[name]
                passes = sum(len(rollout) for rollout in draws[0]) * algorithm.inner_steps
                supernet = training_supernet(algo_cfg, device)
                sn_optimizer = make_optimizer(supernet, algo_cfg)
                if update == "sparse":
                    step: Step = lambda x, y, i, d=draws, c=algo_cfg, n=supernet, o=sn_optimizer: supernet_update(n, x, y, d[i], c, o)  # noqa: E731
                    warmup = 1
                else:
                    dense = DenseUpdate(supernet, algo_cfg, sn_optimizer)
                    weights = [torch.from_numpy(dense.weights(d)).to(device) for d in draws]
                    step = lambda x, y, i, w=weights, u=dense: u.update(x, y, w[i], 0.025)  # noqa: E731
                    warmup = DenseUpdate.WARMUP + 1  # eager warm-up, then the capture
                report(f"{update}, {label}", time_loop(step, batches, device, args.repeats, warmup), passes)


if __name__ == "__main__":
    try:
        main()
    except HarnessError as err:
        raise SystemExit(f"error: {err}") from None
