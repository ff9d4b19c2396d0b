"""The supernet algorithms of the thesis's Table 4.1: which paths one update trains, and how (torch-free).

A *cell draw* is one op per edge (:data:`harness.spaces.nb201.EDGES` order). A *path* is one cell
draw per cell of the network, in network order: ``n_cells = 3 * cells_per_stage`` draws. A
*rollout* is the list of paths that one optimizer step trains on one minibatch (their mean loss).
An update of the supernet is ``meta_batch`` rollouts; each makes ``inner_steps`` optimizer steps on
the same minibatch (:mod:`harness.supernet.train`).

Samplers (each a pure function of a ``numpy.random.Generator``):

- :func:`per_cell_paths` (``spos``): every cell draws its own ops, edge by edge uniformly from the 5
  ops, and a node whose incoming edges all drew ``none`` redraws them all until one is not
  ``none``. This is the uniform random sampling ("urs") of the thesis's code: ``forward_urs`` of
  its search cells draws per cell, per forward pass, with that rejection loop
  (Mirofil/AutoDL-Projects ``lib/models/cell_searchs/search_cells.py`` l.79-95 at 77776cb), and
  SPOS's own sampling draws each choice block (layer) independently (Guo et al. 2020).
- :func:`per_network_paths` (``randomnas``, and the paths of the variants): one arch, uniform over
  the 15,625 (``none`` everywhere allowed), used by every cell: NB201's RANDOM-NAS (Li & Talwalkar
  2019 as Dong & Yang run it), and the thesis code's ``dynamic`` mode that MultiPath, FairNAS and
  the meta-algorithms use (``ArchSampler.sample(mode="random")``, ``random.choices`` over all archs).
- :func:`fairnas_paths` (``fairnas``): FairNAS's strict fairness (Chu et al. 2021, Alg. 1): each
  edge draws a random permutation of the 5 ops and path k runs the k-th op of every edge's
  permutation, in every cell. Every op of every edge is placed on one of the 5 paths.

  On NB201 "placed" is not "trained": an op on an edge that is dead in its path (its source node
  gets no signal, or its target feeds no output; :func:`harness.supernet.model.live_edges`) runs on
  nothing and gets no gradient, so fairness holds among one edge's ops in expectation, not strictly
  per step as in the paper's chain-structured spaces (``benchmarks/fairnas_vs_spos.py`` counts it).

The algorithms (:data:`ALGORITHMS`), with the thesis code's settings where its text is silent:

==================  ===========================  ======  =====  ==========  ==============
name                paths per rollout            inner   meta   proximal    finetuning lr
==================  ===========================  ======  =====  ==========  ==============
spos                1 per-cell path              1       1      -           0.01
randomnas           1 per-network path           1       1      -           0.01
fairnas             5 FairNAS paths, mean loss   1       1      -           0.001
multipath           4 per-network paths (drawn   1       1      -           0.001
                    with replacement), mean loss
reptile             1 per-network path           4       1      -           0.001
metaprox            1 per-network path           4       1      lambda=10   0.001
multipath-metaprox  1 per-network path           4       4      lambda=10   0.001
==================  ===========================  ======  =====  ==========  ==============

- MultiPath averages the losses of k = 4 archs on the same minibatch and takes one step (the code's
  ``--sandwich k``: loss x 1/k, one ``w_optimizer.step()``). FairNAS does the same with its 5 paths.
- Reptile (Nichol et al. 2018): from theta, ``inner_steps`` = 4 optimizer steps on one sampled arch
  and one minibatch, repeated (the code's default ``--inner_steps_same_batch True``), give
  theta_hat; then theta <- theta + eta (theta_hat - theta) with the outer learning rate eta =
  ``supernet.meta_lr`` (the code's default ``--meta_lr 1``, constant, which its thesis-style
  example command also passes).
- Metaprox (MetaMinibatchProx, Zhou et al. 2019): Reptile whose inner loss adds
  lambda/2 ||theta' - theta||^2 over every weight, lambda = 10 (thesis; the code's example command
  ``--metaprox_lambda=10``).
- MultiPath + Metaprox: a meta-batch of 4 Metaprox rollouts from the same theta, each on its own
  arch; theta moves towards the mean of their end points (the code's ``--sandwich 4`` with a
  meta-algorithm, as its June 2021 version averaged them).
- Finetuning lr: 0.01 for SPOS and 0.001 for the variants (thesis Sec. 4.2); randomnas is SPOS's
  sampler on whole networks and keeps SPOS's 0.01.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.spaces.nb201 import EDGES, N_NODES, OPS

CellOps = tuple[str, ...]  # one op per edge
Path = tuple[CellOps, ...]  # one cell draw per cell, in network order
Rollout = list[Path]  # the paths one optimizer step trains on one minibatch (mean loss)

NONE = OPS.index("none")
# for each intermediate node, the edges that enter it
_INCOMING: tuple[tuple[int, ...], ...] = tuple(
    tuple(k for k, (_, dst) in enumerate(EDGES) if dst == node) for node in range(1, N_NODES)
)


def _cell_ops(codes: np.ndarray) -> CellOps:
    return tuple(OPS[int(i)] for i in codes)


def per_cell_paths(rng: np.random.Generator, n_cells: int) -> Rollout:
    """One path whose cells draw their ops independently, uniform per edge, redrawing a node's
    incoming edges while they are all ``none``.

    One ``rng.integers(0, 5, size=(n_cells, 6))`` draw, then, while some (cell, node) has only
    ``none`` coming in, one ``rng.integers(0, 5, size=(cells, in-degree))`` redraw of those cells'
    edges into that node, node by node. Each node's ops are therefore uniform over the
    ``5**d - 1`` choices that are not all ``none``, independently across nodes and cells.
    """
    codes = rng.integers(0, len(OPS), size=(n_cells, len(EDGES)))
    for edges in _INCOMING:
        columns = list(edges)
        while True:
            dead = np.flatnonzero((codes[:, columns] == NONE).all(axis=1))
            if dead.size == 0:
                break
            codes[np.ix_(dead, columns)] = rng.integers(0, len(OPS), size=(dead.size, len(columns)))
    return [tuple(_cell_ops(row) for row in codes)]


def per_network_paths(rng: np.random.Generator, n_cells: int, k: int = 1) -> Rollout:
    """``k`` paths, each one arch uniform over the 15,625 (one ``rng.integers(0, 5, size=6)`` draw
    per path, drawn with replacement) used by every cell."""
    return [(_cell_ops(rng.integers(0, len(OPS), size=len(EDGES))),) * n_cells for _ in range(k)]


def fairnas_paths(rng: np.random.Generator, n_cells: int) -> Rollout:
    """Five paths: path k runs ``OPS[pi_e[k]]`` on edge e of every cell, where ``pi_e =
    rng.permutation(5)`` is drawn for each edge in turn. Across the five paths every edge gets every
    op exactly once."""
    perms = np.stack([rng.permutation(len(OPS)) for _ in EDGES])  # [edge, path]
    return [(_cell_ops(perms[:, k]),) * n_cells for k in range(len(OPS))]


def multipath_paths(rng: np.random.Generator, n_cells: int) -> Rollout:
    """MultiPath's four per-network paths (:func:`per_network_paths` with k = 4)."""
    return per_network_paths(rng, n_cells, k=4)


@dataclass(frozen=True)
class Algorithm:
    """One supernet algorithm: its sampler and the shape of one update (module table)."""

    label: str  # the name as the thesis's tables write it
    paths: Callable[[np.random.Generator, int], Rollout]  # one rollout's paths, from (rng, n_cells)
    finetune_lr: float  # thesis Sec. 4.2: 0.01 for SPOS, 0.001 for the variants
    inner_steps: int = 1  # optimizer steps per rollout, all on the update's one minibatch
    meta_batch: int = 1  # rollouts per update, each from the same weights
    prox_lambda: float = 0.0  # lambda of the proximal term lambda/2 ||theta' - theta||^2 in the inner loss

    @property
    def is_meta(self) -> bool:
        """Whether an update is Reptile-style: rollouts of inner steps, then an outer step."""
        return self.inner_steps > 1 or self.meta_batch > 1 or self.prox_lambda > 0

    def draw(self, rng: np.random.Generator, n_cells: int) -> list[Rollout]:
        """The rollouts of one update: ``meta_batch`` calls of the sampler, in order."""
        return [self.paths(rng, n_cells) for _ in range(self.meta_batch)]


ALGORITHMS: dict[str, Algorithm] = {  # supernet.algorithm -> its definition
    "spos": Algorithm("SPOS", per_cell_paths, finetune_lr=0.01),
    "randomnas": Algorithm("RandomNAS", per_network_paths, finetune_lr=0.01),
    "fairnas": Algorithm("FairNAS", fairnas_paths, finetune_lr=0.001),
    "multipath": Algorithm("MultiPath", multipath_paths, finetune_lr=0.001),
    "reptile": Algorithm("Reptile", per_network_paths, finetune_lr=0.001, inner_steps=4),
    "metaprox": Algorithm("Metaprox", per_network_paths, finetune_lr=0.001, inner_steps=4, prox_lambda=10.0),
    "multipath-metaprox": Algorithm("MultiPath + Metaprox", per_network_paths, finetune_lr=0.001, inner_steps=4,
                                    meta_batch=4, prox_lambda=10.0),
}

# The five algorithms of the thesis's Table 4.1, in its column order.
TABLE_4_1 = ("spos", "fairnas", "multipath", "reptile", "metaprox")
