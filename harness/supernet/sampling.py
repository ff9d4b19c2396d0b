"""The supernet algorithms of the thesis's Table 4.1: which paths one update trains, and how (torch-free).

A *path* is what one forward pass of the supernet runs (its space's form: NB201 draws one 6-op tuple
per cell). A *rollout* is the list of paths that one optimizer step trains on one minibatch (their
mean loss). An update of the supernet is ``meta_batch`` rollouts; each makes ``inner_steps``
optimizer steps on the same minibatch (:mod:`harness.supernet.train`). The algorithms draw paths
only through their space's samplers (:class:`harness.supernet.spaces.base.Space`): ``spos_path``,
``uniform_path`` and ``fair_paths``.

The algorithms (:data:`ALGORITHMS`), with the thesis code's settings where its text is silent:

==================  ===========================  ======  =====  ==========  ==============
name                paths per rollout            inner   meta   proximal    finetuning lr
==================  ===========================  ======  =====  ==========  ==============
spos                1 SPOS path (NB201: per      1       1      -           0.01
                    cell)
randomnas           1 uniform whole-network arch 1       1      -           0.01
fairnas             the space's FairNAS paths,   1       1      -           0.001
                    mean loss
multipath           4 uniform archs (drawn with  1       1      -           0.001
                    replacement), mean loss
reptile             1 uniform arch               4       1      -           0.001
metaprox            1 uniform arch               4       1      lambda=10   0.001
multipath-metaprox  1 uniform arch               4       4      lambda=10   0.001
==================  ===========================  ======  =====  ==========  ==============

- MultiPath averages the losses of k = 4 archs on the same minibatch and takes one step (the code's
  ``--sandwich k``: loss x 1/k, one ``w_optimizer.step()``). FairNAS does the same with its paths.
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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from harness.supernet.spaces.base import Space

Rollout = list[Any]  # the paths one optimizer step trains on one minibatch (mean loss)


def spos_rollout(space: Space, rng: np.random.Generator, n_cells: int) -> Rollout:
    """SPOS: the space's SPOS path."""
    return [space.spos_path(rng, n_cells)]


def uniform_rollout(space: Space, rng: np.random.Generator, n_cells: int) -> Rollout:
    """RandomNAS, Reptile, Metaprox: one uniform whole-network arch."""
    return [space.uniform_path(rng, n_cells)]


def multipath_rollout(space: Space, rng: np.random.Generator, n_cells: int) -> Rollout:
    """MultiPath: four uniform archs, drawn one after another (with replacement)."""
    return [space.uniform_path(rng, n_cells) for _ in range(4)]


def fairnas_rollout(space: Space, rng: np.random.Generator, n_cells: int) -> Rollout:
    """FairNAS: the space's strictly fair paths."""
    return space.fair_paths(rng, n_cells)


@dataclass(frozen=True)
class Algorithm:
    """One supernet algorithm: its rollout and the shape of one update (module table)."""

    label: str  # the name as the thesis's tables write it
    rollout: Callable[[Space, np.random.Generator, int], Rollout]  # one rollout's paths, from (space, rng, n_cells)
    finetune_lr: float  # thesis Sec. 4.2: 0.01 for SPOS, 0.001 for the variants
    inner_steps: int = 1  # optimizer steps per rollout, all on the update's one minibatch
    meta_batch: int = 1  # rollouts per update, each from the same weights
    prox_lambda: float = 0.0  # lambda of the proximal term lambda/2 ||theta' - theta||^2 in the inner loss

    @property
    def is_meta(self) -> bool:
        """Whether an update is Reptile-style: rollouts of inner steps, then an outer step."""
        return self.inner_steps > 1 or self.meta_batch > 1 or self.prox_lambda > 0

    def draw(self, space: Space, rng: np.random.Generator, n_cells: int) -> list[Rollout]:
        """The rollouts of one update: ``meta_batch`` rollouts, in order."""
        return [self.rollout(space, rng, n_cells) for _ in range(self.meta_batch)]


ALGORITHMS: dict[str, Algorithm] = {  # supernet.algorithm -> its definition
    "spos": Algorithm("SPOS", spos_rollout, finetune_lr=0.01),
    "randomnas": Algorithm("RandomNAS", uniform_rollout, finetune_lr=0.01),
    "fairnas": Algorithm("FairNAS", fairnas_rollout, finetune_lr=0.001),
    "multipath": Algorithm("MultiPath", multipath_rollout, finetune_lr=0.001),
    "reptile": Algorithm("Reptile", uniform_rollout, finetune_lr=0.001, inner_steps=4),
    "metaprox": Algorithm("Metaprox", uniform_rollout, finetune_lr=0.001, inner_steps=4, prox_lambda=10.0),
    "multipath-metaprox": Algorithm("MultiPath + Metaprox", uniform_rollout, finetune_lr=0.001, inner_steps=4,
                                    meta_batch=4, prox_lambda=10.0),
}

# The five algorithms of the thesis's Table 4.1, in its column order.
TABLE_4_1 = ("spos", "fairnas", "multipath", "reptile", "metaprox")
