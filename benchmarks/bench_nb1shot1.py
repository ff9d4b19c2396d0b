"""NAS-Bench-1Shot1: the cost of resolving configurations to NB101 cells, per space.

``Nb1Shot1Benchmark.resolve`` turns each configuration into its NB101 spec, prunes it and hashes it
(the official isomorphism-invariant hash) before the NB101 data can be read. This script times that
step on a seeded sample of each space's configurations (best of 3) and extrapolates to the whole
space: what a correlation run with ``n_archs = "all"`` (or dedup / degenerate drops) pays, and why
the runner otherwise draws its archs per repetition and resolves only those. No peer is timed: the
official NAS-Bench-1Shot1 code resolves through the TensorFlow 1 ``nasbench`` API, which does not
install here.

Run: ``python benchmarks/bench_nb1shot1.py [--sample 3000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness.spaces.nb1shot1 import search_space


def seconds_per_config(number: int, sample: int) -> float:
    """Best-of-3 seconds to resolve one configuration of space ``number`` to its NB101 hash."""
    space = search_space(number)
    indices = np.random.default_rng(0).choice(space.n_configs, size=min(sample, space.n_configs), replace=False)
    configs = [space.config(int(i)) for i in indices]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for config in configs:
            space.to_spec(config).hash()
        best = min(best, time.perf_counter() - start)
    return best / len(configs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=3000, help="configurations timed per space")
    args = parser.parse_args()
    print(f"{'space':>6s} {'configurations':>15s} {'per config':>12s} {'whole space':>13s}")
    for number in (1, 2, 3):
        per = seconds_per_config(number, args.sample)
        n = search_space(number).n_configs
        print(f"{number:>6d} {n:>15,d} {per * 1e3:>9.3f} ms {per * n:>11.0f} s")


if __name__ == "__main__":
    main()
