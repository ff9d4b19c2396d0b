"""The NAS-Bench-201 / NATS-Bench topology search space.

A cell is a DAG on 4 nodes (node 0 = cell input, node 3 = cell output). Each of the 6 edges
``j -> i`` (j < i) carries one of 5 operations, so there are 5**6 = 15,625 architectures.

An architecture has three equivalent identities:

* its **arch string** ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node i's incoming edges, ``op~j``
  meaning "op applied to node j"), as in Dong & Yang, "NAS-Bench-201", ICLR 2020;
* its **6-op tuple** in arch-string order, i.e. edges (0->1), (0->2), (1->2), (0->3), (1->3), (2->3);
* its **index** 0..15624 in the official order (the order of ``meta_archs`` in the official files;
  the embedded table in ``harness/embedded/nb201`` keeps it).

Isomorphism: cells that differ only in the order of summands, in where a ``skip_connect`` sits, or in
a ``none`` edge feeding a node that then computes nothing, are the same network. :func:`canonical`
gives the official form for this relation; the space has 6,466 classes under it, as the NAS-Bench-201
paper reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import product

from harness.errors import HarnessError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_NODES = 4
N_ARCHS = len(OPS) ** len(EDGES)

Ops = tuple[str, str, str, str, str, str]


def arch_to_ops(arch: str) -> Ops:
    """Parse an arch string into its 6-op tuple; raises HarnessError naming the fault."""
    if not isinstance(arch, str) or not arch.startswith("|") or not arch.endswith("|"):
        raise HarnessError(f"not an NB201 arch string: {arch!r}; expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
    nodes = arch.split("+")
    if len(nodes) != N_NODES - 1:
        raise HarnessError(f"NB201 arch string {arch!r} has {len(nodes)} nodes; expected 3 ('+'-separated)")
    ops: list[str] = []
    for node, text in enumerate(nodes, start=1):
        parts = [p for p in text.split("|") if p]
        if len(parts) != node:
            raise HarnessError(f"NB201 arch string {arch!r}: node {node} has {len(parts)} inputs; expected {node}")
        for source, part in enumerate(parts):
            op, _, src = part.partition("~")
            if op not in OPS:
                raise HarnessError(f"NB201 arch string {arch!r}: unknown op {op!r}; valid ops: {OPS}")
            if src != str(source):
                raise HarnessError(f"NB201 arch string {arch!r}: edge {part!r} should read from node {source}")
            ops.append(op)
    return tuple(ops)  # type: ignore[return-value]


def ops_to_arch(ops: Sequence[str]) -> str:
    """The arch string of a 6-op tuple (arch-string edge order)."""
    ops = check_ops(ops)
    nodes = [
        "|" + "|".join(f"{ops[k]}~{src}" for k, (src, dst) in enumerate(EDGES) if dst == node) + "|"
        for node in range(1, N_NODES)
    ]
    return "+".join(nodes)


def check_ops(ops: Sequence[str]) -> Ops:
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise HarnessError(f"an NB201 op tuple has 6 ops, got {len(ops)}: {ops!r}")
    for op in ops:
        if op not in OPS:
            raise HarnessError(f"unknown NB201 op {op!r}; valid ops: {OPS}")
    return ops  # type: ignore[return-value]


def all_ops() -> list[Ops]:
    """All 15,625 op tuples in lexicographic order of OPS (not the official order)."""
    return [tuple(t) for t in product(OPS, repeat=len(EDGES))]  # type: ignore[misc]


def canonical(ops: Sequence[str]) -> str:
    """The isomorphism-canonical form used by NAS-Bench-201 to count its 6,466 unique cells.

    Each node is written as the sorted, ``+``-joined list of its input terms: ``#`` (zero) for a
    ``none`` edge or an edge out of a node whose form is exactly ``#``; the source node's form for
    ``skip_connect``; ``(source)@op`` otherwise. The form of node 3 is the cell's. Zero terms keep
    their multiplicity, exactly as the official ``to_unique_str(consider_zero=True)`` does, which is
    what yields the paper's 6,466 classes (Dong & Yang 2020, Sec. 2.1); merging zero terms completely
    would give a coarser relation with 5,390 classes.
    """
    ops = check_ops(ops)
    form = {0: "0"}
    for node in range(1, N_NODES):
        terms = []
        for k, (src, dst) in enumerate(EDGES):
            if dst != node:
                continue
            if ops[k] == "none" or form[src] == "#":
                terms.append("#")
            elif ops[k] == "skip_connect":
                terms.append(form[src])
            else:
                terms.append(f"({form[src]})@{ops[k]}")
        form[node] = "+".join(sorted(terms))
    return form[N_NODES - 1]


@lru_cache(maxsize=1)
def n_isomorphism_classes() -> int:
    """Number of distinct :func:`canonical` forms over the whole space (6,466)."""
    return len({canonical(ops) for ops in all_ops()})


def naslib_tuple_to_ops(code: Sequence[int]) -> Ops:
    """Convert NASLib's NB201 integer encoding to our 6-op tuple.

    NASLib orders the edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) with nodes numbered from 1, i.e. our
    (0->1),(0->2),(0->3),(1->2),(1->3),(2->3), and codes ops as 0..4 = skip_connect, none,
    nor_conv_3x3, nor_conv_1x1, avg_pool_3x3 (NASLib ``nasbench201`` conversions).
    """
    naslib_ops = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
    naslib_edges = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    if len(code) != 6 or any(not 0 <= int(c) < 5 for c in code):
        raise HarnessError(f"not a NASLib NB201 encoding (6 ints in 0..4): {tuple(code)!r}")
    by_edge = {edge: naslib_ops[int(c)] for edge, c in zip(naslib_edges, code)}
    return tuple(by_edge[edge] for edge in EDGES)  # type: ignore[return-value]
