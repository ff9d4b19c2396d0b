"""The DARTS search network: a weight-sharing supernet run one genotype at a time or as DARTS's mixed
network, and one standalone genotype.

Followed from quark0/darts (Liu et al. 2019) ``cnn/model_search.py`` (``Network``, ``Cell``,
``MixedOp``) and ``cnn/operations.py``; written anew here.

Macro skeleton (:class:`harness.supernet.spaces.darts.DartsShape`): stem ``Conv3x3(3 -> 3C) + BN``;
``3N + 2`` cells, cells ``n // 3`` and ``2n // 3`` reductions that double C; global average pooling
and a linear classifier on the last cell's ``4C`` channels (no BN or ReLU before the pooling, as in
DARTS; the thesis code's AutoDL variant, ``generic_model_nasnet.py``, adds a BN + ReLU there).

Cell (C channels; inputs s0, s1 = the outputs of the two cells before it): preprocessing
``s0' = FactorizedReduce(s0)`` after a reduction cell (s0 is then twice as large), else
``ReLU-Conv1x1-BN(s0)``, and ``s1' = ReLU-Conv1x1-BN(s1)``; nodes 0, 1 = s0', s1'; intermediate node
``m + 2`` (m = 0..3) sums the ops of its two chosen edges, ``op_a(node a) + op_b(node b)``; the
output concatenates nodes 2..5 (4C channels). A cell has 14 edges, edge ``EDGE_START[m] + j`` from
node j into node m + 2 (the NB301 config's numbering, DARTS's ``offset + j``); in a reduction cell
the edges from nodes 0 and 1 have stride 2.

Ops on C channels (stride s): ``max_pool_3x3`` / ``avg_pool_3x3`` (padding 1; the average excludes
padding) followed by a BN, as DARTS's ``MixedOp`` appends to pools; ``skip_connect`` the identity
(s = 1) or FactorizedReduce (s = 2: ReLU, two 1x1 stride-2 convs to C/2 channels each, the second on
the input shifted by one pixel, concatenated, BN); ``sep_conv_kxk`` twice (ReLU, depthwise kxk conv,
pointwise 1x1 conv, BN), only the first with stride s; ``dil_conv_kxk`` once (ReLU, depthwise kxk
conv with dilation 2, pointwise conv, BN). Convolutions have no bias. DARTS's 8th candidate,
``none`` (zero), has no weights, adds nothing to a sum and is never chosen by an NB301 genotype, so
no module holds it.

Mixed forward (DARTS's ``MixedOp`` and ``Cell.forward``): the supernet's candidate ops are
``candidates``, a subsequence of :data:`~harness.spaces.darts.PRIMITIVES` (all 8, ``none`` first, by
default; the S2 space of Zela et al. 2020, automl/RobustDARTS ``src/spaces.py``, has only
``skip_connect`` and ``sep_conv_3x3``, and its network holds only their modules). Given weights
``w[cell type, edge, op]`` of shape ``[2, 14, len(candidates)]`` (cell type 0 for normal cells, 1 for
reductions; op axis in ``candidates`` order), every cell computes

    node m + 2 = sum over its edges k = (j -> m + 2), j = 0..m+1, of sum over ops o != none, in
                 candidates order, of w[cell type, k, o] * o(node j)

so ``none`` contributes zero and enters only through whatever normalised the weights (DARTS's
softmax). With one-hot weights on a genotype's two edges per node and on ``none`` elsewhere this is
the genotype's single-path forward bit for bit (``1 * y = y``, ``0 * y = 0``, ``t + 0 = t``, and the
two terms are added in the same order; finite activations), though every op runs.

BatchNorm: the cells' BNs take ``bn_affine`` and ``bn_track_running_stats`` (DARTS's search network
has ``affine=False``; the harness's default, like the thesis code's ``--track_running_stats 0``, also
keeps no running statistics, so each batch is normalised with its own statistics in training and
evaluation alike, and archs sharing weights never share statistics); the stem's BN is affine, with
running statistics (used by ``eval()``) unless ``stem_bn_running_stats`` is off.

One class serves both roles: each edge holds a ``ModuleDict`` of its candidate ops, all 7 on every
edge of every cell in the supernet, only the genotype's op on each of its edges in a standalone
network (:func:`materialise`), whose parameter names are the supernet's, so that materialising is
copying a slice of the state dict. A forward pass of a genotype runs exactly its ops, two per node,
so only their weights (and the stem, the preprocessing and the classifier) get gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn

from harness.errors import HarnessError
from harness.spaces.darts import EDGE_START, EDGES_PER_CELL, N_NODES, OPS, PRIMITIVES, Genotype, check_candidates
from harness.supernet.spaces.darts import EDGE_INPUTS, STEM_MULTIPLIER, CellLayout, DartsShape, canonical


def _bn(channels: int, shape: DartsShape) -> nn.BatchNorm2d:
    """A cell's BN (preprocessing and ops)."""
    return nn.BatchNorm2d(channels, affine=shape.bn_affine, track_running_stats=shape.bn_track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU, 1x1 conv, BN: a cell's preprocessing of an input of its own size."""

    def __init__(self, c_in: int, c_out: int, shape: DartsShape):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), _bn(c_out, shape))


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs to ``c_out / 2`` channels each, the second on the input shifted
    by one pixel (so the two see complementary pixels), concatenated, BN: half the side, ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int, shape: DartsShape):
        super().__init__()
        if c_out % 2:
            raise HarnessError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(c_out, shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])], dim=1))


def _depthwise_pointwise(channels: int, kernel: int, stride: int, dilation: int, shape: DartsShape) -> list[nn.Module]:
    """ReLU, depthwise ``kernel`` conv (``same`` padding for stride 1), pointwise 1x1 conv, BN."""
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                  groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        _bn(channels, shape),
    ]


def make_op(op: str, channels: int, stride: int, shape: DartsShape) -> nn.Module:
    """The module of DARTS op ``op`` on ``channels`` channels with ``stride`` (module docstring)."""
    if op == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride=stride, padding=1), _bn(channels, shape))
    if op == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False), _bn(channels, shape))
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, shape)
    if op in ("sep_conv_3x3", "sep_conv_5x5"):
        kernel = int(op[-1])
        return nn.Sequential(*_depthwise_pointwise(channels, kernel, stride, 1, shape),
                             *_depthwise_pointwise(channels, kernel, 1, 1, shape))
    if op in ("dil_conv_3x3", "dil_conv_5x5"):
        return nn.Sequential(*_depthwise_pointwise(channels, int(op[-1]), stride, 2, shape))
    raise HarnessError(f"no module for DARTS op {op!r}; valid: {OPS}")


# one term of an intermediate node's sum: (edge, op, weight), weight None for an unweighted term
Term = tuple[int, str, torch.Tensor | None]


class Cell(nn.Module):
    """One cell (module docstring) whose edge k holds the ops ``candidates[k]``."""

    def __init__(self, layout: CellLayout, candidates: tuple[tuple[str, ...], ...], shape: DartsShape):
        super().__init__()
        self.reduction = layout.reduction
        c = layout.channels
        self.preprocess0 = (FactorizedReduce(layout.c_prev_prev, c, shape) if layout.reduction_prev
                            else ReLUConvBN(layout.c_prev_prev, c, shape))
        self.preprocess1 = ReLUConvBN(layout.c_prev, c, shape)
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, c, 2 if layout.reduction and src < 2 else 1, shape) for op in ops})
            for src, ops in zip(EDGE_INPUTS, candidates)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, terms: Sequence[Sequence[Term]]) -> torch.Tensor:
        """The cell's output: intermediate node ``m + 2`` is the sum, in order, of ``w * op(input of
        edge k)`` over the terms ``(k, op, w)`` of ``terms[m]`` (``op(...)`` itself where w is None)."""
        nodes = [self.preprocess0(s0), self.preprocess1(s1)]
        for node_terms in terms:
            total: torch.Tensor | None = None
            for k, op, w in node_terms:
                y = self.edges[k][op](nodes[EDGE_INPUTS[k]])
                if total is None:
                    total = y if w is None else y * w
                else:
                    total = total + y if w is None else torch.addcmul(total, y, w)
            assert total is not None
            nodes.append(total)
        return torch.cat(nodes[2:], dim=1)


@lru_cache(maxsize=65536)
def _path_terms(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[Term, ...], ...]:
    """A genotype cell's 8 ``(op, input)`` pairs as :meth:`Cell.forward` terms: node m + 2 sums
    ``op_a(node a) + op_b(node b)`` of its two pairs, unweighted."""
    return tuple(tuple((EDGE_START[m] + src, op, None) for op, src in pairs[2 * m:2 * m + 2]) for m in range(N_NODES))


def _edge_ops(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[str, ...], ...]:
    """Per edge of a cell, the one op a genotype cell runs on it, or none."""
    ops: list[tuple[str, ...]] = [() for _ in EDGE_INPUTS]
    for k, (op, src) in enumerate(pairs):
        ops[EDGE_START[k // 2] + src] = (op,)
    return tuple(ops)


class DartsNetwork(nn.Module):
    """The DARTS search network of ``shape``: without ``genotype`` the supernet, every op of
    ``candidates`` but ``none`` on every edge; with it that genotype's standalone network (module
    docstring)."""

    def __init__(self, shape: DartsShape, genotype: Genotype | None = None, candidates: tuple[str, ...] = PRIMITIVES):
        super().__init__()
        self.candidates = check_candidates(candidates)
        if genotype is not None and self.candidates != PRIMITIVES:
            raise HarnessError("a standalone DARTS network holds its genotype's ops; candidates are a supernet's")
        self.shape = shape
        self.genotype = None if genotype is None else canonical(genotype)
        # (op, its column in the mixed weights) of every op with a module, in candidates order
        self._columns = tuple((op, i) for i, op in enumerate(self.candidates) if op != "none")
        every = tuple(tuple(op for op, _ in self._columns) for _ in EDGE_INPUTS)
        c_stem = STEM_MULTIPLIER * shape.channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem, track_running_stats=shape.stem_bn_running_stats))
        cells = []
        for layout in shape.layout():
            if self.genotype is None:
                candidates = every
            else:
                candidates = _edge_ops(self.genotype.reduce if layout.reduction else self.genotype.normal)
            cells.append(Cell(layout, candidates, shape))
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(shape.head_channels, shape.n_classes)

    def forward(self, x: torch.Tensor, genotype: Genotype | torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``genotype`` (a path: every normal cell runs its normal cell, every reduction cell
        its reduction cell); a standalone network runs its own genotype and takes none. A tensor
        ``genotype`` is the supernet's mixed weights ``[2, 14, len(candidates)]`` (module docstring)."""
        if isinstance(genotype, torch.Tensor):
            normal, reduce = self._mixed_terms(genotype)
        else:
            path = self._path(genotype)
            normal, reduce = _path_terms(path.normal), _path_terms(path.reduce)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(s1, 1), 1))

    def _path(self, genotype: Genotype | None) -> Genotype:
        """The genotype a single-path forward runs, checked against the network's ops."""
        if self.genotype is not None:
            if genotype is not None:
                raise HarnessError("a standalone DARTS network runs its own genotype; it takes no path")
            return self.genotype
        if genotype is None:
            raise HarnessError("a DARTS supernet forward needs the genotype to run (a path) or mixed weights")
        genotype = canonical(genotype)
        missing = {op for op, _ in genotype.normal + genotype.reduce} - set(self.candidates)
        if missing:
            raise HarnessError(f"this DARTS supernet holds the ops {self.candidates}, not {sorted(missing)}")
        return genotype

    def _mixed_terms(self, weights: torch.Tensor) -> tuple[list[list[Term]], list[list[Term]]]:
        """The normal and reduction cells' terms of the mixed forward: node m + 2 sums every op with
        a module of each of its edges, edges by input, ops in candidates order."""
        expected = (2, EDGES_PER_CELL, len(self.candidates))
        if self.genotype is not None:
            raise HarnessError("a mixed forward needs the DARTS supernet, not a standalone network")
        if tuple(weights.shape) != expected:
            raise HarnessError(f"mixed weights have shape [cell types, edges, ops {self.candidates}] = {list(expected)} "
                               f"here, got {list(weights.shape)}")
        normal, reduce = (
            [[(k, op, cell[k, i]) for k in range(EDGE_START[m], EDGE_START[m] + m + 2) for op, i in self._columns]
             for m in range(N_NODES)]
            for cell in weights
        )
        return normal, reduce


def materialise(supernet: DartsNetwork, genotype: Genotype) -> DartsNetwork:
    """``genotype``'s standalone network holding copies of exactly its supernet weights (and the
    stem BN's running statistics), on the supernet's device and dtype."""
    if supernet.genotype is not None:
        raise HarnessError("materialise takes a DARTS supernet, not a standalone network")
    reference = next(supernet.parameters())
    net = DartsNetwork(supernet.shape, genotype).to(device=reference.device, dtype=reference.dtype)
    source = supernet.state_dict()
    net.load_state_dict({name: source[name].detach().clone() for name in net.state_dict()}, strict=True)
    return net
