"""Random generators: every random choice in the harness takes an explicit seed or Generator.

:func:`make_rng` turns a user's ``seed`` argument into a ``numpy.random.Generator`` and refuses
``None`` (fresh OS entropy: a different draw every run), bools and floats.

:func:`stream` gives the weight-sharing pipeline's named streams: ``numpy.random.default_rng([purpose,
*keys])`` with one ``purpose`` constant per consumer. Without the tag, streams keyed by equal
numbers coincide: supernet seed 0's epoch 5 (``[0, 5, sub-stream]``) and arch 5 of arch seed 0
(``[0, 5, sub-stream]``) would train on the very same minibatch order, crops and flips.
"""

from __future__ import annotations

import numpy as np

from harness.errors import HarnessError

# Recorded in checkpoints. 1: the untagged streams before 2026-11-23; 2: one arch per network drawn per
# step; 3: each algorithm's rollouts (harness.supernet.sampling), per-cell paths for SPOS.
STREAMS_VERSION = 3
SPLIT = 1  # seeded train/valid halves when no official split file is given (keys: split seed)
SUPERNET = 2  # supernet training (keys: supernet seed, epoch, sub-stream)
FINETUNE = 3  # inherit-and-finetune (keys: arch seed, sub-stream; the same minibatches for every arch)
SEARCH = 4  # differentiable search, harness.search (keys: search seed, epoch, sub-stream)


def is_int(value: object) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def make_rng(seed: int | np.random.Generator, what: str = "seed") -> np.random.Generator:
    """The Generator of an explicit ``seed`` (a non-negative int, or a Generator used as is).

    ``what`` names the argument in the error (e.g. ``"the bootstrap seed (seed, --seed)"``).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if not is_int(seed) or seed < 0:
        raise HarnessError(f"{what} must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def stream(purpose: int, *keys: int) -> np.random.Generator:
    """The generator of ``purpose`` for ``keys`` (a pure function of its arguments)."""
    return np.random.default_rng([purpose, *keys])
