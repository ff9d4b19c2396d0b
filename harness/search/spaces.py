"""The search spaces a differentiable search runs on: one interface, one class per kind of space.

A search space (:class:`SearchSpace`) says what the algorithms need to know of it and nothing else:

* :meth:`~SearchSpace.build_network`: its mixed-op network, fresh weights (the caller seeds torch);
* :meth:`~SearchSpace.alpha_shape`: the shape of the architecture weights ``alpha``;
* :meth:`~SearchSpace.logits`: the network's logits under mixed weights of ``alpha``'s shape, already
  normalised by the algorithm (``softmax(alpha)`` for the DARTS family), at the network's own
  parameters or at ``params`` (``torch.func.functional_call``, for DARTS second order's virtual step);
* :meth:`~SearchSpace.describe`: the arch that op weights (``alpha`` as the algorithm normalises it
  for derivation, :mod:`harness.search.derive`) derive, its skip and parameter-free op counts, its
  cell depth and its truth (:attr:`~SearchSpace.truth_columns`) from :meth:`~SearchSpace.truth_benchmark`.

The spaces (:data:`SEARCH_SPACES`, the config's ``space``):

* ``nb201``: NB201's supernet (:class:`~harness.supernet.model.NB201Network`) with one ``alpha``
  ``[6, 5]`` shared by all cells, its mixed weights repeated for every cell (the network's dense path
  ``[n_cells, 6, 5]``); derivation and truth :func:`harness.search.derive.describe` (NB201's embedded
  final test accuracies).
* ``darts``: the DARTS search network (:class:`~harness.supernet.darts_model.DartsNetwork`, mixed
  forward) with ``alpha`` ``[2, 14, 8]``, one ``[14, 8]`` block for all normal cells and one for both
  reduction cells, over DARTS's 8 candidates :data:`~harness.spaces.darts.PRIMITIVES` (``none``
  first), as quark0/darts ``cnn/model_search.py`` holds ``alphas_normal`` and ``alphas_reduce``;
  derivation and truth :func:`harness.search.derive.describe_genotype` (DARTS's top-2 rule, NB301's
  embedded surrogate).
* ``darts-s2``: the same over the S2 space of Zela et al. 2020 ("Understanding and Robustifying
  DARTS", Sec. 3; automl/RobustDARTS ``src/spaces.py``, ``primitives_2``): the candidates
  ``skip_connect`` and ``sep_conv_3x3`` on every edge of both cell types and no ``none``, so ``alpha``
  is ``[2, 14, 2]`` and the network holds only those two ops' modules.

Both DARTS spaces build the network of the weight-sharing DARTS space's shape for the config's
shared sections (:meth:`harness.supernet.spaces.darts.DartsSpace.shape` of ``cfg.ws_config()``), as
``nb201`` builds NB201's. Torch is imported only by the network methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.benchmark import Benchmark
from harness.errors import choices
from harness.registry import load_benchmark
from harness.search.derive import DARTS_TRUTH_COLUMN, TRUTH_COLUMNS, describe, describe_genotype
from harness.spaces import darts, nb201
from harness.supernet.spaces.darts import DartsSpace
from harness.supernet.spaces.nb201 import NB201Space

if TYPE_CHECKING:
    import torch

    from harness.search.config import SearchConfig

S2_OPS: tuple[str, ...] = ("skip_connect", "sep_conv_3x3")  # Zela et al. 2020, S2 (RobustDARTS primitives_2)


class SearchSpace(ABC):
    """One search space of a differentiable search (module docstring)."""

    name: str  # the config's ``space``
    ops: tuple[str, ...]  # the candidate ops of every edge, the last axis of alpha
    ws_space: str  # the weight-sharing space (harness.supernet.spaces.SPACES) whose network shape it builds
    benchmark: str  # the embedded benchmark of its truth (harness.registry)
    truth_columns: tuple[str, ...]  # the truth keys of describe()
    # section -> key -> value: the space's defaults, between SearchConfig's and a config file's
    config_defaults: dict[str, dict[str, Any]] = {}

    @abstractmethod
    def build_network(self, cfg: SearchConfig) -> torch.nn.Module:
        """The mixed-op network of ``cfg`` with fresh weights."""

    @abstractmethod
    def alpha_shape(self, cfg: SearchConfig) -> tuple[int, ...]:
        """The shape of the architecture weights ``alpha`` (and of the mixed weights)."""

    @abstractmethod
    def mixed_path(self, net: torch.nn.Module, weights: torch.Tensor) -> torch.Tensor:
        """What ``net``'s forward takes for the mixed weights ``weights`` (``alpha``'s shape)."""

    def logits(self, net: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor,
               params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``net``'s logits of images ``x`` with every op weighted by ``weights`` (``alpha``'s shape,
        normalised), at ``net``'s own parameters or at ``params``."""
        path = self.mixed_path(net, weights)
        if params is None:
            return net(x, path)
        from torch.func import functional_call

        return functional_call(net, params, (x, path))

    def truth_benchmark(self) -> Benchmark:
        """The embedded benchmark :meth:`describe` reads."""
        return load_benchmark(self.benchmark)

    @abstractmethod
    def describe(self, weights: np.ndarray, bench: Benchmark) -> dict[str, Any]:
        """The arch the op weights ``weights`` (``alpha``'s shape) derive (``"arch"``), its
        ``"n_skip"`` and ``"n_parameter_free"`` op counts, its ``"depth"``, and its truth, one entry per
        :attr:`truth_columns`, from ``bench`` (:meth:`truth_benchmark`); HarnessError for weights of the
        wrong shape."""


class NB201SearchSpace(SearchSpace):
    """NB201 (module docstring)."""

    name = "nb201"
    ops = nb201.OPS
    ws_space = "nb201"
    benchmark = "nb201"
    truth_columns = tuple(TRUTH_COLUMNS)

    def build_network(self, cfg: SearchConfig) -> torch.nn.Module:
        from harness.supernet.model import NB201Network

        return NB201Network(NB201Space().shape(cfg.ws_config()))

    def alpha_shape(self, cfg: SearchConfig) -> tuple[int, ...]:
        return (len(nb201.EDGES), len(nb201.OPS))

    def mixed_path(self, net: torch.nn.Module, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` repeated for every cell: the dense path ``[n_cells, 6, 5]``."""
        return weights.expand(net.shape.n_cells, *weights.shape)

    def describe(self, weights: np.ndarray, bench: Benchmark) -> dict[str, Any]:
        """:func:`harness.search.derive.describe` (also ``"arch_index"``, the NB201 index)."""
        return describe(weights, bench)


class DartsSearchSpace(SearchSpace):
    """The DARTS space over the candidate ops ``ops`` (module docstring)."""

    ws_space = "darts"
    benchmark = "nb301"
    # Table B.1's DARTS-space row and quark0/darts train_search.py: 8 cells, weight decay 3e-4
    config_defaults = {"network": {"cells_per_stage": 2}, "search": {"weight_decay": 3e-4}}
    truth_columns = (DARTS_TRUTH_COLUMN,)

    def __init__(self, name: str, ops: tuple[str, ...]):
        self.name = name
        self.ops = darts.check_candidates(ops)

    def build_network(self, cfg: SearchConfig) -> torch.nn.Module:
        from harness.supernet.darts_model import DartsNetwork

        return DartsNetwork(DartsSpace().shape(cfg.ws_config()), candidates=self.ops)

    def alpha_shape(self, cfg: SearchConfig) -> tuple[int, ...]:
        return (len(darts.CELLS), darts.EDGES_PER_CELL, len(self.ops))

    def mixed_path(self, net: torch.nn.Module, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` itself: the network's mixed forward takes ``[2, 14, len(ops)]``."""
        return weights

    def describe(self, weights: np.ndarray, bench: Benchmark) -> dict[str, Any]:
        """:func:`harness.search.derive.describe_genotype` (counts and depth of the normal cell)."""
        return describe_genotype(weights, self.ops, bench)


SEARCH_SPACES: dict[str, SearchSpace] = {
    "nb201": NB201SearchSpace(),
    "darts": DartsSearchSpace("darts", darts.PRIMITIVES),
    "darts-s2": DartsSearchSpace("darts-s2", S2_OPS),
}


def get_search_space(name: str) -> SearchSpace:
    """The search space called ``name`` (one of :data:`SEARCH_SPACES`)."""
    if name not in SEARCH_SPACES:
        raise choices("differentiable search space", name, SEARCH_SPACES)
    return SEARCH_SPACES[name]
