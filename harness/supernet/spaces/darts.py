"""The DARTS space (NAS-Bench-301) for weight sharing: its archs, samplers, arch set and truth, supernet.

Thesis Sec. 4.2.2, Table 4.2 (DARTS rows): a DARTS search network is trained as a supernet, 350
genotypes inherit its weights and are finetuned, and the estimators are ranked against the
NAS-Bench-301 prediction of each genotype's accuracy.

**Archs.** An arch is a DARTS genotype, :class:`harness.spaces.darts.Genotype`: a normal and a
reduction cell of 4 intermediate nodes, node ``m + 2`` summing ``op(input)`` over its two
``(op, input)`` pairs (entries ``2m`` and ``2m + 1``), inputs two distinct earlier nodes, ops one of
the 7 non-zero DARTS ops :data:`harness.spaces.darts.OPS`. Archs are kept canonical (the two pairs of
a node sorted by input, which changes no sum), and written as the genotype's printed string
(``str(genotype)``, as the NB301 adapter labels archs), read back by
:func:`harness.spaces.darts.parse_genotype`.

**Paths.** A path is one genotype, run by every cell of its type (every normal cell runs
``genotype.normal``, both reduction cells ``genotype.reduce``), as DARTS shares one cell pair across
the network; the samplers' ``n_cells`` is therefore unused. :class:`DartsShape` (torch-free) is the
network's layout, :mod:`harness.supernet.darts_model` the network.

**Samplers** (pure functions of the ``numpy.random.Generator``):

- :func:`uniform_genotype` (SPOS, RandomNAS, and the paths of MultiPath, Reptile and Metaprox): one
  genotype uniform over the ~1.08e18 of NB301's space, by
  :func:`harness.spaces.darts.sample_encodings` with ``n = 1``: per cell (normal, then reduction)
  and node, the input pair uniform over the node's ``C(m + 2, 2)`` pairs, then each of its two edges'
  op uniform over the 7 ops. It is the law of the arch set (``load_benchmark("nb301").sample``).
  SPOS samples whole genotypes too: the DARTS space shares a cell pair across the network, so there
  is no per-cell choice for it to draw separately as it does on NB201.
- :func:`fair_genotypes` (FairNAS, thesis Sec. 3.4.2): first the topology, drawn as above (per cell,
  normal then reduction, per node, one ``rng.integers`` over its input pairs); then for each of the
  16 edges of that topology (normal cell, node 2..5, first then second input; then the reduction
  cell likewise) a permutation ``pi_e = rng.permutation(7)``. Path ``k`` (k = 0..6) runs
  ``OPS[pi_e[k]]`` on edge e: 7 genotypes with one topology, across which every edge runs every
  candidate op exactly once (Chu et al. 2021, strict fairness, on the sampled edges). ``none`` is
  not a candidate: an NB301 genotype never runs it. Every op on a path trains (a DARTS cell
  concatenates all its nodes, so no edge is dead as on NB201), so fairness is strict per update.

  The thesis code (Mirofil/AutoDL-Projects,
  ``lib/models/cell_searchs/darts/random_nas/benchmarks/cnn/darts/darts_wrapper_discrete_fair.py``,
  ``sample_arch_fair``) differs from its text: it permutes all 8 DARTS primitives ``none`` included
  (8 paths), draws every path's inputs anew (no shared topology), and reseeds Python's ``random``
  from the fixed run seed at each call, so every update gets the same permutations. This module
  follows the text.

**Arch set and truth.** ``finetune.n_archs`` (350, the thesis's) distinct genotypes drawn with
``finetune.arch_seed`` by ``load_benchmark("nb301").sample``; ``arch_index`` is an arch's position in
that draw (NB301 has no index). Truth: without ``truth_root``, the embedded YAHPO ONNX surrogate's
predicted validation accuracy (%) at its last epoch, 98 (``cifar10/98/valid/accuracy``); with
``truth_root`` = a folder of the official ``nasbench301`` models (``xgb_v1.0/``,
``lgb_runtime_v1.0/``; needs the ``nasbench301`` package), the official XGB ensemble's noise-free
prediction of the final validation accuracy (``cifar10/100/valid/accuracy``).
``report.truth_schedule`` (NB201's) is not used.

**Defaults** (:attr:`DartsSpace.config_defaults`; thesis Table B.1, DARTS space, where it differs
from NB201's): weight decay 3e-4 for the supernet and finetuning, ``cells_per_stage = 2`` (8 cells:
2 normal cells per stage and 2 reductions, the DARTS search network's 8 layers), 350 archs. Batch 64,
lr 0.025 cosine to 0.001, momentum 0.9 and 100 one-shot epochs are NB201's too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.adapters.nb301 import ENSEMBLE_SCHEDULE, SCHEDULE
from harness.benchmark import Benchmark
from harness.data.nb201 import dataset_info
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.spaces.darts import (
    CELLS,
    INPUT_PAIRS,
    N_NODES,
    OPS,
    Genotype,
    encoding_to_genotype,
    genotype_to_encoding,
    parse_genotype,
    sample_encodings,
)
from harness.supernet.spaces.base import ArchSet, Space, single_arch_group

if TYPE_CHECKING:
    import torch

    from harness.supernet.config import WSConfig
    from harness.supernet.darts_model import DartsNetwork

STEM_MULTIPLIER = 3  # the stem has 3C channels (DARTS's stem_multiplier)
MULTIPLIER = N_NODES  # a cell outputs its 4 intermediate nodes concatenated: 4C channels
# the input node (0, 1, 2, ...) of each of a cell's 14 edges: node m + 2 owns edges EDGE_START[m] + input
EDGE_INPUTS: tuple[int, ...] = tuple(src for m in range(N_NODES) for src in range(m + 2))
_CONCAT = tuple(range(2, 2 + N_NODES))


@dataclass(frozen=True)
class CellLayout:
    """One cell of the network: its two inputs' channels, its own C, and whether it (and the cell
    before it) reduces."""

    c_prev_prev: int
    c_prev: int
    channels: int
    reduction: bool
    reduction_prev: bool


@dataclass(frozen=True)
class DartsShape:
    """The DARTS search network's macro-architecture (quark0/darts ``cnn/model_search.py``,
    ``Network``) with ``n_cells = 3 * cells_per_stage + 2`` layers, and BatchNorm options.

    Cells ``n_cells // 3`` and ``2 * n_cells // 3`` reduce (stride 2, channels doubled): with
    ``cells_per_stage = N`` that is N normal cells, a reduction, N normal cells, a reduction, N
    normal cells. The cells' BNs (preprocessing and ops) take ``bn_affine`` and
    ``bn_track_running_stats`` (the config's cell settings; DARTS's search network has
    ``affine=False``); the stem's BN is affine, with running statistics when ``stem_bn_running_stats``
    (the config's ``outer_bn_running_stats``)."""

    channels: int = 16
    cells_per_stage: int = 2
    n_classes: int = 10
    bn_affine: bool = False
    bn_track_running_stats: bool = False
    stem_bn_running_stats: bool = True

    @property
    def n_cells(self) -> int:
        return 3 * self.cells_per_stage + 2

    @property
    def reduction_cells(self) -> tuple[int, int]:
        return self.n_cells // 3, 2 * self.n_cells // 3

    def layout(self) -> list[CellLayout]:
        """Every cell in network order: a cell reads the outputs of the two cells before it (the
        stem's, ``3C`` channels, for the first two), a cell outputs ``4 * its C`` channels, and a
        reduction doubles C."""
        c = self.channels
        c_prev_prev, c_prev, current, reduction_prev = STEM_MULTIPLIER * c, STEM_MULTIPLIER * c, c, False
        cells = []
        for i in range(self.n_cells):
            reduction = i in self.reduction_cells
            current = 2 * current if reduction else current
            cells.append(CellLayout(c_prev_prev, c_prev, current, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, MULTIPLIER * current, reduction
        return cells

    @property
    def head_channels(self) -> int:
        """Channels of the last cell's output, which the classifier reads after global pooling."""
        return MULTIPLIER * self.layout()[-1].channels


def canonical(genotype: Genotype) -> Genotype:
    """``genotype`` checked (HarnessError naming the fault) and canonical: each node's two pairs
    sorted by input, ``*_concat = (2, 3, 4, 5)``. A path or arch is a :class:`Genotype` of tuples, as
    :meth:`DartsSpace.decode` and the samplers give; it is hashable, so the check is cached (a
    supernet forward checks its path)."""
    if not isinstance(genotype, Genotype):
        raise HarnessError(f"a DARTS path or arch is a harness.spaces.darts.Genotype, got {type(genotype).__name__}")
    try:
        hash(genotype)
    except TypeError:
        raise HarnessError("a DARTS Genotype holds tuples of (op, input) tuples (hashable), not lists") from None
    return _canonical(genotype)


@lru_cache(maxsize=65536)
def _canonical(genotype: Genotype) -> Genotype:
    return encoding_to_genotype(genotype_to_encoding(genotype))


def uniform_genotype(rng: np.random.Generator) -> Genotype:
    """One genotype uniform over NB301's space (module docstring)."""
    return encoding_to_genotype(sample_encodings(1, rng)[0])


def fair_genotypes(rng: np.random.Generator) -> list[Genotype]:
    """FairNAS's 7 paths of one update: one topology, and on each of its 16 edges every op once
    (module docstring gives the draws in order)."""
    inputs = [[INPUT_PAIRS[m][int(rng.integers(len(INPUT_PAIRS[m])))] for m in range(N_NODES)] for _ in CELLS]
    perms = np.stack([rng.permutation(len(OPS)) for _ in range(len(CELLS) * 2 * N_NODES)])
    perms = perms.reshape(len(CELLS), N_NODES, 2, len(OPS))  # [cell, node, edge, path]
    paths = []
    for k in range(len(OPS)):
        normal, reduce = (
            tuple((OPS[int(perms[c, m, e, k])], inputs[c][m][e]) for m in range(N_NODES) for e in range(2))
            for c in range(len(CELLS))
        )
        paths.append(Genotype(normal, _CONCAT, reduce, _CONCAT))
    return paths


def surrogate_accuracy(bench: Benchmark, archs: Any, schedule: str = SCHEDULE) -> np.ndarray:
    """The truth of DARTS ``archs`` (any form ``bench.resolve`` reads): NB301's predicted cifar10
    validation accuracy (%) at the last epoch of ``schedule``, ``"98"`` of the embedded YAHPO
    surrogate or ``"100"`` of the official ensemble (module docstring)."""
    return np.asarray(bench.final(archs, "cifar10", "accuracy", "valid", schedule), dtype=np.float64)


def _op_parameters(op: str, channels: int, stride: int) -> int:
    """Weights of one op on ``channels`` channels in the search network (cell BNs without affine
    parameters): a separable conv ``k x k`` is two (depthwise ``C k^2`` + pointwise ``C^2``) halves, a
    dilated conv one such half, a pool has only a BN, a skip is parameter-free at stride 1 and a
    FactorizedReduce (two ``C x C/2`` 1x1 convs, ``C^2``) at stride 2."""
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return 0
    if op == "skip_connect":
        return 0 if stride == 1 else channels * channels
    kernel = int(op[-1])
    half = channels * kernel * kernel + channels * channels
    return 2 * half if op.startswith("sep_conv") else half


def parameter_count(genotype: Genotype, shape: DartsShape = DartsShape()) -> int:
    """Parameters of ``genotype``'s standalone search network of ``shape`` (its cells' BNs without
    affine parameters, as DARTS searches): the stem (``3 * 3C * 9`` conv weights and the BN's ``2 * 3C``),
    each cell's two 1x1 preprocessing convs (``C_pp * C`` and ``C_p * C``, a FactorizedReduce
    after a reduction has the same count) and its genotype's 8 ops (:func:`_op_parameters`, stride 2
    on a reduction cell's edges from its inputs), the classifier ``(4 * 4C + 1) * classes``.
    ``tests/test_ws_darts.py`` checks it against the torch network's count."""
    if shape.bn_affine:
        raise HarnessError("parameter_count counts the search network's cells with BN affine=False only")
    genotype = canonical(genotype)
    c = shape.channels
    total = 3 * STEM_MULTIPLIER * c * 9 + 2 * STEM_MULTIPLIER * c
    for cell in shape.layout():
        total += (cell.c_prev_prev + cell.c_prev) * cell.channels
        for op, src in genotype.reduce if cell.reduction else genotype.normal:
            total += _op_parameters(op, cell.channels, 2 if cell.reduction and src < 2 else 1)
    return total + (shape.head_channels + 1) * shape.n_classes


class DartsSpace(Space):
    """The DARTS space (module docstring)."""

    name = "darts"
    label = "DARTS"
    datasets = ("cifar10-valid",)
    supports_groups = False
    config_defaults = {
        "network": {"cells_per_stage": 2},
        "supernet": {"weight_decay": 3e-4},
        "finetune": {"weight_decay": 3e-4, "n_archs": 350},
    }
    thesis_table = "4.2"

    def encode(self, arch: Genotype) -> str:
        return str(canonical(arch))

    def decode(self, text: str) -> Genotype:
        return canonical(parse_genotype(text))

    def n_cells(self, cfg: WSConfig) -> int:
        """The network's cells, ``3 * cells_per_stage + 2`` (the samplers draw one genotype for all)."""
        return self.shape(cfg).n_cells

    def uniform_path(self, rng: np.random.Generator, n_cells: int) -> Genotype:
        return uniform_genotype(rng)

    def fair_paths(self, rng: np.random.Generator, n_cells: int) -> list[Genotype]:
        return fair_genotypes(rng)

    def check(self, cfg: WSConfig) -> None:
        """Also refuse what the network cannot build: an odd ``network.channels`` (a
        FactorizedReduce gives half its channels to each of two convs) and an image side that two
        reductions cannot halve evenly (FactorizedReduce needs an even side at both)."""
        super().check(cfg)
        if cfg.network.channels < 2 or cfg.network.channels % 2:
            raise HarnessError(f"network.channels on DARTS must be even and >= 2 (FactorizedReduce halves them), "
                               f"got {cfg.network.channels}")
        side = cfg.data.image_size if cfg.data.image_size is not None else dataset_info(cfg.data.dataset).side
        if side < 4:
            raise HarnessError(f"data.image_size on DARTS must be 4 or more (two reductions halve an even side), got {side}")

    def thesis_dataset(self, dataset: str) -> str:
        return "DARTS"

    def arch_set(self, cfg: WSConfig, truth_root: Path | None = None) -> ArchSet:
        """``finetune.n_archs`` genotypes drawn with ``finetune.arch_seed`` and their NB301 truth (module docstring)."""
        if truth_root is None:
            bench, schedule = load_benchmark("nb301"), SCHEDULE
            source = "NB301 (embedded YAHPO ONNX surrogate) predicted val_accuracy % at epoch 98, cifar10"
        else:
            bench, schedule = load_benchmark("nb301", None, nb_models=truth_root), ENSEMBLE_SCHEDULE
            source = f"NB301 official nasbench301 XGB ensemble ({truth_root}) predicted final val_accuracy %, cifar10, no noise"
        encodings = bench.sample(cfg.finetune.n_archs, cfg.finetune.arch_seed)
        arches = tuple(self.encode(encoding_to_genotype(row)) for row in encodings)
        return ArchSet(np.arange(len(arches), dtype=np.int64), arches, surrogate_accuracy(bench, encodings, schedule), source, "val")

    def params(self, archs: ArchSet) -> np.ndarray:
        """Parameter counts (millions) of each genotype's standalone *search-size* network: C = 16,
        8 cells, CIFAR-10's 10 classes, cell BNs without affine parameters (:func:`parameter_count`).
        NB301's training network (DARTS's evaluation network with 32 initial channels and 8 cells, nasbench301's
        ``fixed_hyperparameters``) is not built in this repository."""
        return np.array([parameter_count(self.decode(text)) / 1e6 for text in archs.arches])

    # -- networks (torch) -----------------------------------------------------------------------

    def shape(self, cfg: WSConfig) -> DartsShape:
        net = cfg.network
        return DartsShape(
            channels=net.channels,
            cells_per_stage=net.cells_per_stage,
            n_classes=dataset_info(cfg.data.dataset).n_classes,
            bn_affine=net.bn_affine,
            bn_track_running_stats=net.bn_track_running_stats,
            stem_bn_running_stats=net.outer_bn_running_stats,
        )

    def build_supernet(self, cfg: WSConfig) -> DartsNetwork:
        from harness.supernet.darts_model import DartsNetwork

        return DartsNetwork(self.shape(cfg))

    def materialise_group(self, supernet: torch.nn.Module, archs: Sequence[Genotype]) -> torch.nn.Module:
        """The one genotype of ``archs`` as a standalone network holding copies of its supernet
        weights (:func:`harness.supernet.darts_model.materialise`), as an arch group of one."""
        from harness.supernet.darts_model import materialise

        if len(archs) != 1:
            raise HarnessError(f"the DARTS space finetunes one arch at a time (device.archs_per_group = 1), got {len(archs)}")
        return single_arch_group(materialise(supernet, archs[0]), archs[0])

