"""NAS-Bench-201 for weight sharing: its samplers, its arch set and truth, and its supernet.

An arch is a 6-op tuple (:data:`harness.spaces.nb201.EDGES` order), written as the official arch
string. A path is one 6-op tuple per cell, in network order (``n_cells = 3 * cells_per_stage``), so
each cell can run its own ops; :mod:`harness.supernet.model` is the network.

Samplers (each a pure function of a ``numpy.random.Generator``):

- :func:`per_cell_paths` (SPOS): every cell draws its own ops, edge by edge uniformly from the 5 ops,
  and a node whose incoming edges all drew ``none`` redraws them all until one is not ``none``. This
  is the uniform random sampling ("urs") of the thesis's code: ``forward_urs`` of its search cells
  draws per cell, per forward pass, with that rejection loop (Mirofil/AutoDL-Projects
  ``lib/models/cell_searchs/search_cells.py`` l.79-95 at 77776cb), and SPOS's own sampling draws each
  choice block (layer) independently (Guo et al. 2020).
- :func:`per_network_paths` (RandomNAS, and the paths of the variants): one arch, uniform over the
  15,625 (``none`` everywhere allowed), used by every cell: NB201's RANDOM-NAS (Li & Talwalkar 2019
  as Dong & Yang run it), and the thesis code's ``dynamic`` mode that MultiPath, FairNAS and the
  meta-algorithms use (``ArchSampler.sample(mode="random")``, ``random.choices`` over all archs).
- :func:`fairnas_paths` (FairNAS): FairNAS's strict fairness (Chu et al. 2021, Alg. 1): each edge
  draws a random permutation of the 5 ops and path k runs the k-th op of every edge's permutation,
  in every cell. Every op of every edge is placed on one of the 5 paths.

  On NB201 "placed" is not "trained": an op on an edge that is dead in its path (its source node
  gets no signal, or its target feeds no output; :func:`harness.supernet.model.live_edges`) runs on
  nothing and gets no gradient, so fairness holds among one edge's ops in expectation, not strictly
  per step as in the paper's chain-structured spaces (``benchmarks/fairnas_vs_spos.py`` counts it).

The arch set: ``finetune.n_archs`` archs drawn with ``finetune.arch_seed`` from all 15,625 cells.
Ground truth: CIFAR-10 (``cifar10-valid`` runs) uses NB201's 200-epoch ``cifar10`` ``ori-test``
accuracy (seed mean), embedded for all 15,625 archs. For CIFAR-100 and ImageNet16-120 the embedded
200-epoch truth exists only for the 725 (ImageNet16-120: 724) archs of NASLib's zero-cost table
(``harness.zerocost``), so the arch set there is drawn from those archs; a user with the converted
official data passes its store as ``truth_root`` and gets the 200-epoch ``x-test`` accuracy of any arch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.data.nb201 import DATASETS, dataset_info
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.spaces.nb201 import EDGES, N_NODES, OPS, arch_to_ops, ops_to_arch
from harness.supernet.spaces.base import ArchSet, Space

if TYPE_CHECKING:
    import torch

    from harness.supernet.config import WSConfig
    from harness.supernet.model import NB201Network, NetworkShape

CellOps = tuple[str, ...]  # one op per edge
Path201 = tuple[CellOps, ...]  # one cell draw per cell, in network order

NONE = OPS.index("none")
# for each intermediate node, the edges that enter it
_INCOMING: tuple[tuple[int, ...], ...] = tuple(
    tuple(k for k, (_, dst) in enumerate(EDGES) if dst == node) for node in range(1, N_NODES)
)
TRUTH_DATASET = {"cifar10-valid": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "ImageNet16-120"}
THESIS_DATASET = {"cifar10-valid": "CIFAR10", "cifar100": "CIFAR100", "ImageNet16-120": "ImageNet"}


def _cell_ops(codes: np.ndarray) -> CellOps:
    return tuple(OPS[int(i)] for i in codes)


def per_cell_paths(rng: np.random.Generator, n_cells: int) -> list[Path201]:
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


def per_network_paths(rng: np.random.Generator, n_cells: int, k: int = 1) -> list[Path201]:
    """``k`` paths, each one arch uniform over the 15,625 (one ``rng.integers(0, 5, size=6)`` draw
    per path, drawn with replacement) used by every cell."""
    return [(_cell_ops(rng.integers(0, len(OPS), size=len(EDGES))),) * n_cells for _ in range(k)]


def fairnas_paths(rng: np.random.Generator, n_cells: int) -> list[Path201]:
    """Five paths: path k runs ``OPS[pi_e[k]]`` on edge e of every cell, where ``pi_e =
    rng.permutation(5)`` is drawn for each edge in turn. Across the five paths every edge gets every
    op exactly once."""
    perms = np.stack([rng.permutation(len(OPS)) for _ in EDGES])  # [edge, path]
    return [(_cell_ops(perms[:, k]),) * n_cells for k in range(len(OPS))]


class NB201Space(Space):
    """NAS-Bench-201 (module docstring)."""

    name = "nb201"
    label = "NB201"
    datasets = DATASETS[:1] + DATASETS[2:]  # cifar10-valid, cifar100, ImageNet16-120 (cifar10 has no validation split)
    supports_groups = True
    supports_dense = True

    def encode(self, arch: CellOps) -> str:
        return ops_to_arch(arch)

    def decode(self, text: str) -> CellOps:
        return arch_to_ops(text)

    def uniform_path(self, rng: np.random.Generator, n_cells: int) -> Path201:
        return per_network_paths(rng, n_cells)[0]

    def arch_path(self, arch: CellOps, n_cells: int) -> Path201:
        return (arch,) * n_cells

    def spos_path(self, rng: np.random.Generator, n_cells: int) -> Path201:
        return per_cell_paths(rng, n_cells)[0]

    def fair_paths(self, rng: np.random.Generator, n_cells: int) -> list[Path201]:
        return fairnas_paths(rng, n_cells)

    def check(self, cfg: WSConfig) -> None:
        if cfg.data.dataset == "cifar10":
            raise HarnessError("weight-sharing runs need a validation split; use dataset 'cifar10-valid'")
        super().check(cfg)

    thesis_table = "4.1"

    def thesis_dataset(self, dataset: str) -> str:
        return THESIS_DATASET[dataset]

    def thesis_search_space(self, dataset: str) -> str:
        return f"NB201 ({THESIS_DATASET[dataset]})"

    def arch_set(self, cfg: WSConfig, truth_root: Path | None = None) -> ArchSet:
        """``finetune.n_archs`` archs drawn with ``finetune.arch_seed`` (the same for every supernet);
        their truth as the module docstring says."""
        dataset = cfg.data.dataset
        n, seed = cfg.finetune.n_archs, cfg.finetune.arch_seed
        schedule = cfg.report.truth_schedule
        bench = load_benchmark("nb201", truth_root)
        if dataset == "cifar10-valid" or truth_root is not None:
            indices = bench.sample(n, seed)
            split = "ori-test" if dataset == "cifar10-valid" else "x-test"
            truth = bench.final(indices, TRUTH_DATASET[dataset], "accuracy", split, schedule)
            source, truth_split = f"nb201 {TRUTH_DATASET[dataset]}/{schedule}/{split}/accuracy (seed mean)", "test"
        else:
            indices, truth = _zero_cost_pool_sample(dataset, n, seed, schedule)
            source = f"NASLib zero-cost table val_accuracy, {dataset}, 200 epochs (archs drawn from its archs only)"
            truth_split = "val"
        arches = tuple(bench.arch_string(int(i)) for i in indices)
        return ArchSet(np.asarray(indices, dtype=np.int64), arches, np.asarray(truth, dtype=np.float64), source, truth_split)

    def params(self, archs: ArchSet) -> np.ndarray:
        """NB201's parameter count (millions, CIFAR-10 classifier; embedded for all 15,625 archs)."""
        return load_benchmark("nb201").query(archs.indices, "cifar10", "params", "cost", "200").values[:, 0, 0]

    # -- networks (torch) -----------------------------------------------------------------------

    def shape(self, cfg: WSConfig) -> NetworkShape:
        from harness.supernet.model import NetworkShape

        net = cfg.network
        return NetworkShape(
            channels=net.channels,
            cells_per_stage=net.cells_per_stage,
            n_classes=dataset_info(cfg.data.dataset).n_classes,
            bn_affine=net.bn_affine,
            bn_track_running_stats=net.bn_track_running_stats,
            outer_bn_running_stats=net.outer_bn_running_stats,
        )

    def build_supernet(self, cfg: WSConfig) -> NB201Network:
        from harness.supernet.model import NB201Network

        return NB201Network(self.shape(cfg))

    def materialise_group(self, supernet: torch.nn.Module, archs: Sequence[CellOps]) -> NB201Network:
        from harness.supernet.model import materialise_group

        return materialise_group(supernet, archs)


def _zero_cost_pool_sample(dataset: str, n: int, seed: int, schedule: str) -> tuple[np.ndarray, np.ndarray]:
    """``n`` archs (sorted NB201 indices) drawn from the NASLib zero-cost table's archs of ``dataset``,
    with that table's 200-epoch ``val_accuracy`` as their truth."""
    if schedule != "200":
        raise HarnessError(f"{dataset}: the embedded truth for weight sharing is the 200-epoch one; set truth_schedule = '200'")
    from harness.zerocost import embedded_table

    table = embedded_table("nb201")
    table = table[table["dataset"] == dataset].sort_values("index")
    if not 0 < n <= len(table):
        raise HarnessError(f"cannot sample {n} archs from the {len(table)} with {dataset} 200-epoch truth (NASLib table)")
    pick = np.sort(np.random.default_rng(seed).choice(len(table), size=n, replace=False))
    return table["index"].to_numpy()[pick], table["val_accuracy"].to_numpy(dtype=np.float64)[pick]
