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

**NAS-Bench-1Shot1** (spaces 1, 2, 3; :mod:`harness.spaces.nb1shot1`, k choice blocks). The op weights are three
groups (:class:`harness.search.spaces.NB1Shot1SearchSpace` packs them into one array): ``ops`` ``[k, 3]`` per block
over :data:`NB1SHOT1_OPS`, ``output`` ``[k + 1]`` over the output's candidate parents (the cell input, blocks 1..k),
and per block i its input weights over nodes 0..i-1, or None where the block has a single choice of parents. The
derived configuration is the official reading of a DARTS search (automl/nasbench-1shot1
``nasbench_analysis/eval_darts_one_shot_model_in_nasbench.py``, ``eval_one_shot_model``, with ``get_top_k`` of
``nasbench_analysis/utils.py``): each block's op is the argmax of its op weights (a tie to the op first in
:data:`NB1SHOT1_OPS`, as ``numpy.argmax``); each block with input weights takes as parents its n inputs of largest
weight, n its number of parents in the space (:attr:`harness.spaces.nb1shot1.SearchSpace.in_degrees`), the output its
n largest output weights; a block without input weights takes its one choice (block 1: the input; block 2 of space 1:
nodes 0 and 1). The official code normalises each group by its softmax first, which changes no order. Its
``get_top_k`` is ``numpy.argpartition``, which leaves ties unordered; here a tie goes to the lower node (stable
sort). Its truth (:data:`NB1SHOT1_TRUTH_COLUMN`) is NB101's CIFAR-10 *validation* accuracy (%) of the configuration's
cell after 108 epochs, one training run, from the embedded 20,001-cell NB101 table (``load_benchmark("nb1shot1-<n>")``;
the thesis reports test accuracy over the whole space); when the table lacks the cell, the truth is missing: None,
never imputed, and ``truth_missing`` says so. Over a converted official NB101 store (``search.truth_root``) the truth
is :data:`NB1SHOT1_TEST_COLUMN`, the cell's CIFAR-10 *test* accuracy (%) after 108 epochs, the mean of its training
runs, as the thesis reports it; the store holds every cell of the space.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.benchmark import Benchmark
from harness.errors import HarnessError
from harness.search.diagnostics import cell_depth_darts, cell_depth_nb101, cell_depth_nb201
from harness.spaces import darts
from harness.spaces.nb101 import CONV1X1, CONV3X3, MAXPOOL3X3
from harness.spaces.nb1shot1 import Config, SearchSpace
from harness.spaces.nb201 import EDGES, OPS, Ops, ops_to_arch
from harness.supernet.spaces.darts import surrogate_accuracy

PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
DARTS_PARAMETER_FREE = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
DARTS_TRUTH_COLUMN = "cifar10_valid_98"  # NB301's embedded surrogate: cifar10 validation accuracy at epoch 98
NB1SHOT1_TRUTH_COLUMN = "cifar10_valid_108"  # the embedded NB101 table: cifar10 validation accuracy at epoch 108
NB1SHOT1_TEST_COLUMN = "cifar10_test_108"  # a converted official NB101 store: cifar10 test accuracy at epoch 108, run mean
# the op axis of NAS-Bench-1Shot1's op weights: the official PRIMITIVES order (optimizers/darts/genotypes.py)
NB1SHOT1_OPS: tuple[str, ...] = (MAXPOOL3X3, CONV3X3, CONV1X1)
NB1SHOT1_PARAMETER_FREE = (MAXPOOL3X3,)
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


def derived_config(space: SearchSpace, ops: np.ndarray, output: np.ndarray,
                   inputs: tuple[np.ndarray | None, ...]) -> Config:
    """The NAS-Bench-1Shot1 configuration of ``space`` that the op weights ``ops`` ``[k, 3]``, ``output`` ``[k + 1]``
    and per block ``inputs`` (its weights over nodes 0..i-1, or None for a block with one choice of parents) derive
    (module docstring)."""
    k = space.n_blocks
    ops, output = np.asarray(ops, dtype=np.float64), np.asarray(output, dtype=np.float64)
    expected = [None if len(choices) == 1 else block for block, choices in enumerate(space.parent_choices[:k], start=1)]
    given = [None if weights is None else len(weights) for weights in inputs]
    if ops.shape != (k, len(NB1SHOT1_OPS)) or output.shape != (k + 1,) or given != expected:
        raise HarnessError(f"nb1shot1-{space.number} op weights are ops [{k}, {len(NB1SHOT1_OPS)}], output [{k + 1}] and "
                           f"per block the input weights of lengths {expected} (None: one choice of parents); got ops "
                           f"{list(ops.shape)}, output {list(output.shape)}, inputs {given}")
    if not all(np.isfinite(w).all() for w in (ops, output, *(w for w in inputs if w is not None))):
        raise HarnessError(f"nb1shot1-{space.number} op weights must be finite")
    parents = [choices[0] if weights is None else _strongest(weights, space.in_degrees[block])
               for block, (choices, weights) in enumerate(zip(space.parent_choices, inputs))]
    parents.append(_strongest(output, space.in_degrees[-1]))
    return space.validate(Config(space.number, tuple(parents), tuple(NB1SHOT1_OPS[int(i)] for i in np.argmax(ops, axis=1))))


def _strongest(weights: np.ndarray, n: int) -> tuple[int, ...]:
    """The ``n`` indices of largest weight, ascending; a tie to the lower index."""
    return tuple(sorted(int(i) for i in np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable")[:n]))


def describe_config(space: SearchSpace, ops: np.ndarray, output: np.ndarray, inputs: tuple[np.ndarray | None, ...],
                    bench: Benchmark) -> dict[str, Any]:
    """The derived configuration of the NAS-Bench-1Shot1 op weights (:func:`derived_config`): its text and index in
    the space's enumeration order, ``n_skip`` (0: the space has no skip op), ``n_parameter_free`` (max-pools among the
    blocks its NB101 cell keeps), its depth (:func:`~harness.search.diagnostics.cell_depth_nb101`), and
    its truth from ``bench``: :data:`NB1SHOT1_TRUTH_COLUMN` from the embedded ``nb1shot1-<n>`` benchmark, or
    :data:`NB1SHOT1_TEST_COLUMN` from one over a converted NB101 store (the benchmark has a test split); None with
    ``truth_missing`` true when it lacks the cell."""
    config = derived_config(space, ops, output, inputs)
    index = space.index(config)
    kept = space.pruned_graph(config.parents)[1]
    covered = bench.archs_with_data()
    position = int(np.searchsorted(covered, index))
    missing = position == len(covered) or int(covered[position]) != index
    split, column = ("test", NB1SHOT1_TEST_COLUMN) if "test" in bench.capabilities().splits else ("valid", NB1SHOT1_TRUTH_COLUMN)
    truth = None if missing else float(bench.final([index], "cifar10", "accuracy", split, "108")[0])
    return {
        "arch": str(config),
        "arch_index": index,
        "n_skip": 0,
        "n_parameter_free": sum(config.ops[b - 1] in NB1SHOT1_PARAMETER_FREE for b in kept),
        "depth": cell_depth_nb101(space.adjacency(config.parents)),
        column: truth,
        "truth_missing": missing,
    }
