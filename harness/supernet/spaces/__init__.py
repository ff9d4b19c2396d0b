"""The search spaces weight sharing runs on: one module per space (what varies by space), one interface.

A space (:class:`harness.supernet.spaces.base.Space`) says how an arch is written down, how the
supernet algorithms draw the paths of an update, which archs a run ranks and their ground truth,
and (with torch) how its supernet and an arch's standalone network are built. Everything else of a
weight-sharing run (the algorithms' updates, the training loop, checkpoints, finetuning, logs,
estimators, reports) is written once, in :mod:`harness.supernet` and
:mod:`harness.experiments.weight_sharing`. Adding a space means adding one module here and its
entry in :data:`SPACES`.
"""

from __future__ import annotations

import importlib

from harness.errors import choices
from harness.supernet.spaces.base import Space

# space name (config: top-level ``space``) -> (module, class name, constructor arguments)
SPACES: dict[str, tuple[str, str, dict[str, object]]] = {
    "nb201": ("harness.supernet.spaces.nb201", "NB201Space", {}),
    "nb1shot1-1": ("harness.supernet.spaces.nb1shot1", "NB1Shot1Space", {"number": 1}),
    "nb1shot1-2": ("harness.supernet.spaces.nb1shot1", "NB1Shot1Space", {"number": 2}),
    "nb1shot1-3": ("harness.supernet.spaces.nb1shot1", "NB1Shot1Space", {"number": 3}),
    "darts": ("harness.supernet.spaces.darts", "DartsSpace", {}),
}


def get_space(name: str) -> Space:
    """The space called ``name`` (one of :data:`SPACES`)."""
    if name not in SPACES:
        raise choices("weight-sharing search space", name, SPACES)
    module, cls, arguments = SPACES[name]
    return getattr(importlib.import_module(module), cls)(**arguments)
