"""NB201 train-loss matrix: nats_bench fast mode vs the harness columnar store, side by side.

Task: the cifar10-valid, hp=200 train-loss matrix of all 15,625 archs x 3 seeds x 200 epochs.

1. Writes a full-size NATS-Bench tss "simple" directory with synthetic values in the official layout
   (``tests/nb201_fixtures.write_full_simple_dir``; reused if already there).
2. nats_bench 1.8, fast mode, the way users do it: ``get_more_info(index, "cifar10-valid", iepoch,
   hp="200", is_random=seed)["train-loss"]`` per arch, seed and epoch. Timed on a random sample of
   archs and extrapolated linearly to 15,625 (each arch's first call also decodes its file).
3. Ours: ``convert_nb201`` once (timed), then in a fresh subprocess ``load_benchmark("nb201",
   root=store).query(all archs, "cifar10-valid", "loss", "train", "200")`` (timed, peak RSS of that
   process). The sampled archs' values are checked equal to nats_bench's (float32 rounding).

Run: ``python benchmarks/bench_nb201_store.py [--workdir DIR] [--sample N] [--workers W]`` (default
workdir /tmp/harness-bench-nb201, about 2.7 GB of disk; default workers ``os.cpu_count()``, the
processes that decode the arch files during the conversion).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from harness.adapters.nb201_convert import convert_nb201  # noqa: E402
from nb201_fixtures import official_meta_archs, write_full_simple_dir  # noqa: E402

DATASET, HP, SEEDS, EPOCHS = "cifar10-valid", "200", (777, 888, 999), 200
N_ARCHS = 15_625

OPEN_AND_READ = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from harness import load_benchmark
t1 = time.perf_counter()
bench = load_benchmark("nb201", root=sys.argv[1])
result = bench.query(np.arange(15625), "cifar10-valid", "loss", "train", "200")
t2 = time.perf_counter()
np.save(sys.argv[2], result.values)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the (big) parent process
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"import_s": t1 - t0, "open_read_s": t2 - t1, "shape": list(result.values.shape),
                  "peak_rss_mb": hwm_kb / 1024}))
"""


def time_nats_bench(directory: Path, archs: np.ndarray) -> tuple[float, np.ndarray]:
    from nats_bench import create

    api = create(str(directory), "tss", fast_mode=True, verbose=False)
    matrix = np.empty((len(archs), len(SEEDS), EPOCHS))
    start = time.perf_counter()
    for a, index in enumerate(archs):
        for s, seed in enumerate(SEEDS):
            for iepoch in range(EPOCHS):
                matrix[a, s, iepoch] = api.get_more_info(int(index), DATASET, iepoch, HP, is_random=seed)["train-loss"]
    return time.perf_counter() - start, matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/harness-bench-nb201"))
    parser.add_argument("--sample", type=int, default=40, help="archs timed through nats_bench")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="reading processes of the conversion")
    args = parser.parse_args()
    source = args.workdir / "NATS-tss-v1_0-3ffb9-simple"
    store = args.workdir / "store"

    start = time.perf_counter()
    write_full_simple_dir(source, official_meta_archs())
    print(f"synthetic NATS directory ready in {time.perf_counter() - start:.0f} s: {source}")

    archs = np.sort(np.random.default_rng(0).choice(N_ARCHS, size=args.sample, replace=False))
    nats_s, nats_matrix = time_nats_bench(source, archs)
    nats_per_arch = nats_s / len(archs)

    start = time.perf_counter()
    convert_nb201(source, store, overwrite=True, workers=args.workers)
    convert_s = time.perf_counter() - start

    out = subprocess.run(
        [sys.executable, "-c", OPEN_AND_READ, str(store), str(args.workdir / "matrix.npy")],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    ours = json.loads(out.stdout.strip().splitlines()[-1])
    matrix = np.load(args.workdir / "matrix.npy")
    assert matrix.shape == (N_ARCHS, len(SEEDS), EPOCHS)
    np.testing.assert_array_equal(matrix[archs], nats_matrix.astype(np.float32).astype(np.float64))

    nats_total = nats_per_arch * N_ARCHS
    print()
    print(f"cifar10-valid hp=200 train-loss matrix, {N_ARCHS} archs x {len(SEEDS)} seeds x {EPOCHS} epochs")
    print(f"{'':34s} {'nats_bench 1.8 fast mode':>26s} {'harness store':>16s}")
    conversion = f"one-off conversion ({args.workers} workers)"
    print(f"{conversion:34s} {'-':>26s} {convert_s:>14.0f} s")
    print(f"{'build the full matrix':34s} {nats_total / 60:>22.1f} min* {ours['open_read_s']:>14.3f} s")
    print(f"{'  per arch':34s} {nats_per_arch * 1e3:>23.1f} ms {ours['open_read_s'] / N_ARCHS * 1e6:>13.1f} us")
    print(f"{'speed-up (matrix)':34s} {'1x':>26s} {nats_total / ours['open_read_s']:>15.0f}x")
    print(f"{'peak RSS of the reading process':34s} {'-':>26s} {ours['peak_rss_mb']:>13.0f} MB")
    print(f"* extrapolated from {len(archs)} random archs ({nats_s:.1f} s); values of those archs identical in both.")
    print(f"  ours: open + read in a fresh process (python + numpy/pandas import {ours['import_s']:.2f} s not counted),")
    print("  page cache warm after the conversion.")


if __name__ == "__main__":
    main()
