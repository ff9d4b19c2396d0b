"""Diagnostics of a differentiable search (thesis Sec. 4.3, Figs 4.12-4.16): the depth of a cell and
the dominant eigenvalue of the Hessian of a loss with respect to the architecture weights.

**Depth** (Shu, Wang & Cai, "Understanding Architectures Learnt by Cell-based Neural Architecture
Search", ICLR 2020, Sec. 3.1): "the number of connections along the longest path from input nodes to
the output node" of a cell. Every connection counts 1 whatever its op, ``skip_connect`` included (it
is a connection of the cell's graph); a ``none`` edge is no connection. The thesis code computes it
for DARTS genotypes as the longest path, in edges, from input node 0 or 1 to the output node 6 over
the graph in which each intermediate node 2..5 links to the output (``genotype_depth`` in
``lib/models/cell_searchs/darts/cnn/utils.py`` of github.com/Mirofil/AutoDL-Projects, logged per
epoch by ``train_search_*.py`` beside it; ``lib/models/cell_searchs/nb101/optimizers/darts/utils.py``
does the same on NB101 adjacency matrices). So the connection from an intermediate node into the
output counts, and the deepest DARTS cell (a chain 2 -> 3 -> 4 -> 5) has depth 5, the shallowest
(every node reading only inputs) depth 2. The thesis code has no NB201 depth; here the same rule
applies to NB201's cell, whose output node 3 sums its incoming edges itself, so the depth lies in 0..3:

    depth(0) = 0,  depth(i) = 1 + max over edges (j -> i) with op(j -> i) != none and node j reached of depth(j),

node i being *reached* when such an edge exists (node 0 is). A cell whose output is not reached
(every path from node 0 to node 3 crosses a ``none`` edge) computes zeros; its depth is 0 by
definition, the length of no path. Paths that end before the output (e.g. into node 2 when
``2 -> 3`` is ``none``) do not count.

On an NB101 cell (NAS-Bench-1Shot1's configurations) the depth is the most edges on a path from the input
vertex to the output vertex of its adjacency matrix (:func:`cell_depth_nb101`). The thesis code's NB101 helper
(``genotype_depth`` in ``lib/models/cell_searchs/nb101/optimizers/darts/utils.py``) takes the longest path from
vertex 0 (or 1) to any vertex of the matrix it is given; on a pruned cell, where every vertex lies on an
input -> output path, that longest path ends at the output, so the two agree. Here paths into loose ends (blocks
that reach no output, which NB101 prunes) do not count, as in NB201's rule.

**Dominant Hessian eigenvalue** (Zela et al., "Understanding and Robustifying Differentiable
Architecture Search", ICLR 2020, Sec. 4): the eigenvalue of largest magnitude of
``H = d^2 L(w, alpha) / d alpha^2`` at fixed weights ``w``, by power iteration on Hessian-vector
products. Zela et al. track it on the validation loss of DARTS (it grows as DARTS drifts to cells of
parameter-free ops); the thesis also tracks it on the training loss, the objective of SoTL-DARTS. The
choice is the caller's ``loss_fn``. torch is imported only inside that function, so this module (and
the depths) import without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import HarnessError
from harness.rng import is_int
from harness.spaces import darts, nb201

if TYPE_CHECKING:
    import torch


def cell_depth_nb201(ops: str | Sequence[str]) -> int:
    """Depth (0..3) of an NB201 cell, given as its arch string or its 6-op tuple (edge order
    :data:`~harness.spaces.nb201.EDGES`): the most connections on a path from node 0 to node 3 that
    crosses no ``none`` edge; 0 when every such path crosses one (the module docstring has the rule)."""
    ops = nb201.arch_to_ops(ops) if isinstance(ops, str) else nb201.check_ops(ops)
    depth: list[int | None] = [0] + [None] * (nb201.N_NODES - 1)  # None: not reached from node 0
    for k, (src, dst) in enumerate(nb201.EDGES):  # edges are ordered by destination, so depth[src] is final
        here = depth[src]
        if ops[k] != "none" and here is not None:
            depth[dst] = max(depth[dst] or 0, here + 1)
    return depth[-1] or 0


def cell_depth_nb101(adjacency: np.ndarray) -> int:
    """Depth of an NB101 cell given as its square 0/1 upper-triangular adjacency matrix (vertex 0 the input, the last
    vertex the output; padding vertices without edges are allowed): the most edges on a path from the input to the
    output, 0 when there is none (module docstring). ``d(0) = 0``, ``d(j) = 1 + max d(i)`` over the edges
    ``i -> j`` from reached vertices i, in vertex order (a topological order of an upper-triangular matrix)."""
    matrix = np.asarray(adjacency)
    if (matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2 or not np.isin(matrix, (0, 1)).all()
            or np.tril(matrix).any()):
        raise HarnessError(f"an NB101 cell is a square 0/1 strictly upper-triangular adjacency matrix of 2 or more "
                           f"vertices; got {matrix.tolist()!r}")
    depth: list[int | None] = [0] + [None] * (len(matrix) - 1)  # None: not reached from the input
    for j in range(1, len(matrix)):
        reached = [d for i, d in enumerate(depth[:j]) if matrix[i, j] and d is not None]
        depth[j] = 1 + max(reached) if reached else None
    return depth[-1] or 0


def cell_depth_darts(cell: Sequence[tuple[str, int]]) -> int:
    """Depth (2..5) of a DARTS cell, ``genotype.normal`` or ``genotype.reduce``: 8 ``(op, input)``
    pairs, pairs ``2m`` and ``2m + 1`` feeding intermediate node ``m + 2`` from an earlier node (0 and
    1 are the cell inputs); the output concatenates nodes 2..5. With ``d(0) = d(1) = 0`` and
    ``d(k) = 1 + max(d(input) over node k's two pairs)``, the depth is ``1 + max(d(2..5))``: the
    connection into the output counts, as in the thesis code (module docstring). Ops must be the
    NB301 ones (:data:`~harness.spaces.darts.OPS`, no ``none``), as in a derived genotype."""
    if isinstance(cell, str) or not isinstance(cell, Sequence) or len(cell) != 2 * darts.N_NODES:
        raise HarnessError(f"a DARTS cell lists {2 * darts.N_NODES} (op, input) pairs, two per intermediate node; got {cell!r}")
    depth = [0, 0]
    for m in range(darts.N_NODES):
        node = m + 2
        inputs = []
        for pair in cell[2 * m: 2 * m + 2]:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise HarnessError(f"DARTS cell node {node}: expected an (op, input) pair, got {pair!r}")
            op, source = pair
            if op not in darts.OPS:
                raise HarnessError(f"DARTS cell node {node}: unknown op {op!r}; valid ops: {darts.OPS}")
            if not is_int(source) or not 0 <= int(source) < node:
                raise HarnessError(f"DARTS cell node {node}: input must be an earlier node 0..{node - 1}, got {source!r}")
            inputs.append(int(source))
        depth.append(1 + max(depth[i] for i in inputs))
    return 1 + max(depth[2:])


def dominant_hessian_eigenvalue(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    alpha: torch.Tensor,
    *,
    iterations: int = 50,
    generator: torch.Generator,
    tol: float = 1e-4,
) -> tuple[float, int]:
    """The eigenvalue of largest magnitude of the Hessian ``H`` of the scalar ``loss_fn(alpha)`` with
    respect to ``alpha`` (any shape, flattened), by power iteration; returns it and the iterations used.

    Power iteration (e.g. Golub & Van Loan, "Matrix Computations", Sec. 7.3.1): from a unit start
    vector ``v_0`` drawn from ``generator`` (standard normal, normalised; the only randomness),
    ``u_k = H v_{k-1}``, ``lambda_k = v_{k-1} . u_k`` (the Rayleigh quotient), ``v_k = u_k / ||u_k||``.
    ``H v`` is the gradient of ``grad(L) . v`` (Pearlmutter 1994): one double backward through the
    graph of ``loss_fn``, never forming ``H``. It stops at the first ``k >= 2`` with
    ``|lambda_k - lambda_{k-1}| <= tol |lambda_k|``, or after ``iterations`` (then the last
    ``lambda_k`` is returned; it does not settle when two eigenvalues of opposite sign share the
    largest magnitude). ``lambda`` converges at rate ``(lambda_2 / lambda_1)^(2k)`` for symmetric ``H``.

    The sign is kept: a negative eigenvalue of largest magnitude is returned as negative. Zela et al.
    (2020) and the thesis code (``approx_hessian``, ``lib/utils/train_loop.py`` of
    github.com/Mirofil/AutoDL-Projects, 50 power-iteration steps by default, hence ``iterations=50``)
    use this; the thesis's exact variant (``exact_hessian`` there) takes the largest *algebraic*
    eigenvalue of ``H + 3e-5 I`` (it adds alpha's weight decay to the gradient), which agrees when the
    dominant eigenvalue is positive, up to the 3e-5. A Hessian that is exactly zero (``loss_fn``
    linear in ``alpha``) gives ``(0.0, 0)``. ``alpha`` itself is neither changed nor given a gradient:
    the function differentiates a detached copy. ``loss_fn`` is called once.
    """
    import torch

    if not is_int(iterations) or iterations < 1:
        raise HarnessError(f"power iteration needs iterations >= 1, got {iterations!r}")
    if not isinstance(tol, (int, float)) or not 0 <= tol < float("inf"):
        raise HarnessError(f"the relative tolerance must be a finite number >= 0, got {tol!r}")
    if not isinstance(alpha, torch.Tensor) or not alpha.is_floating_point() or alpha.numel() == 0:
        raise HarnessError(f"alpha must be a non-empty floating-point tensor, got {alpha!r}")
    if not isinstance(generator, torch.Generator):
        raise HarnessError(f"the start vector needs an explicit torch.Generator, got {generator!r}")
    a = alpha.detach().clone().requires_grad_(True)
    value = loss_fn(a)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise HarnessError(f"loss_fn must return a scalar tensor, got {value!r}")
    (grad,) = torch.autograd.grad(value.reshape(()), a, create_graph=True, allow_unused=True)
    if grad is None:
        raise HarnessError("loss_fn(alpha) does not depend on alpha: its Hessian is undefined here")
    if not grad.requires_grad:  # the gradient is constant in alpha
        return 0.0, 0
    v = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=generator.device).to(a.device)
    v = v / torch.linalg.vector_norm(v)
    previous = float("nan")
    for k in range(1, int(iterations) + 1):
        (hv,) = torch.autograd.grad(grad, a, grad_outputs=v, retain_graph=True)
        eigenvalue = float(torch.sum(v * hv))
        norm = torch.linalg.vector_norm(hv)
        if norm == 0:  # only at k = 1 (H symmetric): H v_0 = 0, i.e. H = 0 unless v_0 hit its null space
            return 0.0, k
        if k >= 2 and abs(eigenvalue - previous) <= tol * abs(eigenvalue):
            return eigenvalue, k
        previous, v = eigenvalue, hv / norm
    return eigenvalue, int(iterations)
