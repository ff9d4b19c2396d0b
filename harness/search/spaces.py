"""The search spaces a differentiable search runs on: one interface, one class per kind of space.

A search space (:class:`SearchSpace`) says what the algorithms need to know of it and nothing else:

* :meth:`~SearchSpace.build_network`: its mixed-op network, fresh weights (the caller seeds torch);
* :meth:`~SearchSpace.alpha_shape`: the shape of the architecture weights ``alpha``, and
  :meth:`~SearchSpace.alpha_mask` which of its entries are real: every entry (None) but where ``alpha`` packs
  groups of different lengths into rows of one length, padded (NAS-Bench-1Shot1); every mixing normalises each row
  over its real entries and gives the padding weight 0 (:mod:`harness.search.algorithms`);
* :meth:`~SearchSpace.draw_alpha`: ``std * N(0, 1)`` for alpha's real entries from torch's seeded RNG, in
  the order the space's own code draws its groups;
* :meth:`~SearchSpace.logits`: the network's logits under mixed weights of ``alpha``'s shape, already
  normalised by the algorithm (``softmax(alpha)`` for the DARTS family), at the network's own
  parameters or at ``params`` (``torch.func.functional_call``, for DARTS second order's virtual step);
* :meth:`~SearchSpace.describe`: the arch that op weights (``alpha`` as the algorithm normalises it
  for derivation, :mod:`harness.search.derive`) derive, its skip and parameter-free op counts, its
  cell depth and its truth (:meth:`~SearchSpace.truth_columns_of` the config) from :meth:`~SearchSpace.truth_benchmark`
  (the embedded data; NAS-Bench-1Shot1 also a converted official NB101 store, the config's ``search.truth_root``).

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

* ``nb1shot1-1``, ``nb1shot1-2``, ``nb1shot1-3``: NAS-Bench-1Shot1's one-shot model
  (:class:`~harness.supernet.nb1shot1_model.OneShotNetwork`, its mixed forward) with the official DARTS
  architecture weights (automl/nasbench-1shot1 ``optimizers/darts/model_search.py``,
  ``Network._initialize_alphas``): ``alphas_mixed_op`` ``[k, 3]`` (per block over the ops, in the official
  ``PRIMITIVES`` order :data:`~harness.search.derive.NB1SHOT1_OPS`), ``alphas_output`` ``[1, k + 1]`` (the output's
  inputs: the cell input, blocks 1..k) and ``alphas_inputs``, one ``[1, i]`` per block i with a choice of parents
  (over nodes 0..i-1: blocks 3..k in space 1, 2..k in spaces 2 and 3; the official ``range(begin, k + 1)``), each
  normalised over its own entries. ``alpha`` packs them into rows of ``max(3, k + 1)``: rows 0..k-1 the op rows, row
  k the output row, then the input rows in block order, each row's entries first and the rest padding
  (:meth:`~NB1Shot1SearchSpace.alpha_mask`; padding stays 0). Derivation and truth
  :func:`harness.search.derive.describe_config` (the official parser, NB101's 108-epoch validation accuracy from
  the embedded table, None where it lacks the cell; with ``search.truth_root``, a converted official NB101 store, the
  108-epoch test accuracy, the mean of the cell's training runs). The config defaults are Table B.1's NASBench-1shot1 column
  where it differs from NB201's (weight decay 3e-4) and the official one-shot model's (``train_search.py``:
  ``init_channels`` 16, ``layers`` 9, i.e. 3 cells per stack; ``operations.py``: the cells' BN affine). The official
  model's BNs keep running statistics, which only its ``infer`` (eval mode, a report of one-shot validation accuracy)
  reads; a search here runs training-mode forwards only, where BN normalises by the batch whether or not it keeps
  them, so the cells' and the head's BN keep none (``bn_track_running_stats = false``, as every search space's:
  the config refuses true) and every logged number is the same; the stem's keeps them
  (``outer_bn_running_stats``), as the official.

The DARTS spaces and NAS-Bench-1Shot1 build the network of their weight-sharing space's shape for the
config's shared sections (e.g. :meth:`harness.supernet.spaces.darts.DartsSpace.shape` of ``cfg.ws_config()``), as
``nb201`` builds NB201's. Torch is imported only by the network methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.benchmark import Benchmark
from harness.errors import HarnessError, choices
from harness.registry import load_benchmark
from harness.search.derive import (DARTS_TRUTH_COLUMN, NB1SHOT1_OPS, NB1SHOT1_TEST_COLUMN, NB1SHOT1_TRUTH_COLUMN,
                                   TRUTH_COLUMNS, describe, describe_config, describe_genotype)
from harness.spaces import darts, nb201
from harness.spaces.nb1shot1 import search_space
from harness.supernet.spaces.darts import DartsSpace
from harness.supernet.spaces.nb1shot1 import NB1Shot1Space
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
    truth_columns: tuple[str, ...]  # the truth keys of describe() over the embedded data
    # section -> key -> value: the space's defaults, between SearchConfig's and a config file's
    config_defaults: dict[str, dict[str, Any]] = {}

    @abstractmethod
    def build_network(self, cfg: SearchConfig) -> torch.nn.Module:
        """The mixed-op network of ``cfg`` with fresh weights."""

    @abstractmethod
    def alpha_shape(self, cfg: SearchConfig) -> tuple[int, ...]:
        """The shape of the architecture weights ``alpha`` (and of the mixed weights)."""

    def alpha_mask(self, cfg: SearchConfig) -> np.ndarray | None:
        """Which entries of ``alpha`` are real (bool, ``alpha``'s shape; False: padding), or None: all of them."""
        return None

    def draw_alpha(self, cfg: SearchConfig, std: float) -> torch.Tensor:
        """``std * N(0, 1)`` per entry of ``alpha`` (float64, padding 0) from torch's global RNG, which the caller
        seeds: one ``randn`` of ``alpha``'s shape."""
        import torch

        return std * torch.randn(*self.alpha_shape(cfg), dtype=torch.float64)

    @abstractmethod
    def mixed_path(self, net: torch.nn.Module, weights: torch.Tensor) -> Any:
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

    def truth_benchmark(self, truth_root: str | None = None) -> Benchmark:
        """The benchmark :meth:`describe` reads: the embedded one (``truth_root`` None), or the data at ``truth_root``
        where the space takes one (:meth:`truth_columns_of`)."""
        if truth_root is not None:
            raise HarnessError(f"a {self.name} search reads its truth from the embedded data and takes no search.truth_root "
                               f"(got {truth_root!r}); only the nb1shot1 spaces take one (a converted NB101 store)")
        return load_benchmark(self.benchmark)

    def truth_columns_of(self, cfg: SearchConfig) -> tuple[str, ...]:
        """The truth keys that :meth:`describe` logs in a search of ``cfg``: :attr:`truth_columns`."""
        return self.truth_columns

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
    truth_columns = tuple(TRUTH_COLUMNS)  # cifar10_test_200 first: the column a report sets beside Table 4.6

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


class NB1Shot1SearchSpace(SearchSpace):
    """NAS-Bench-1Shot1 space ``number`` (module docstring)."""

    ops = NB1SHOT1_OPS
    truth_columns = (NB1SHOT1_TRUTH_COLUMN,)  # the embedded table's validation accuracy; NB1SHOT1_TEST_COLUMN over a store
    config_defaults = {
        "network": {"channels": 16, "cells_per_stage": 3, "bn_affine": True, "bn_track_running_stats": False,
                    "outer_bn_running_stats": True},
        "search": {"weight_decay": 3e-4},
    }

    def __init__(self, number: int):
        self.space = search_space(number)  # raises naming the valid spaces
        self.name = self.ws_space = self.benchmark = f"nb1shot1-{number}"
        k = self.space.n_blocks
        # the blocks with a choice of parents, each with an input row over nodes 0..block-1
        self.input_blocks = tuple(b for b in range(1, k + 1) if len(self.space.parent_choices[b - 1]) > 1)
        self.row_lengths = (len(self.ops),) * k + (k + 1,) + self.input_blocks  # op rows, output row, input rows

    def alpha_shape(self, cfg: SearchConfig) -> tuple[int, ...]:
        return (len(self.row_lengths), max(self.row_lengths))

    def alpha_mask(self, cfg: SearchConfig) -> np.ndarray:
        """Each row's first ``row_lengths[row]`` entries (module docstring)."""
        return np.arange(max(self.row_lengths)) < np.asarray(self.row_lengths)[:, None]

    def draw_alpha(self, cfg: SearchConfig, std: float) -> torch.Tensor:
        """The official draws (``_initialize_alphas``), in its order: ``randn(k, 3)``, ``randn(1, k + 1)``, then
        ``randn(1, i)`` per input row, each times ``std``, placed in the packed rows (padding 0)."""
        import torch

        k = self.space.n_blocks
        groups = [torch.randn(k, len(self.ops), dtype=torch.float64), torch.randn(1, k + 1, dtype=torch.float64),
                  *(torch.randn(1, b, dtype=torch.float64) for b in self.input_blocks)]
        alpha = torch.zeros(self.alpha_shape(cfg), dtype=torch.float64)
        alpha[:k, :len(self.ops)] = std * groups[0]
        for row, group in enumerate(groups[1:], start=k):
            alpha[row, :group.shape[1]] = std * group[0]
        return alpha

    def groups(self, weights: Any) -> tuple[Any, Any, tuple[Any, ...]]:
        """The packed ``weights`` (numpy or torch, ``alpha``'s shape) as the official groups: the op weights ``[k, 3]``,
        the output weights ``[k + 1]``, and per block 1..k its input weights (views), or None for a block without."""
        k = self.space.n_blocks
        if tuple(weights.shape) != (len(self.row_lengths), max(self.row_lengths)):
            raise HarnessError(f"{self.name} op weights are [rows, entries] = {[len(self.row_lengths), max(self.row_lengths)]}, "
                               f"got {list(weights.shape)}")
        rows = dict(zip(self.input_blocks, range(k + 1, len(self.row_lengths))))
        inputs = tuple(weights[rows[b], :b] if b in rows else None for b in range(1, k + 1))
        return weights[:k, :len(self.ops)], weights[k, :k + 1], inputs

    def build_network(self, cfg: SearchConfig) -> torch.nn.Module:
        from harness.supernet.nb1shot1_model import OneShotNetwork

        return OneShotNetwork(NB1Shot1Space(self.space.number).shape(cfg.ws_config()))

    def mixed_path(self, net: torch.nn.Module, weights: torch.Tensor) -> Any:
        """The :class:`~harness.supernet.nb1shot1_model.MixedPath` of the groups of ``weights``."""
        from harness.supernet.nb1shot1_model import MixedPath

        return MixedPath(self.ops, *self.groups(weights))

    def truth_benchmark(self, truth_root: str | None = None) -> Benchmark:
        """The embedded NB101 table (None) or the converted official NB101 store at ``truth_root``, as this space."""
        return load_benchmark(self.benchmark, truth_root)

    def truth_columns_of(self, cfg: SearchConfig) -> tuple[str, ...]:
        """The embedded table's validation accuracy, or over a store (``search.truth_root``) the test accuracy."""
        return (NB1SHOT1_TRUTH_COLUMN,) if cfg.search.truth_root is None else (NB1SHOT1_TEST_COLUMN,)

    def describe(self, weights: np.ndarray, bench: Benchmark) -> dict[str, Any]:
        """:func:`harness.search.derive.describe_config` of the groups of ``weights`` (also ``"arch_index"``, the
        configuration's index, and ``"truth_missing"``)."""
        return describe_config(self.space, *self.groups(np.asarray(weights)), bench)


SEARCH_SPACES: dict[str, SearchSpace] = {
    "nb201": NB201SearchSpace(),
    "darts": DartsSearchSpace("darts", darts.PRIMITIVES),
    "darts-s2": DartsSearchSpace("darts-s2", S2_OPS),
    **{f"nb1shot1-{n}": NB1Shot1SearchSpace(n) for n in (1, 2, 3)},
}


def get_search_space(name: str) -> SearchSpace:
    """The search space called ``name`` (one of :data:`SEARCH_SPACES`)."""
    if name not in SEARCH_SPACES:
        raise choices("differentiable search space", name, SEARCH_SPACES)
    return SEARCH_SPACES[name]
