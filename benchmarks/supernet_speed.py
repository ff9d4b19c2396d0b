"""Supernet training speed: the harness's update against a plain PyTorch loop of the same single-path model.

In one run, on one device and thread count, over the same minibatches (drawn from CIFAR-10 in the
harness's device-side loader, so data loading is the same and small for both):

* ``plain``: a standalone NB201 network of one fixed arch (``materialise``), ``torch.optim.SGD``
  (Nesterov momentum 0.9, wd 5e-4), ``zero_grad / forward / cross_entropy / backward / step`` - the
  loop a PyTorch user writes for that model;
* ``harness fixed``: the harness's :func:`harness.supernet.train.supernet_update` on the supernet,
  every step the same arch as ``plain`` (the cost of the shared supernet and the update logic);
* ``harness <algorithm>``: the same with the algorithm's own sampled paths (per-cell SPOS draws,
  FairNAS's 5 paths, ...), i.e. what ``harness ws train`` runs per minibatch.

Prints updates per second and milliseconds per update, best of ``--repeats``.

    python benchmarks/supernet_speed.py --data-root DATA                         # mini-protocol network, CPU
    python benchmarks/supernet_speed.py --data-root DATA --full --device cuda    # C=16, N=5, 32x32 on a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harness.errors import HarnessError
from harness.supernet.config import WSConfig
from harness.supernet.model import materialise
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.train import cpu_threads, init_supernet, load_images, make_optimizer, resolve_device, supernet_update

FIXED_ARCH = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "avg_pool_3x3")


def config(args: argparse.Namespace) -> WSConfig:
    network = {"channels": 16, "cells_per_stage": 5} if args.full else {"channels": 8, "cells_per_stage": 2}
    data = {"root": str(args.data_root), "limit_train": 64 * (args.steps + 1), "limit_valid": 64}
    if not args.full:
        data["image_size"] = 16
    return WSConfig().with_overrides(data=data, network=network, device={"device": args.device, "threads": args.threads})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loop(step, batches, device: torch.device, repeats: int) -> float:
    """Best-of-``repeats`` seconds per call of ``step(x, y, i)`` over ``batches`` (after one warm-up call)."""
    x, y = batches[0]
    step(x, y, 0)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        for i, (x, y) in enumerate(batches):
            step(x, y, i)
        _sync(device)
        best = min(best, (time.perf_counter() - started) / len(batches))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="CIFAR-10 in torchvision's layout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (both loops)")
    parser.add_argument("--steps", type=int, default=50, help="minibatches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the thesis's network (C=16, N=5, 32x32) instead of the mini protocol's")
    parser.add_argument("--algorithms", default="spos,fairnas,multipath,reptile,metaprox")
    args = parser.parse_args()
    cfg = config(args)
    device = resolve_device(cfg)
    train, _ = load_images(cfg, device)
    rng = np.random.default_rng(0)
    batches = [train.batch(rng.choice(len(train), 64, replace=False), rng) for _ in range(args.steps)]
    print(f"C={cfg.network.channels} N={cfg.network.cells_per_stage} {train.side}x{train.side} batch 64, {device}, "
          f"{cfg.device.threads} thread(s), best of {args.repeats} x {args.steps} updates")
    with cpu_threads(cfg):
        results = {}
        net = materialise(init_supernet(cfg, 0), FIXED_ARCH).to(device)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)

        def plain_step(x: torch.Tensor, y: torch.Tensor, i: int) -> None:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

        results["plain PyTorch, fixed arch"] = (time_loop(plain_step, batches, device, args.repeats), 1)
        supernet = init_supernet(cfg, 0).to(device)
        sn_optimizer = make_optimizer(supernet, cfg)
        fixed = [[(FIXED_ARCH,) * cfg.n_cells]]
        results["harness, fixed arch"] = (time_loop(lambda x, y, i: supernet_update(supernet, x, y, fixed, cfg, sn_optimizer),
                                                    batches, device, args.repeats), 1)
        for name in args.algorithms.split(","):
            if name not in ALGORITHMS:
                raise HarnessError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
            algo_cfg = cfg.with_overrides(supernet={"algorithm": name})
            algorithm = ALGORITHMS[name]
            draws = [algorithm.draw(rng, cfg.n_cells) for _ in batches]
            passes = sum(len(rollout) for rollout in draws[0]) * algorithm.inner_steps
            step = lambda x, y, i, d=draws, c=algo_cfg: supernet_update(supernet, x, y, d[i], c, sn_optimizer)  # noqa: E731
            results[f"harness, {name}"] = (time_loop(step, batches, device, args.repeats), passes)
    plain = results["plain PyTorch, fixed arch"][0]
    print(f"{'loop':32s} {'ms/update':>10s} {'updates/s':>10s} {'fwd+bwd/update':>15s} {'x plain':>8s}")
    for name, (seconds, passes) in results.items():
        print(f"{name:32s} {1000 * seconds:10.2f} {1 / seconds:10.1f} {passes:15d} {seconds / plain:8.2f}")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as err:
        raise SystemExit(f"error: {err}") from None
