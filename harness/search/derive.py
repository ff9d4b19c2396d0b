"""The arch a differentiable search has found, and what the benchmark says about it (torch-free).

An arch is derived from the search's *op weights* ``W``, the architecture weights as the algorithm
normalises them for derivation (:data:`harness.search.algorithms.DERIVATION`: ``softmax(alpha)`` for
the DARTS family and DrNAS, ``alpha`` itself for GAEA), of ``alpha``'s shape. Every description also
gives the derived cell's depth (:mod:`harness.search.diagnostics`; the DARTS space's normal cell).

**NB201.** The derived arch of op weights ``W[edge, op]`` (:data:`~harness.spaces.nb201.EDGES` x
:data:`~harness.spaces.nb201.OPS`) takes on every edge the op of largest weight, ``none`` included,
as NB201's DARTS search models derive their genotype (``genotype()``: argmax over all ops of each
edge); a tie goes to the op first in OPS (``numpy.argmax``). A monotone normalisation per edge (the
softmax) leaves it unchanged. Its truth is looked up in the embedded NB201 table
(``load_benchmark("nb201")``): the seed-mean final test accuracies it holds for every arch.

**DARTS space** (and its subspaces, such as S2). Op weights ``W[cell type, edge, op]`` are ``[2, 14, len(ops)]``: cell type 0 normal, 1 reduction; edge ``EDGE_START[m] + j`` from node j
into node m + 2 (:mod:`harness.spaces.darts`); the op axis over the search's candidate ops ``ops``
(:func:`~harness.spaces.darts.check_candidates`; DARTS's: all of
:data:`~harness.spaces.darts.PRIMITIVES`, ``none`` first). The derived genotype is DARTS's
(quark0/darts ``cnn/model_search.py``, ``Network.genotype``, which reads ``w = softmax(alpha)``; DrNAS's
``DARTS-space/model_search.py`` alike), read off the op weights ``w``: per cell type and intermediate node m + 2, the strength of
each incoming edge is its largest ``w`` over the ops other than ``none`` (``none`` still counts in
the normalisation); the node keeps its 2 strongest edges, and on each the op other than
``none`` of largest ``w``. With no ``none`` among the ops (S2) every op counts, as automl/RobustDARTS
``src/search/model_search.py`` then derives. Ties are settled as DARTS's code settles them: between
edges of equal strength the one from the lower input node (its stable sort), between ops of equal
weight the one first in ``ops`` (its strict ``>``). The genotype is returned canonical. Its truth is
NB301's embedded YAHPO surrogate's predicted cifar10 validation accuracy (%) at its last epoch, 98
(:func:`harness.supernet.spaces.darts.surrogate_accuracy`, the truth of weight-sharing runs on DARTS).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.benchmark import Benchmark
from harness.errors import HarnessError
from harness.search.diagnostics import cell_depth_darts, cell_depth_nb201
from harness.spaces import darts
from harness.spaces.nb201 import EDGES, OPS, Ops, ops_to_arch
from harness.supernet.spaces.darts import surrogate_accuracy

PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
DARTS_PARAMETER_FREE = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
DARTS_TRUTH_COLUMN = "cifar10_valid_98"  # NB301's embedded surrogate: cifar10 validation accuracy at epoch 98
# column -> (dataset, split, schedule) of the embedded NB201 table
TRUTH_COLUMNS: dict[str, tuple[str, str, str]] = {
    "cifar10_test_200": ("cifar10", "ori-test", "200"),
    "cifar10_test_12": ("cifar10", "ori-test", "12"),
    "cifar100_test_12": ("cifar100", "x-test", "12"),
    "imagenet16_test_12": ("ImageNet16-120", "x-test", "12"),
}


def derived_ops(weights: np.ndarray) -> Ops:
    """The op of largest weight on each edge of the op weights ``weights`` (``[6, 5]``)."""
    weights = np.asarray(weights)
    if weights.shape != (len(EDGES), len(OPS)) or not np.isfinite(weights).all():
        raise HarnessError(f"op weights must be finite, of shape [edges, ops] = [6, 5], got {list(weights.shape)}")
    return tuple(OPS[int(i)] for i in np.argmax(weights, axis=1))  # type: ignore[return-value]


def describe(weights: np.ndarray, bench: Benchmark) -> dict[str, Any]:
    """The derived arch of the op weights ``weights``: its string, NB201 index, skip and
    parameter-free op counts, depth, and the :data:`TRUTH_COLUMNS` accuracies (%) from ``bench`` (the
    embedded NB201 benchmark)."""
    ops = derived_ops(weights)
    index = int(bench.resolve([ops])[0])
    out: dict[str, Any] = {
        "arch": ops_to_arch(ops),
        "arch_index": index,
        "n_skip": sum(op == "skip_connect" for op in ops),
        "n_parameter_free": sum(op in PARAMETER_FREE for op in ops),
        "depth": cell_depth_nb201(ops),
    }
    for column, (dataset, split, schedule) in TRUTH_COLUMNS.items():
        out[column] = float(bench.final([index], dataset, "accuracy", split, schedule)[0])
    return out


def derived_genotype(weights: np.ndarray, ops: tuple[str, ...]) -> darts.Genotype:
    """DARTS's genotype of the op weights ``weights`` (``[2, 14, len(ops)]``, non-negative) over the
    candidate ops ``ops`` (module docstring), canonical."""
    ops = darts.check_candidates(ops)
    weights = np.asarray(weights, dtype=np.float64)
    shape = (len(darts.CELLS), darts.EDGES_PER_CELL, len(ops))
    if weights.shape != shape or not np.isfinite(weights).all() or (weights < 0).any():
        raise HarnessError(f"DARTS op weights must be finite and >= 0, of shape [cell types, edges, ops {ops}] = "
                           f"{list(shape)}, got {list(weights.shape)}")
    real = [i for i, op in enumerate(ops) if op != "none"]
    weights = weights[..., real]  # none dropped after the normalisation
    encoding = np.zeros((len(darts.CELLS), darts.N_NODES, 2, 2), dtype=np.int64)  # [cell, node, edge, (input, op)]
    for c in range(len(darts.CELLS)):
        for m, start in enumerate(darts.EDGE_START):
            node = weights[c, start:start + m + 2]  # [inputs, ops]
            inputs = np.sort(np.argsort(-node.max(axis=1), kind="stable")[:2])
            for e, j in enumerate(inputs):
                encoding[c, m, e] = (j, darts.OPS.index(ops[real[int(np.argmax(node[j]))]]))
    return darts.encoding_to_genotype(encoding.reshape(darts.ENCODING_LENGTH))


def describe_genotype(weights: np.ndarray, ops: tuple[str, ...], bench: Benchmark) -> dict[str, Any]:
    """The derived genotype of the op weights ``weights`` over ``ops`` (:func:`derived_genotype`): its
    string, its normal cell's skip and parameter-free op counts (:data:`DARTS_PARAMETER_FREE`) and
    depth, and :data:`DARTS_TRUTH_COLUMN`, its accuracy (%) from ``bench`` (the embedded NB301 benchmark)."""
    genotype = derived_genotype(weights, ops)
    return {
        "arch": str(genotype),
        "n_skip": sum(op == "skip_connect" for op, _ in genotype.normal),
        "n_parameter_free": sum(op in DARTS_PARAMETER_FREE for op, _ in genotype.normal),
        "depth": cell_depth_darts(genotype.normal),
        DARTS_TRUTH_COLUMN: float(surrogate_accuracy(bench, [genotype])[0]),
    }
