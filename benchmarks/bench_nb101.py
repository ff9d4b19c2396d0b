"""NAS-Bench-101 at full size: write a 423,624-cell x 3-repeat tfrecord in the official format
(only108 layout), convert it, open the store and time queries; print peak RSS.

    python benchmarks/bench_nb101.py [/tmp/nb101-bench]

Cells: the 1,000 real embedded cells (real hash and cell) plus synthetic records (hash = md5 of the
index, a real cell's adjacency/ops); values synthetic. The official loader cannot run here
(TensorFlow 1 does not install), so its figures are the published ones, not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from harness.adapters import nb101
from harness.adapters.nb101_tfrecord import EvaluationData, ModelMetrics, encode_record, write_tfrecord
from harness.spaces.nb101 import ModelSpec

N_CELLS = 423_624


def payloads(table, rng):
    cells = list(zip(table.hash, table.adjacency, table.operations, table.params))
    for i in range(N_CELLS):
        real_hash, adjacency, operations, params = cells[i % len(cells)]
        module_hash = real_hash if i < len(cells) else hashlib.md5(str(i).encode()).hexdigest()
        ops = operations.split(",")
        matrix = np.frombuffer(adjacency.encode(), np.uint8).reshape(len(ops), len(ops)) - 48
        acc = rng.uniform(0.8, 0.95, 6)
        for _ in range(3):
            evals = (EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1), EvaluationData(54.0, 900.0, *acc[:3]),
                     EvaluationData(108.0, 1800.0, *acc[3:]))
            yield encode_record(module_hash, 108, matrix, ops, ModelMetrics(evals, int(params), 1900.0))


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    src, dest = work / "nasbench_only108_synthetic.tfrecord", work / "store"
    table = nb101.embedded_table()
    t = time.perf_counter()
    write_tfrecord(src, payloads(table, np.random.default_rng(0)))
    t_write = time.perf_counter() - t
    shutil.rmtree(dest, ignore_errors=True)
    t = time.perf_counter()
    nb101.convert(src, dest)
    t_convert = time.perf_counter() - t
    t = time.perf_counter()
    bench = nb101.open_benchmark(dest)
    t_open = time.perf_counter() - t
    specs = [ModelSpec(np.frombuffer(a.encode(), np.uint8).reshape(len(o.split(",")), -1) - 48, o.split(","))
             for a, o in zip(table.adjacency[:200], table.operations[:200])]
    t = time.perf_counter()
    for s in specs:
        bench.query(s, "cifar10", "accuracy", "valid", "108")
    t_spec = (time.perf_counter() - t) / len(specs)
    t = time.perf_counter()
    hashes = [s.hash() for s in specs]
    t_hash = (time.perf_counter() - t) / len(specs)
    t = time.perf_counter()
    for h in hashes:
        bench.query(h, "cifar10", "accuracy", "valid", "108")
    t_by_hash = (time.perf_counter() - t) / len(hashes)
    t = time.perf_counter()
    res = bench.query(np.arange(N_CELLS), "cifar10", "accuracy", "valid", "108")
    t_bulk = time.perf_counter() - t
    assert res.values.shape == (N_CELLS, 3, 2)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {src.stat().st_size / 1e6:.0f} MB, {3 * N_CELLS:,} records (write {t_write:.1f} s)")
    print(f"{'':38s}{'harness':>14s}{'official nasbench (published)':>34s}")
    print(f"{'load / convert once':38s}{t_convert:>12.1f} s{'120 s every load (~30 s PR 33)':>34s}")
    print(f"{'open':38s}{t_open * 1e3:>11.0f} ms{'4 s from a pickle cache':>34s}")
    print(f"{'query by spec (prune+hash+lookup)':38s}{t_spec * 1e6:>11.0f} us")
    print(f"{'  of which hashing':38s}{t_hash * 1e6:>11.0f} us")
    print(f"{'query by hash':38s}{t_by_hash * 1e6:>11.0f} us")
    print(f"{'bulk: all cells x 3 seeds x 2 epochs':38s}{t_bulk * 1e3:>11.0f} ms")
    print(f"{'peak RSS (whole run)':38s}{rss_mb:>11.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, nargs="?", default=Path("/tmp/nb101-bench"),
                        help="scratch folder for the synthetic tfrecord (about 0.5 GB) and its store (default /tmp/nb101-bench)")
    main(parser.parse_args().work)
