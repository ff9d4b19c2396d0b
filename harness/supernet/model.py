"""The NAS-Bench-201 network, as a weight-sharing supernet and as one standalone architecture.

Macro skeleton (Dong & Yang 2020, Fig. 1): stem ``Conv3x3(3->C) + BN``; three stages of ``N`` cells
at C, 2C and 4C channels, separated by two residual reduction blocks (``ReLU-Conv3x3/2-BN``,
``ReLU-Conv3x3-BN``, shortcut ``AvgPool2x2 + Conv1x1``); then ``BN + ReLU``, global average
pooling and a linear classifier. Defaults N=5, C=16 as in NB201.

Cell: nodes 0..3, node 0 the cell input, node i the sum over edges j->i (j < i) of ``op(node j)``,
node 3 the output. Ops: ``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` and
``nor_conv_3x3`` (ReLU-Conv-BN, stride 1, same padding), ``avg_pool_3x3`` (stride 1, padding 1,
padding excluded from the average).

One class serves both roles: each edge holds a ``ModuleDict`` of its candidate ops. The supernet has
all five candidates on every edge; :func:`materialise` builds a network whose edges hold only the
arch's op and copies exactly those tensors from the supernet's state dict (the parameter names are
the same, so the copy is a slice of the state dict). A forward pass runs only the ops of the given
arch, and only those that can reach the cell output, so only they receive gradients (single-path,
as in SPOS, Guo et al. 2020). The supernet's forward takes one arch for every cell, or one cell
draw per cell (a *path*, :mod:`harness.supernet.sampling`), so each cell can run its own ops; or a
*dense* path, a tensor of 0/1 weights per (cell, edge, op) with which every op runs and is summed
(:mod:`harness.supernet.dense`: the same values, and kernels that do not depend on the path).

An *arch group* (:func:`materialise_group`) is K archs in one network, side by side along the
channel axis: arch a owns channels ``a*w .. (a+1)*w - 1`` of every width-w tensor, every convolution
is grouped (``groups`` = the archs it serves, so no arch sees another's channels), every BatchNorm
normalises each channel on its own, and the classifier is one linear map per arch. An edge holds one
module per op that some arch of the group runs there, with a block of weights per such arch; the
other archs' channels skip it. Its forward takes ``[B, 3K, H, W]`` (arch a's own images in channels
3a..3a+2) and returns logits ``[B, K, classes]``, arch a's equal to its standalone network's on its
images. K small archs then cost one launch per layer instead of K, which is what bounds a network
this small on a GPU.

BatchNorm, as the thesis's code builds its NB201 supernet (``GenericNAS201Model`` with its CLI
defaults ``--affine 0 --track_running_stats 0``; Mirofil/AutoDL-Projects ``generic_model.py``
l.369-389 at 77776cb): the cells' ReLU-Conv-BN ops and the head's BN have ``affine=False`` and no
running statistics (``bn_affine``, ``bn_track_running_stats``), so they normalise with the statistics of
the current batch in training and evaluation alike and weights inherited by different archs never
meet statistics gathered under other archs. The stem's BN and the reduction blocks' BNs keep
PyTorch's defaults, affine with running statistics (``outer_bn_running_stats``): training updates
them, evaluation (``net.eval()``, the thesis's ValAcc and ValAccMini) uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from harness.spaces.nb201 import EDGES, N_NODES, OPS, check_ops


@dataclass(frozen=True)
class NetworkShape:
    """The macro-architecture: channels C, cells per stage N, classes, and BatchNorm options."""

    channels: int = 16
    cells_per_stage: int = 5
    n_classes: int = 10
    bn_affine: bool = False  # cells and head
    bn_track_running_stats: bool = False  # cells and head
    outer_bn_running_stats: bool = True  # stem and reduction blocks (always affine)

    @property
    def n_cells(self) -> int:
        return 3 * self.cells_per_stage


def _bn(channels: int, shape: NetworkShape, outer: bool = False) -> nn.BatchNorm2d:
    """A cell's or the head's BN (``outer=False``), or the stem's or a reduction block's."""
    if outer:
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=shape.outer_bn_running_stats)
    return nn.BatchNorm2d(channels, affine=shape.bn_affine, track_running_stats=shape.bn_track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU, Conv, BN; with ``groups`` = g, g independent copies side by side (channels c*g)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, shape: NetworkShape, outer: bool = False,
                 groups: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in * groups, c_out * groups, kernel, stride=stride, padding=kernel // 2, bias=False, groups=groups),
            _bn(c_out * groups, shape, outer),
        )


def make_op(op: str, channels: int, shape: NetworkShape, groups: int = 1) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, shape, groups=groups)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, shape, groups=groups)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"no module for op {op!r}")  # 'none' has no module; callers never ask


def live_edges(ops: Sequence[str], zeros_stay_zero: bool = True) -> tuple[bool, ...]:
    """For each edge: does its op run in a forward pass?

    An op runs when it is not ``none`` and its target node feeds the cell output (anything else is
    unused). With ``zeros_stay_zero`` it must also have a signal at its source node (a node reachable
    from the cell input through non-``none`` edges): a node with no signal is all zeros, and every
    op maps zeros to zeros when BatchNorm has neither affine parameters nor running statistics (the
    default; NB201's own isomorphism rule assumes it), so skipping those ops is exact and saves time.
    With BN affine parameters or running statistics an op maps zeros to BN's shift instead, so the
    caller passes ``zeros_stay_zero=False`` and those ops run on zeros, as in NB201's cell. Ops whose
    target feeds nothing are skipped in every setting: their output is unused (with BN running
    statistics NB201 would still update their statistics in training; here they keep their values).
    """
    return _live_edges(tuple(ops), zeros_stay_zero)


@lru_cache(maxsize=None)  # at most 2 x 15,625 entries; a per-cell path asks once per cell and step
def _live_edges(ops: tuple[str, ...], zeros_stay_zero: bool) -> tuple[bool, ...]:
    reached = {0}
    for node in range(1, N_NODES):
        if not zeros_stay_zero or any(ops[k] != "none" and dst == node and src in reached for k, (src, dst) in enumerate(EDGES)):
            reached.add(node)
    needed = {N_NODES - 1}
    for node in range(N_NODES - 2, -1, -1):
        if any(ops[k] != "none" and src == node and dst in needed for k, (src, dst) in enumerate(EDGES)):
            needed.add(node)
    return tuple(
        ops[k] != "none" and src in reached and dst in needed for k, (src, dst) in enumerate(EDGES)
    )


Members = Sequence[Mapping[str, Sequence[int]]]  # per edge: op -> the archs of a group that run it


class Cell(nn.Module):
    """One cell; in an arch group (``members`` given) edge k's op serves the archs ``members[k][op]``."""

    def __init__(self, channels: int, candidates: Sequence[Sequence[str]], shape: NetworkShape,
                 members: Members | None = None, n_archs: int = 1):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels, shape, len(members[k][op]) if members else 1) for op in edge_ops if op != "none"})
            for k, edge_ops in enumerate(candidates)
        )
        self.channel_index: dict[tuple[int, str], str] = {}  # (edge, op) -> buffer of its archs' channels
        for k, by_op in enumerate(members or []):
            for op, archs in by_op.items():
                if len(archs) < n_archs:
                    name = f"channels_{k}_{op}"
                    index = torch.cat([torch.arange(a * channels, (a + 1) * channels) for a in archs])
                    self.register_buffer(name, index, persistent=False)
                    self.channel_index[(k, op)] = name

    def forward(self, x: torch.Tensor, runs: Sequence[Sequence[str]]) -> torch.Tensor:
        """The cell output, running the ops ``runs[k]`` on edge k (each on its archs' channels)."""
        nodes: list[torch.Tensor | None] = [x]
        for node in range(1, N_NODES):
            total: torch.Tensor | None = None
            for k, (src, dst) in enumerate(EDGES):
                if dst != node:
                    continue
                for op in runs[k]:
                    source = nodes[src]  # None: a node that no op feeds, i.e. zeros
                    source = torch.zeros_like(x) if source is None else source
                    name = self.channel_index.get((k, op))
                    if name is None:
                        y = self.edges[k][op](source)
                        total = y if total is None else total + y
                    else:  # only some archs of the group run this op: their channels in, their channels out
                        index = getattr(self, name)
                        y = self.edges[k][op](source.index_select(1, index))
                        total = (torch.zeros_like(x) if total is None else total).index_add(1, index, y)
            nodes.append(total)
        out = nodes[-1]
        return torch.zeros_like(x) if out is None else out


class ResidualReduction(nn.Module):
    """NB201's reduction block: two ReLU-Conv-BN (the first with stride 2) plus a pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, shape: NetworkShape, groups: int = 1):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, shape, outer=True, groups=groups)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, shape, outer=True, groups=groups)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in * groups, c_out * groups, 1, bias=False, groups=groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NB201 network whose cell edges hold ``candidates[k]`` (all of OPS: the supernet), or, with
    ``group``, the arch group of those archs (module docstring)."""

    def __init__(self, shape: NetworkShape, candidates: Sequence[Sequence[str]] | None = None,
                 group: Sequence[Sequence[str]] | None = None):
        super().__init__()
        self.shape = shape
        self.group = None if group is None else tuple(check_ops(ops) for ops in group)
        n = 1 if self.group is None else len(self.group)
        members: list[dict[str, tuple[int, ...]]] | None = None
        if self.group is not None:
            if candidates is not None or not self.group:
                raise ValueError("an arch group takes one or more archs and no candidates")
            live = [live_edges(ops, zeros_stay_zero=self.zeros_stay_zero) for ops in self.group]
            members = [
                {op: archs for op in OPS if (archs := tuple(a for a, ops in enumerate(self.group) if ops[k] == op and live[a][k]))}
                for k in range(len(EDGES))
            ]
            candidates = [tuple(by_op) for by_op in members]
        self.members = members
        self.candidates = tuple(tuple(c) for c in (candidates or [OPS] * len(EDGES)))
        c = shape.channels
        self.stem = nn.Sequential(nn.Conv2d(3 * n, c * n, 3, padding=1, bias=False, groups=n), _bn(c * n, shape, outer=True))
        layers: list[nn.Module] = []
        widths = [c, 2 * c, 4 * c]
        for stage, width in enumerate(widths):
            if stage > 0:
                layers.append(ResidualReduction(widths[stage - 1], width, shape, groups=n))
            layers.extend(Cell(width, self.candidates, shape, members, n) for _ in range(shape.cells_per_stage))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(_bn(4 * c * n, shape), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * c, shape.n_classes * n)  # group: arch a's map is rows a*classes ..
        fixed = all(len(cands) == 1 for cands in self.candidates) and self.group is None
        self.fixed_ops: tuple[str, ...] | None = tuple(cands[0] for cands in self.candidates) if fixed else None

    @property
    def zeros_stay_zero(self) -> bool:
        return not (self.shape.bn_affine or self.shape.bn_track_running_stats)

    def forward(self, x: torch.Tensor, ops: Sequence[str] | Sequence[Sequence[str]] | torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the arch ``ops``: a 6-op tuple run by every cell, or a path of one 6-op tuple per
        cell (``shape.n_cells`` of them, in network order); a standalone network uses its own arch; an
        arch group maps ``[B, 3K, H, W]`` to ``[B, K, classes]``. A tensor ``ops`` is a dense path
        ``[n_cells, 6, 5]`` of 0/1 op weights, run by :func:`harness.supernet.dense.mixed_cell`."""
        dense = isinstance(ops, torch.Tensor)
        if dense:
            from harness.supernet.dense import check_dense, mixed_cell  # dense builds on this module

            check_dense(self, ops)
        elif self.group is not None:
            if ops is not None:
                raise ValueError("an arch group runs its own archs; it takes no ops")
            runs_of = [[tuple(edge) for edge in self.candidates]] * self.shape.n_cells
        else:
            if ops is None:
                if self.fixed_ops is None:
                    raise ValueError("a supernet forward needs the arch's ops")
                ops = self.fixed_ops
            runs_of = [self._runs(cell_ops) for cell_ops in self._per_cell(ops)]
        h = self.stem(x)
        cells = iter(ops.to(h.dtype)) if dense else iter(runs_of)  # bf16 activations under autocast: bf16 0s and 1s
        for layer in self.layers:
            if isinstance(layer, Cell):
                h = mixed_cell(layer, h, next(cells)) if dense else layer(h, next(cells))
            else:
                h = layer(h)
        h = torch.flatten(nn.functional.adaptive_avg_pool2d(self.head(h), 1), 1)
        if self.group is None:
            return self.classifier(h)
        n, classes = len(self.group), self.shape.n_classes
        weight = self.classifier.weight.view(n, classes, -1)
        return torch.einsum("bnc,nkc->bnk", h.view(h.shape[0], n, -1), weight) + self.classifier.bias.view(n, classes)

    def _per_cell(self, ops: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
        """One checked 6-op tuple per cell: ``ops`` repeated when it is one arch, else ``ops`` itself."""
        if len(ops) and isinstance(ops[0], str):
            return [check_ops(ops)] * self.shape.n_cells
        if len(ops) != self.shape.n_cells:
            raise ValueError(f"a path has one 6-op tuple per cell: {self.shape.n_cells} here, got {len(ops)}")
        return [check_ops(cell_ops) for cell_ops in ops]

    def _runs(self, ops: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Per edge, the ops a cell runs for ``ops``: the op when its edge is live, else nothing."""
        live = live_edges(ops, zeros_stay_zero=self.zeros_stay_zero)
        return [(op,) if on else () for op, on in zip(ops, live)]

    def parameter_archs(self) -> list[tuple[nn.Parameter, tuple[int, ...]]]:
        """Every parameter with the archs its blocks of rows (dim 0) belong to, in order: in an arch
        group, an edge op's parameters hold a block per arch that runs it, the rest one per arch."""
        every = tuple(range(1 if self.group is None else len(self.group)))
        owners = {id(p): every for p in self.parameters()}
        if self.group is not None:
            for layer in self.layers:
                if isinstance(layer, Cell):
                    for k, edge in enumerate(layer.edges):
                        for op, module in edge.items():
                            for p in module.parameters():
                                owners[id(p)] = self.members[k][op]
        return [(p, owners[id(p)]) for p in self.parameters()]


def materialise_group(supernet: NB201Network, group: Sequence[Sequence[str]]) -> NB201Network:
    """An arch group of ``group`` (module docstring), every arch holding copies of exactly its
    supernet weights: each tensor is the supernet's, repeated once per arch it serves (same device
    and dtype as the supernet)."""
    reference = next(supernet.parameters())
    net = NB201Network(supernet.shape, group=group).to(device=reference.device, dtype=reference.dtype)
    source = supernet.state_dict()
    state = {}
    for name, target in net.state_dict().items():
        tensor = source[name].detach()
        state[name] = tensor.clone() if tensor.dim() == 0 else tensor.repeat(target.shape[0] // tensor.shape[0], *[1] * (tensor.dim() - 1))
    net.load_state_dict(state, strict=True)
    return net


def materialise(supernet: NB201Network, ops: Sequence[str]) -> NB201Network:
    """A standalone network of arch ``ops`` holding copies of exactly its supernet weights (same
    device and dtype as the supernet)."""
    ops = check_ops(ops)
    reference = next(supernet.parameters())
    net = NB201Network(supernet.shape, candidates=[(op,) for op in ops]).to(device=reference.device, dtype=reference.dtype)
    source = supernet.state_dict()
    net.load_state_dict({name: source[name].detach().clone() for name in net.state_dict()}, strict=True)
    return net
