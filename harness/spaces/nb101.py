"""The NAS-Bench-101 cell space: model specs, pruning, validity and the official module hash.

A cell is a DAG of at most 7 vertices given by an upper-triangular 0/1 adjacency matrix ``matrix``
(``matrix[i, j] = 1``: an edge from vertex ``i`` to vertex ``j``) and one op label per vertex. Vertex 0
is ``input``, the last vertex is ``output``; every other vertex is one of :data:`OPS`. The space
allows at most 9 edges (Ying et al., "NAS-Bench-101", ICML 2019, section 2.2).

Pruning (as the official ``nasbench.lib.model_spec.ModelSpec._prune``): a vertex that is not both
reachable from the input and able to reach the output does not affect the computation and is
deleted together with its row, column and op. If the input cannot reach the output the spec is
invalid.

Hash (as the official ``nasbench.lib.graph_util.hash_module``): an isomorphism-invariant MD5
fingerprint computed by Weisfeiler-Lehman style iterative relabelling of the *pruned* graph.
With ``V`` vertices, labels ``l_v`` (-1 input, -2 output, else the op's index in :data:`OPS`),
in-degree ``in_v`` and out-degree ``out_v``::

    h_v^0     = md5(str((out_v, in_v, l_v)))            # str of a Python tuple of ints
    h_v^{t+1} = md5(concat(sorted(h_u^t, u -> v)) + "|" + concat(sorted(h_w^t, v -> w)) + "|" + h_v^t)
    hash      = md5(str(sorted(h_v^V)))                 # str of a Python list of hex strings

for ``t = 0 .. V-1``. The tests reproduce the official ``key`` of 1,000 real cells with this.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.errors import HarnessError, choices

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
#: The official ``config['available_ops']`` order; an op's label in the hash is its index here.
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9
#: Distinct cells (module hashes) of the space: the official data holds every one (Ying et al., 2019).
N_CELLS = 423_624
INPUT_LABEL = -1
OUTPUT_LABEL = -2

#: Op coding of the nasbench-vis export: -1 input, -2 output, -3 absent (padding) vertex, else OPS index.
VIS_PADDING = -3
#: Op coding of NASLib's 56-int tuples (49 adjacency entries + 7 op codes).
NASLIB_OPS: tuple[str, ...] = (INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_module(matrix: np.ndarray, labels: Sequence[int]) -> str:
    """The official isomorphism-invariant MD5 hash of a labelled directed graph (formula above).

    ``matrix`` must hold integers (0/1): the degrees are written into the first-round strings, so a
    float matrix would hash differently (``(2.0, 1.0, 0)`` instead of ``(2, 1, 0)``).
    """
    matrix = np.asarray(matrix)
    if matrix.dtype.kind not in "iub":
        raise HarnessError(f"hash_module needs an integer 0/1 matrix, got dtype {matrix.dtype}")
    rows = matrix.astype(np.int64).tolist()
    n = len(rows)
    if len(labels) != n:
        raise HarnessError(f"{len(labels)} labels for a {n}x{n} matrix")
    out_degree = [sum(row) for row in rows]
    in_degree = [sum(row[v] for row in rows) for v in range(n)]
    hashes = [_md5(str((out_degree[v], in_degree[v], int(labels[v])))) for v in range(n)]
    parents = [[u for u in range(n) if rows[u][v]] for v in range(n)]
    children = [[w for w in range(n) if rows[v][w]] for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted([hashes[u] for u in parents[v]]))
                + "|"
                + "".join(sorted([hashes[w] for w in children[v]]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def is_upper_triangular(matrix: np.ndarray) -> bool:
    """True if ``matrix`` is zero on and below the diagonal (a DAG in topological order)."""
    return not np.tril(np.asarray(matrix)).any()


def vertices_on_paths(matrix: np.ndarray) -> np.ndarray | None:
    """Indices of the vertices reachable from vertex 0 *and* reaching vertex ``V-1`` (what the
    official ``ModelSpec._prune`` keeps); None if the input cannot reach the output."""
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    from_input = np.zeros(n, dtype=bool)
    from_input[0] = True
    for v in range(n):  # upper triangular: one pass in index order is a topological sweep
        if from_input[v]:
            from_input |= matrix[v].astype(bool)
    to_output = np.zeros(n, dtype=bool)
    to_output[n - 1] = True
    for v in range(n - 1, -1, -1):
        if to_output[v]:
            to_output |= matrix[:, v].astype(bool)
    keep = from_input & to_output
    return np.flatnonzero(keep) if keep.sum() >= 2 else None


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
    """Delete vertices not on an input-to-output path (:func:`vertices_on_paths`); None if the input
    cannot reach the output. Same result as the official ``ModelSpec._prune``."""
    matrix = np.asarray(matrix)
    index = vertices_on_paths(matrix)
    if index is None:
        return None
    return matrix[np.ix_(index, index)], [ops[i] for i in index]


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A NAS-Bench-101 cell: ``matrix`` (V x V, upper triangular, 0/1) and ``ops`` (V labels).

    ``pruned_matrix``/``pruned_ops`` are the cell after :func:`prune` (None if the input does not
    reach the output). Two specs are equal when their hashes are equal (isomorphic after pruning).
    """

    matrix: np.ndarray
    ops: tuple[str, ...]
    pruned_matrix: np.ndarray | None = field(init=False, repr=False)
    pruned_ops: tuple[str, ...] | None = field(init=False, repr=False)

    def __init__(self, matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> None:
        if not isinstance(ops, (list, tuple)) or not all(isinstance(op, str) for op in ops):
            raise HarnessError(f"NB101 ops must be a list or tuple of op names such as {[INPUT, CONV3X3, OUTPUT]}; got {ops!r}")
        try:
            array: np.ndarray | None = np.asarray(matrix)
        except ValueError:  # ragged rows
            array = None
        if array is None or array.ndim != 2 or array.shape[0] != array.shape[1]:
            raise HarnessError(f"NB101 matrix must be a square 0/1 matrix (V rows of V entries), got {matrix!r}")
        if array.shape[0] != len(ops):
            raise HarnessError(f"NB101 spec has a {array.shape[0]}x{array.shape[0]} matrix but {len(ops)} ops")
        if array.size and not np.isin(array, (0, 1)).all():
            raise HarnessError("NB101 matrix entries must be 0 or 1")
        array = array.astype(np.int8)
        if not is_upper_triangular(array):
            raise HarnessError("NB101 matrix must be upper triangular (edges go from lower to higher vertex index)")
        object.__setattr__(self, "matrix", array)
        object.__setattr__(self, "ops", tuple(ops))
        pruned = prune(array, self.ops) if array.shape[0] >= 2 else None
        object.__setattr__(self, "pruned_matrix", None if pruned is None else pruned[0])
        object.__setattr__(self, "pruned_ops", None if pruned is None else tuple(pruned[1]))

    @property
    def valid_spec(self) -> bool:
        """The official ``valid_spec``: the input reaches the output (before the space limits)."""
        return self.pruned_matrix is not None

    def problems(self) -> list[str]:
        """Why this spec is outside the NB101 space (empty list: it is inside), after pruning."""
        if self.pruned_matrix is None or self.pruned_ops is None:
            return ["the input is not connected to the output"]
        found = []
        n_vertices = len(self.pruned_ops)
        n_edges = int(self.pruned_matrix.sum())
        if n_vertices > MAX_VERTICES:
            found.append(f"{n_vertices} vertices after pruning (at most {MAX_VERTICES})")
        if n_edges > MAX_EDGES:
            found.append(f"{n_edges} edges after pruning (at most {MAX_EDGES})")
        if self.pruned_ops[0] != INPUT:
            found.append(f"first op is {self.pruned_ops[0]!r}, must be {INPUT!r}")
        if self.pruned_ops[-1] != OUTPUT:
            found.append(f"last op is {self.pruned_ops[-1]!r}, must be {OUTPUT!r}")
        for op in self.pruned_ops[1:-1]:
            if op in (INPUT, OUTPUT):
                found.append(f"{op!r} as an inner op ({INPUT!r} may only be the first op, {OUTPUT!r} only the last)")
            elif op not in OPS:
                found.append(f"unknown op {op!r} (valid: {', '.join(OPS)})")
        return found

    def is_valid(self) -> bool:
        return not self.problems()

    def check(self) -> ModelSpec:
        """Raise HarnessError naming every way the spec leaves the NB101 space; return self."""
        found = self.problems()
        if found:
            raise HarnessError(f"NB101 spec outside the search space: {'; '.join(found)}")
        return self

    def labels(self) -> list[int]:
        """Integer labels of the pruned spec as the hash uses them (-1 input, -2 output, OPS index)."""
        self.check()
        assert self.pruned_ops is not None
        return [INPUT_LABEL] + [OPS.index(op) for op in self.pruned_ops[1:-1]] + [OUTPUT_LABEL]

    def hash(self) -> str:
        """The official module hash (after pruning); raises if the spec is outside the space."""
        labels = self.labels()
        assert self.pruned_matrix is not None
        return hash_module(self.pruned_matrix, labels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self.hash() == other.hash()

    def __hash__(self) -> int:
        return hash(self.hash())

    def __repr__(self) -> str:
        return f"ModelSpec(matrix={self.matrix.tolist()}, ops={list(self.ops)})"


def spec_from_vis(adjacency: Sequence[Sequence[float]], operations: Sequence[int]) -> ModelSpec:
    """A spec from the nasbench-vis coding: 7x7 adjacency (floats) and op codes with -3 = absent vertex.

    Absent (padding) vertices are dropped before building the spec (their rows and columns are zero).
    """
    matrix = np.asarray(adjacency)
    codes = [int(c) for c in operations]
    keep = [i for i, c in enumerate(codes) if c != VIS_PADDING]
    names = {INPUT_LABEL: INPUT, OUTPUT_LABEL: OUTPUT, **dict(enumerate(OPS))}
    bad = [c for c in codes if c != VIS_PADDING and c not in names]
    if bad:
        raise choices("nasbench-vis op code", bad[0], [*names, VIS_PADDING])
    dropped = [i for i, c in enumerate(codes) if c == VIS_PADDING]
    if dropped and matrix[dropped].any() | matrix[:, dropped].any():
        raise HarnessError(f"nasbench-vis cell has edges at padding vertices {dropped}")
    sub = np.rint(matrix[np.ix_(keep, keep)]).astype(np.int8)
    return ModelSpec(sub, [names[codes[i]] for i in keep])


def spec_from_naslib(encoding: Sequence[int]) -> ModelSpec:
    """A spec from NASLib's 56-int tuple: 49 row-major adjacency entries then 7 op codes (NASLIB_OPS)."""
    values = [int(v) for v in encoding]
    if len(values) != 56:
        raise HarnessError(f"NASLib NB101 encoding must have 56 ints (49 adjacency + 7 ops), got {len(values)}")
    bad = [c for c in values[49:] if not 0 <= c < len(NASLIB_OPS)]
    if bad:
        raise choices("NASLib NB101 op code", bad[0], range(len(NASLIB_OPS)))
    return ModelSpec(np.asarray(values[:49]).reshape(7, 7), [NASLIB_OPS[c] for c in values[49:]])


def permute(matrix: np.ndarray, ops: Sequence[str], permutation: Sequence[int]) -> tuple[np.ndarray, list[str]]:
    """Relabel vertices: vertex ``v`` of the input becomes vertex ``permutation[v]`` of the output."""
    matrix = np.asarray(matrix)
    perm = np.asarray(permutation)
    inverse = np.argsort(perm)
    return matrix[np.ix_(inverse, inverse)], [ops[i] for i in inverse]


def is_isomorphic(a: ModelSpec, b: ModelSpec) -> bool:
    """Exhaustive isomorphism test of two pruned specs (input and output stay fixed); slow, for tests."""
    if a.pruned_matrix is None or b.pruned_matrix is None or a.pruned_ops is None or b.pruned_ops is None:
        return False
    n = len(a.pruned_ops)
    if n != len(b.pruned_ops) or a.pruned_matrix.sum() != b.pruned_matrix.sum():
        return False
    for middle in itertools.permutations(range(1, n - 1)):
        perm = [0, *middle, n - 1]
        matrix, ops = permute(a.pruned_matrix, a.pruned_ops, perm)
        if np.array_equal(matrix, b.pruned_matrix) and tuple(ops) == b.pruned_ops:
            return True
    return False
