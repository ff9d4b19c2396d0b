"""Which paths of the NB201 supernet one training minibatch trains: SPOS and FairNAS (torch-free).

A path is one op per edge, in :data:`harness.spaces.nb201.EDGES` order. A sampler draws the paths of
one minibatch from a ``numpy.random.Generator``; training runs each path on the same minibatch,
adds up their gradients and makes one update (:func:`harness.supernet.train.supernet_step`).

- ``spos``: one path, each edge's op drawn uniformly and independently from the 5 ops (Guo et al.
  2020, "Single Path One-Shot NAS with Uniform Sampling"; Li & Talwalkar 2019's RandomNAS trains
  the NB201 supernet the same way). An op is trained in a given minibatch with probability 1/5.
- ``fairnas``: strict fairness (Chu et al. 2021, "FairNAS: Rethinking Evaluation Fairness of
  Weight Sharing Neural Architecture Search", Alg. 1). Each edge e draws a uniform random
  permutation ``pi_e`` of the 5 ops, and path k (k = 1..5) runs op ``pi_e(k)`` on edge e. So every
  op of every edge is placed on exactly one of the minibatch's 5 paths, and a minibatch costs 5
  forward and backward passes. Each path on its own is still a uniform draw from the space.

  On NB201 "placed" is not "trained": an op on an edge that is dead in its path (its source node
  gets no signal, or its target feeds no output; :func:`harness.supernet.model.live_edges`) runs
  on nothing and gets no gradient. Over 20,000 draws the conv weights of an edge got a gradient in
  64% (edge 1->2) to 100% (edge 0->3) of minibatches (``benchmarks/fairnas_vs_spos.py``), equal
  across the ops of one edge: fairness
  holds among the ops of an edge in expectation, not strictly per step as in the paper's
  chain-structured spaces. The 5 summed path gradients are also about 4x SPOS's one (median norm
  12.58 against 3.23 over the first 20 steps at C=16, N=5 on CIFAR-10, same script), so the Appendix B clip of 5,
  tuned for SPOS, clipped every one of those FairNAS steps and a quarter of the SPOS ones (the
  supernet history logs the median norm and the clipped fraction per epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.spaces.nb201 import EDGES, OPS

PathOps = tuple[str, ...]  # one op per edge


def spos_paths(rng: np.random.Generator) -> list[PathOps]:
    """One path: ``OPS[i_e]`` on edge e with ``i_e ~ Uniform{0..4}`` independently (one
    ``rng.integers(0, 5, size=6)`` draw)."""
    return [tuple(OPS[i] for i in rng.integers(0, len(OPS), size=len(EDGES)))]


def fairnas_paths(rng: np.random.Generator) -> list[PathOps]:
    """Five paths: path k runs ``OPS[pi_e[k]]`` on edge e, where ``pi_e = rng.permutation(5)`` is drawn
    for each edge in turn. Across the five paths, every edge is given every op exactly once."""
    perms = np.stack([rng.permutation(len(OPS)) for _ in EDGES])  # [edge, path]
    return [tuple(OPS[i] for i in perms[:, k]) for k in range(len(OPS))]


@dataclass(frozen=True)
class Algorithm:
    label: str  # the name as papers write it, used in reports
    paths: Callable[[np.random.Generator], list[PathOps]]  # one minibatch's paths


ALGORITHMS: dict[str, Algorithm] = {  # supernet.algorithm -> its sampler
    "spos": Algorithm("SPOS", spos_paths),
    "fairnas": Algorithm("FairNAS", fairnas_paths),
}
