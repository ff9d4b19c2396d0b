"""The interface every weight-sharing search space implements, and the arch set a run ranks.

The core never looks inside an arch or a path: it asks the space. An *arch* is whatever the space
uses for one architecture (an NB201 6-op tuple, a NAS-Bench-1Shot1 configuration, a DARTS genotype),
written to the run's ``archs.csv`` as text (:meth:`Space.encode`, read back by :meth:`Space.decode`).
A *path* is what one forward pass of the supernet runs (the space's ``supernet(x, path)``); the
algorithms (:mod:`harness.supernet.sampling`) draw paths only through the space's samplers.

The torch-free part (archs, samplers, the arch set and its truth) is what a config check and a
report need; the network part (:meth:`Space.build_supernet`, :meth:`Space.materialise_group`) imports
torch when it is called.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.errors import HarnessError

if TYPE_CHECKING:  # a config refers to its space, and the network part needs torch
    import torch

    from harness.supernet.config import WSConfig

Arch = Any  # the space's form of one architecture
PathDraw = Any  # what one supernet forward pass runs
TRUTH_SPLITS = ("test", "val")  # the split whose accuracy a truth is: the report's "test acc" or "val acc"


def legacy_truth_split(source: str) -> str:
    """The truth's split of a run folder whose ``truth.json`` predates its ``split`` field: every
    validation-accuracy truth then named ``val_accuracy`` in its source (NASLib's table, NB101's
    embedded table, NB301), and no test-accuracy one did."""
    return "val" if "val_accuracy" in source else "test"


@dataclass(frozen=True)
class ArchSet:
    """The archs a run ranks, drawn once with a seed: an integer id each (``arch_index`` in the logs),
    the arch as text (:meth:`Space.encode`), and its ground-truth accuracy (%), of the split
    ``truth_split`` (one of :data:`TRUTH_SPLITS`), from ``truth_source`` (in words)."""

    indices: np.ndarray
    arches: tuple[str, ...]
    truth: np.ndarray
    truth_source: str
    truth_split: str

    def __post_init__(self) -> None:
        if self.truth_split not in TRUTH_SPLITS:
            raise HarnessError(f"truth_split must be one of {', '.join(TRUTH_SPLITS)}, got {self.truth_split!r}")

    def subset(self, keep: np.ndarray) -> ArchSet:
        return ArchSet(self.indices[keep], tuple(np.asarray(self.arches)[keep]), self.truth[keep], self.truth_source,
                       self.truth_split)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"arch_index": self.indices, "arch": self.arches, "truth": self.truth})

    @staticmethod
    def read(out: Path) -> ArchSet:
        """The arch set of a run folder (``archs.csv``, ``truth.json``; a ``truth.json`` without ``split``
        is read by :func:`legacy_truth_split`)."""
        path = Path(out) / "archs.csv"
        if not path.is_file():
            raise HarnessError(f"{out} is not a weight-sharing run directory (no archs.csv)")
        frame = pd.read_csv(path, dtype={"arch": str})
        truth = Path(out) / "truth.json"
        info = json.loads(truth.read_text()) if truth.is_file() else {}
        source = info.get("source", "")
        split = info.get("split", legacy_truth_split(source))
        return ArchSet(frame.arch_index.to_numpy(), tuple(frame.arch), frame.truth.to_numpy(dtype=np.float64), source, split)


class Space(ABC):
    """One search space for weight sharing (module docstring)."""

    name: str  # the config's ``space``
    label: str  # how the thesis's tables name it
    datasets: tuple[str, ...]  # the ``data.dataset`` values a run on it can use
    supports_groups: bool = False  # arch groups (device.archs_per_group > 1), see harness.supernet.finetune
    supports_dense: bool = False  # dense supernet updates, see harness.supernet.dense
    refused_algorithms: dict[str, str] = {}  # algorithm -> why it is not defined on the space
    # the space's own defaults where the thesis's Table B.1 differs from NB201's (e.g. weight decay 3e-4,
    # 50 epochs): {section: {key: value}}, applied under the config file's own values
    config_defaults: dict[str, dict[str, Any]] = {}

    # -- archs and their text form ---------------------------------------------------------

    @abstractmethod
    def encode(self, arch: Arch) -> str:
        """The arch as the text written to ``archs.csv`` and the logs."""

    @abstractmethod
    def decode(self, text: str) -> Arch:
        """The arch of its text form (raises HarnessError on a malformed one)."""

    def items(self, archs: ArchSet) -> list[tuple[int, Arch]]:
        """``(arch_index, arch)`` of every arch of the set, in its order."""
        return [(int(i), self.decode(text)) for i, text in zip(archs.indices, archs.arches)]

    # -- what an update trains --------------------------------------------------------------

    def n_cells(self, cfg: WSConfig) -> int:
        """The cells a path has one draw for (the samplers' ``n_cells``)."""
        return 3 * cfg.network.cells_per_stage

    @abstractmethod
    def uniform_path(self, rng: np.random.Generator, n_cells: int) -> PathDraw:
        """One arch drawn uniformly from the space, run by every cell (RandomNAS, and one path of
        MultiPath, Reptile and Metaprox)."""

    def arch_path(self, arch: Arch, n_cells: int) -> PathDraw:
        """The path that runs ``arch`` alone (every cell the same), for a fixed-arch supernet update; a
        space whose path is one arch (NAS-Bench-1Shot1, DARTS) runs the arch itself."""
        return arch

    def spos_path(self, rng: np.random.Generator, n_cells: int) -> PathDraw:
        """SPOS's path; a whole-network uniform arch unless the space draws per cell."""
        return self.uniform_path(rng, n_cells)

    def fair_paths(self, rng: np.random.Generator, n_cells: int) -> list[PathDraw]:
        """FairNAS's strictly fair paths of one update (a space without them lists ``fairnas`` in
        :attr:`refused_algorithms`, so a config never gets here)."""
        raise HarnessError(f"FairNAS is not defined on {self.label}")

    def check(self, cfg: WSConfig) -> None:
        """Refuse settings the space cannot run (called when a config loads)."""
        if cfg.data.dataset not in self.datasets:
            raise HarnessError(f"space {self.name!r} runs on dataset(s) {', '.join(self.datasets)}, not {cfg.data.dataset!r}")
        if cfg.device.archs_per_group > 1 and not self.supports_groups:
            raise HarnessError(f"device.archs_per_group > 1 (arch groups) is implemented for NB201 only, not {self.label}")
        if cfg.device.dense_supernet == "on" and not self.supports_dense:
            raise HarnessError(f"device.dense_supernet = 'on' is implemented for NB201 only, not {self.label}; use 'auto' or 'off'")
        if cfg.supernet.algorithm in self.refused_algorithms:
            raise HarnessError(f"supernet.algorithm = {cfg.supernet.algorithm!r} on {self.label}: "
                               f"{self.refused_algorithms[cfg.supernet.algorithm]}")

    # -- the archs a run ranks ---------------------------------------------------------------

    @abstractmethod
    def arch_set(self, cfg: WSConfig, truth_root: Path | None = None) -> ArchSet:
        """``finetune.n_archs`` archs drawn with ``finetune.arch_seed`` and their truth."""

    @abstractmethod
    def params(self, archs: ArchSet) -> np.ndarray:
        """The archs' parameter counts (millions) as the benchmark records them (Table 4.5's Params)."""

    thesis_table: str = "4.2"  # the thesis's table of this space's one-shot results (4.1 is NB201's)

    @abstractmethod
    def thesis_dataset(self, dataset: str) -> str:
        """The key of this space on ``dataset`` in :attr:`thesis_table` (its ``dataset`` column in
        Table 4.1, ``search_space`` in Table 4.2: ``"CIFAR10"``, ``"NB101-1"``, ``"DARTS"``)."""

    def thesis_search_space(self, dataset: str) -> str:
        """This space on ``dataset`` as Tables 4.4 and 4.5 name it (``"NB101-1"``, ``"DARTS"``)."""
        return self.thesis_dataset(dataset)

    # -- networks (torch) ---------------------------------------------------------------------

    @abstractmethod
    def build_supernet(self, cfg: WSConfig) -> torch.nn.Module:
        """The supernet of ``cfg`` with fresh weights (the caller seeds torch); ``net(x, path)`` runs a path."""

    @abstractmethod
    def materialise_group(self, supernet: torch.nn.Module, archs: Sequence[Arch]) -> torch.nn.Module:
        """The archs side by side as one network holding exact copies of their supernet weights:
        ``net(x)`` maps ``[B, 3K, H, W]`` (arch a's images in channels 3a..3a+2) to logits
        ``[B, K, classes]``, ``net.group`` lists the archs and ``net.parameter_archs()`` gives every
        parameter with the archs its blocks of rows belong to (:class:`harness.supernet.finetune.FlatSGD`)."""


def single_arch_group(net: torch.nn.Module, arch: Arch) -> torch.nn.Module:
    """A standalone network ``net`` of ``arch`` as an arch group of one (:meth:`Space.materialise_group`
    for spaces without arch groups): ``forward(x)`` gives ``[B, 1, classes]``, ``group`` is
    ``(arch,)`` and every parameter belongs to arch 0."""
    from harness.supernet.group import SingleArchGroup

    return SingleArchGroup(net, arch)
