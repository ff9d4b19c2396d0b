"""NB301 surrogate speed and memory: ours vs the per-config loop YAHPO Gym's objective_function runs.

Measures, in one run:
1. model load time (``load_benchmark("nb301")``: onnxruntime session + encoding check);
2. curves for 350 archs x 98 epochs in one ``query`` (target < 1 s on a 2-core machine), compared with
   the YAHPO Gym way: one config dict per (arch, epoch), encoded one at a time and ``np.vstack``-ed
   onto the batch before a single session call (``BenchmarkSet.objective_function``; re-created here
   from its source because ``yahpo_gym`` is not a dependency; its ConfigSpace validity check is left
   out, which only flatters the peer). The peer is timed on 20 archs and extrapolated to 350 (it is
   quadratic because of the repeated vstack, so the extrapolation is linear = optimistic for it);
3. final predictions (epoch 98) for 10,000 archs;
4. peak RSS of the process.

Run: ``python benchmarks/bench_nb301.py``
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from importlib import resources
from pathlib import Path

import numpy as np

from harness.registry import load_benchmark
from harness.spaces import darts


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def yahpo_style_curves(session, encoding: dict, archs: np.ndarray) -> np.ndarray:
    """The YAHPO Gym objective_function path: per-config dict -> x_cat row, vstack, one run."""
    names = [f"{darts.YAHPO_PREFIX}edge_{c}_{i}" for c in darts.CELLS for i in range(14)]
    names += [f"{darts.YAHPO_PREFIX}inputs_node_{c}_{k}" for c in darts.CELLS for k in (3, 4, 5)]
    x_cat = x_cont = None
    for enc in archs:
        config = {k.replace(":", "_COLON_"): v for k, v in darts.encoding_to_config(enc).items()}
        for epoch in range(1, 99):
            row = np.array([[encoding[n][config.get(n, "#na#")] for n in names]], dtype=np.int32)
            cont = np.array([[epoch]], dtype=np.float32)
            x_cat = row if x_cat is None else np.vstack((x_cat, row))
            x_cont = cont if x_cont is None else np.vstack((x_cont, cont))
    return session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]


def main() -> None:
    start = time.perf_counter()
    bench = load_benchmark("nb301")
    load_s = time.perf_counter() - start

    archs = bench.sample(350, seed=0)

    def ours_curves() -> None:
        bench.surrogate._cache = None  # time the model call, not the one-entry cache
        bench.query(archs, "cifar10", "accuracy", "valid")

    ours_s = best_of(5, ours_curves)

    encoding = json.loads((Path(str(resources.files("harness.embedded") / "nb301")) / "encoding_v2.json").read_text())
    sample = archs[:20]
    peer_sample_s = best_of(2, lambda: yahpo_style_curves(bench.surrogate.session, encoding, sample))
    peer_s = peer_sample_s * len(archs) / len(sample)
    # same numbers both ways
    ours = bench.query(sample, "cifar10", "accuracy", "valid").values[:, 0] / 100
    peer = yahpo_style_curves(bench.surrogate.session, encoding, sample)[:, 0].reshape(len(sample), 98)
    np.testing.assert_allclose(ours, peer, rtol=1e-5)

    many = bench.sample(10_000, seed=1)

    def ours_final() -> None:
        bench.surrogate._cache = None
        bench.final(many, "cifar10", "accuracy", "valid")

    final_s = best_of(3, ours_final)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"{'task':<48}{'harness':>12}{'YAHPO-style loop':>20}{'speed-up':>10}")
    print(f"{'model load (session + encoding check)':<48}{load_s:>11.3f}s{'-':>20}{'':>10}")
    print(f"{'curves 350 archs x 98 epochs (34,300 rows)':<48}{ours_s:>11.3f}s{peer_s:>19.1f}s{peer_s / ours_s:>9.0f}x")
    print(f"{'  (peer timed on 20 archs, extrapolated)':<48}{'':>12}{peer_sample_s:>19.2f}s")
    print(f"{'final accuracy (epoch 98), 10,000 archs':<48}{final_s:>11.3f}s{'-':>20}")
    print(f"{'peak RSS of this process':<48}{peak_mb:>10.0f}MB")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
