"""What each supernet algorithm does to the NB201 supernet, side by side in one run.

1. Training coverage (no data needed): over ``--draws`` updates drawn by each algorithm's sampler
   (:mod:`harness.supernet.sampling`), the fraction of updates in which the ``nor_conv_3x3`` weights
   of each edge of the first cell get a gradient: the op is on one of the update's paths in that cell
   *and* its edge is live there (:func:`harness.supernet.model.live_edges`).
2. Gradient scale (``--data-root``, CIFAR-10): the first ``--steps`` updates of a full-size supernet
   (C=16, N=5, the thesis's settings) trained with each algorithm, on the CPU: the median L2 norm
   of an update's (first) gradient.

    python benchmarks/fairnas_vs_spos.py                          # coverage only
    python benchmarks/fairnas_vs_spos.py --data-root /tmp/data    # and gradient scale (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.spaces.nb201 import EDGES
from harness.supernet.config import WSConfig
from harness.supernet.model import live_edges
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces.nb201 import NB201Space

SPACE = NB201Space()

OP = "nor_conv_3x3"


def coverage(algorithm: str, draws: int, seed: int, n_cells: int = 15) -> np.ndarray:
    """Per edge of the first cell: the fraction of ``draws`` updates in which OP's weights there get a gradient."""
    rng = np.random.default_rng(seed)
    trained = np.zeros(len(EDGES))
    for _ in range(draws):
        hit = np.zeros(len(EDGES), dtype=bool)
        for rollout in ALGORITHMS[algorithm].draw(SPACE, rng, n_cells):
            for path in rollout:
                ops = path[0]
                hit |= np.array([op == OP for op in ops]) & np.array(live_edges(ops))
        trained += hit
    return trained / draws


def gradient_scale(algorithm: str, data_root: Path, steps: int) -> dict[str, float]:
    """The first epoch's history of a full-size supernet trained for ``steps`` minibatches."""
    import torch

    from harness.supernet.train import load_checkpoint, load_images, train_supernet

    cfg = WSConfig().with_overrides(
        data={"root": str(data_root), "limit_train": 64 * steps, "limit_valid": 64},
        supernet={"algorithm": algorithm, "epochs": 1}, device={"device": "cpu"},
    )
    train, _ = load_images(cfg, torch.device("cpu"))
    with tempfile.TemporaryDirectory() as out:
        (entry,) = json.loads(load_checkpoint(train_supernet(cfg, 0, train, Path(out), progress=False))["history"])
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None, help="CIFAR-10 for the gradient-scale part")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    edges = "  ".join(f"{a}->{b}" for a, b in EDGES)
    print(f"fraction of {args.draws} updates in which an edge's {OP} weights (first cell) get a gradient")
    print(f"{'':20s}{edges}")
    for algorithm in ALGORITHMS:
        print(f"{algorithm:20s}" + "  ".join(f"{v:4.2f}" for v in coverage(algorithm, args.draws, args.seed)))
    if args.data_root is None:
        return
    print(f"\nfirst {args.steps} updates, C=16 N=5, the thesis's settings: median L2 norm of an update's first gradient, seconds")
    for algorithm in ALGORITHMS:
        entry = gradient_scale(algorithm, args.data_root, args.steps)
        print(f"{algorithm:20s}{entry['grad_norm_median']:8.2f}  {entry['seconds']:6.1f}")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as err:  # bad arguments or data: one line, no traceback
        raise SystemExit(f"error: {err}") from None
