"""NAS-Bench-1Shot1 spaces 1, 2 and 3 (the thesis's NB101-1/2/3, Table 4.2) for weight sharing.

An arch is a :class:`harness.spaces.nb1shot1.Config` (the parents of nodes 1..k+1 and the ops of blocks 1..k). Its
text form (``archs.csv``, the logs) is its index in the space's enumeration order
(:meth:`harness.spaces.nb1shot1.SearchSpace.config`: parent choices in ``itertools`` order, then the ops), written in
decimal: ``"0"`` .. ``"14579"`` in space 1, ``"29159"`` in space 2, ``"1312199"`` in space 3. The run's
``arch_index`` is the same number. A path is one configuration, run by every cell (the one-shot model shares the cell
architecture across cells); :mod:`harness.supernet.nb1shot1_model` is the network.

Samplers (pure functions of a ``numpy.random.Generator``):

- :meth:`NB1Shot1Space.uniform_path` (RandomNAS, and the paths of MultiPath, Reptile, Metaprox): one
  ``rng.integers(0, n_configs)`` draw, decoded by the enumeration order: uniform over the configurations, i.e. every
  node's parents and every block's op independently uniform, as the official random search with weight sharing draws
  them (``SearchSpace.sample(with_loose_ends=True)`` in automl/nasbench-1shot1 ``nasbench_analysis/search_spaces/
  search_space.py``: ``random.sample`` of each node's parent combinations, ``random.choices`` of the ops).
- SPOS draws the same (:meth:`~harness.supernet.spaces.base.Space.spos_path`'s default): with one configuration per
  network, SPOS's uniform path is the uniform configuration.
- FairNAS is refused: the thesis did not run it on NAS-Bench-1Shot1 (Table 4.2 leaves it empty); its strictly fair
  paths place every op of every *edge* once per update, which 1Shot1's per-node ops and parent choices do not fit.

The arch set: ``finetune.n_archs`` configurations drawn with ``finetune.arch_seed`` among those whose NB101 cell the
NB101 data holds (``load_benchmark("nb1shot1-<n>", truth_root).sample(n, seed, with_data=True)``). Ground truth: NB101's
CIFAR-10 accuracy of the cell after ``report.truth_schedule`` (108) epochs. With the embedded 20,001-cell NB101 table
(no ``truth_root``) that is the *validation* accuracy of one training run, and the archs come from the configurations
whose cell the table holds (913 / 1,584 / 100,712 of spaces 1/2/3, 131 / 381 / 2,698 cells); the thesis ranks by *test*
accuracy over the whole space, which needs a converted official NB101 store as ``truth_root``: then the truth is the
test accuracy, the mean of the cell's 3 training runs. ``truth_source`` says which, and how many distinct NB101 cells
the configurations drawn are (loose-end ops and isomorphic graphs give one cell several configurations: from the
embedded table, 200 configurations of space 1 drawn with seed 0 are 44 cells, so the truth has many ties).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.spaces.nb1shot1 import Config, search_space
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces.base import ArchSet, Space, single_arch_group

if TYPE_CHECKING:
    import torch

    from harness.supernet.config import WSConfig
    from harness.supernet.nb1shot1_model import OneShotNetwork, OneShotShape

DATASET = "cifar10"  # NB101's one dataset


class NB1Shot1Space(Space):
    """NAS-Bench-1Shot1 space ``number`` (module docstring)."""

    datasets = ("cifar10-valid",)  # NB101 trains on CIFAR-10; a weight-sharing run needs its validation half
    refused_algorithms = {
        "fairnas": "the thesis did not run FairNAS on NAS-Bench-1Shot1 (Table 4.2 leaves it empty): its per-edge "
                   "formulation does not fit 1Shot1's per-node ops; valid here: "
                   + ", ".join(name for name in ALGORITHMS if name != "fairnas"),
    }
    # Table B.1's NASBench-1shot1 column where it differs from NB201's (weight decay 3e-4, 50 epochs; batch 64 and lr
    # 0.025 cosine to 0.001 are the same), the official one-shot model's size (optimizers/random_search_with_weight_
    # sharing/darts_wrapper_discrete.py: init_channels 16, layers 9 = 3 stacks of 3 cells) and BatchNorm (affine, with
    # running statistics: harness.supernet.nb1shot1_model), and NB101's 108-epoch truth.
    config_defaults: dict[str, dict[str, Any]] = {
        "network": {"channels": 16, "cells_per_stage": 3, "bn_affine": True, "bn_track_running_stats": True},
        "supernet": {"epochs": 50, "weight_decay": 3e-4},
        "finetune": {"weight_decay": 3e-4},
        "report": {"truth_schedule": "108"},
    }

    def __init__(self, number: int):
        self.space = search_space(number)  # raises naming the valid spaces
        self.number = number
        self.name = f"nb1shot1-{number}"
        self.label = f"NB101-{number} (NAS-Bench-1Shot1 space {number})"

    # -- archs and their text form ------------------------------------------------------------

    def encode(self, arch: Config) -> str:
        """The configuration's index in the enumeration order, in decimal."""
        return str(self.space.index(arch))

    def decode(self, text: str) -> Config:
        """The configuration whose index ``text`` (decimal digits) is."""
        if not isinstance(text, str) or not re.fullmatch(r"[0-9]+", text):
            raise HarnessError(f"a {self.name} arch is written as its configuration index, decimal digits "
                               f"0..{self.space.n_configs - 1}; got {text!r}")
        return self.space.config(int(text))  # raises on an index out of range

    # -- what an update trains ------------------------------------------------------------------

    def uniform_path(self, rng: np.random.Generator, n_cells: int) -> Config:
        """One configuration, uniform over the space (one ``rng.integers(0, n_configs)`` draw), run by every cell (so
        ``n_cells`` does not enter)."""
        return self.space.config(int(rng.integers(0, self.space.n_configs)))

    # -- the archs a run ranks ----------------------------------------------------------------

    def arch_set(self, cfg: WSConfig, truth_root: Path | None = None) -> ArchSet:
        """``finetune.n_archs`` configurations drawn with ``finetune.arch_seed`` among those with NB101 data, and their
        truth (module docstring)."""
        bench = load_benchmark(self.name, truth_root)
        schedule = cfg.report.truth_schedule
        indices = bench.sample(cfg.finetune.n_archs, cfg.finetune.arch_seed, with_data=True)
        cells = len(np.unique(bench.resolve(indices)))
        drawn = f"{len(indices)} configurations, {cells} distinct NB101 cells"
        if "test" in bench.capabilities().splits:
            truth, truth_split = bench.final(indices, DATASET, "accuracy", "test", schedule), "test"
            source = f"NB101 {DATASET} {schedule}-epoch test accuracy (mean of the cell's training runs); {drawn}"
        else:
            truth, truth_split = bench.final(indices, DATASET, "accuracy", "valid", schedule), "val"
            source = (f"NB101 {DATASET} {schedule}-epoch validation accuracy (val_accuracy) of one training run, from the "
                      f"embedded 20,001-cell table; {drawn}, drawn among the {len(bench.archs_with_data()):,} of "
                      f"{self.space.n_configs:,} configurations whose cell it holds. The thesis ranks by test accuracy: "
                      "pass a converted official NB101 store as --truth-root")
        arches = tuple(str(int(i)) for i in indices)
        return ArchSet(np.asarray(indices, dtype=np.int64), arches, np.asarray(truth, dtype=np.float64), source, truth_split)

    def params(self, archs: ArchSet) -> np.ndarray:
        """NB101's trainable parameter count (millions) of the archs' cells, from the embedded NB101 table."""
        bench = load_benchmark(self.name)
        try:
            return bench.query(archs.indices, DATASET, "params", "cost", "108").values[:, 0, 0]
        except HarnessError as err:
            raise HarnessError(f"the embedded NB101 table lacks the parameter count of some archs of this run ({err}); "
                               "an arch set drawn from a converted NB101 store needs that store, which Space.params "
                               "is not given") from None

    def thesis_dataset(self, dataset: str) -> str:
        return f"NB101-{self.number}"

    # -- networks (torch) ---------------------------------------------------------------------

    def shape(self, cfg: WSConfig) -> OneShotShape:
        from harness.data.nb201 import dataset_info
        from harness.supernet.nb1shot1_model import OneShotShape

        net = cfg.network
        return OneShotShape(
            space=self.number,
            channels=net.channels,
            cells_per_stage=net.cells_per_stage,
            n_classes=dataset_info(cfg.data.dataset).n_classes,
            bn_affine=net.bn_affine,
            bn_track_running_stats=net.bn_track_running_stats,
            stem_bn_running_stats=net.outer_bn_running_stats,
        )

    def build_supernet(self, cfg: WSConfig) -> OneShotNetwork:
        from harness.supernet.nb1shot1_model import OneShotNetwork

        return OneShotNetwork(self.shape(cfg))

    def materialise_group(self, supernet: torch.nn.Module, archs: Sequence[Config]) -> torch.nn.Module:
        """The standalone network of the one arch in ``archs`` (:func:`harness.supernet.nb1shot1_model.materialise`)
        as an arch group of one; NB1Shot1 finetunes one arch at a time."""
        from harness.supernet.nb1shot1_model import materialise

        if len(archs) != 1:
            raise HarnessError(f"{self.label} finetunes one arch at a time (device.archs_per_group = 1); got {len(archs)} archs")
        return single_arch_group(materialise(supernet, archs[0]), archs[0])
