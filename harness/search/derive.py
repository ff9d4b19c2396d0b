"""The arch a differentiable search has found, and what the benchmark says about it (torch-free).

The derived arch of architecture weights ``alpha[edge, op]`` (:data:`~harness.spaces.nb201.EDGES` x
:data:`~harness.spaces.nb201.OPS`) takes on every edge the op of largest weight, ``none`` included,
as NB201's DARTS search models derive their genotype (``genotype()``: argmax over all ops of each
edge); a tie goes to the op first in OPS (``numpy.argmax``). Its truth is looked up in the embedded
NB201 table (``load_benchmark("nb201")``): the seed-mean final test accuracies it holds for every arch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.benchmark import Benchmark
from harness.errors import HarnessError
from harness.spaces.nb201 import EDGES, OPS, Ops, ops_to_arch

PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
# column -> (dataset, split, schedule) of the embedded NB201 table
TRUTH_COLUMNS: dict[str, tuple[str, str, str]] = {
    "cifar10_test_200": ("cifar10", "ori-test", "200"),
    "cifar10_test_12": ("cifar10", "ori-test", "12"),
    "cifar100_test_12": ("cifar100", "x-test", "12"),
    "imagenet16_test_12": ("ImageNet16-120", "x-test", "12"),
}


def derived_ops(alpha: np.ndarray) -> Ops:
    """The op of largest weight on each edge of ``alpha`` (``[6, 5]``)."""
    alpha = np.asarray(alpha)
    if alpha.shape != (len(EDGES), len(OPS)) or not np.isfinite(alpha).all():
        raise HarnessError(f"architecture weights must be finite, of shape [edges, ops] = [6, 5], got {list(alpha.shape)}")
    return tuple(OPS[int(i)] for i in np.argmax(alpha, axis=1))  # type: ignore[return-value]


def describe(alpha: np.ndarray, bench: Benchmark) -> dict[str, Any]:
    """The derived arch of ``alpha``: its string, NB201 index, skip and parameter-free op counts, and
    the :data:`TRUTH_COLUMNS` accuracies (%) from ``bench`` (the embedded NB201 benchmark)."""
    ops = derived_ops(alpha)
    index = int(bench.resolve([ops])[0])
    out: dict[str, Any] = {
        "arch": ops_to_arch(ops),
        "arch_index": index,
        "n_skip": sum(op == "skip_connect" for op in ops),
        "n_parameter_free": sum(op in PARAMETER_FREE for op in ops),
    }
    for column, (dataset, split, schedule) in TRUTH_COLUMNS.items():
        out[column] = float(bench.final([index], dataset, "accuracy", split, schedule)[0])
    return out
