"""The one-shot model of NAS-Bench-1Shot1 (Zela, Siems & Hutter, ICLR 2020) as a weight-sharing supernet, and the
standalone network of one configuration.

What is followed, and where (GitHub ``automl/nasbench-1shot1`` at cb0f0ec, April 2020, the code of the paper):
``optimizers/darts/model_search.py`` (``Network``, ``Cell``, ``ChoiceBlock``, ``MixedOp``: the macro skeleton, the
cell, the input projections, the output node), ``optimizers/darts/operations.py`` (``ConvBnRelu``, the three NB101
ops, the BatchNorm settings), ``optimizers/darts/genotypes.py`` (the ops) and, for how a *discrete* configuration runs
on the one-shot model (random search with weight sharing) and the defaults, ``optimizers/random_search_with_weight_sharing/
darts_wrapper_discrete.py`` (``init_channels`` 16, ``layers`` 9, ``get_weights_from_arch``: 0/1 weights from the
configuration's adjacency matrix and ops). Those files follow NB101's ``nasbench/lib/model_builder.py`` and
``base_ops.py``, which they cite line by line. The thesis ran a copy of ``model_search.py`` (Mirofil/AutoDL-Projects,
``lib/models/cell_searchs/nb101/optimizers/darts/model_search.py``) whose mixed op and inputs skip what is weighted 0,
as this module does.

Macro skeleton (C = ``channels``, N = ``cells_per_stage``, k = the space's choice blocks: 4 in spaces 1 and 2, 5 in 3):

- stem: ``ConvBnRelu(3 -> C, 3x3)``;
- 3N cells, three stacks of N at widths C, 2C, 4C; before the first cell of stacks 2 and 3,
  ``MaxPool2d(2, stride=2, padding=1)`` (the official padding: 32 -> 17 -> 9 and 16 -> 9 -> 5, where NB101's
  TF 'same' pooling gives 32 -> 16 -> 8);
- head: ``ReLU -> Conv1x1(4C k -> 4C) -> BN`` (the official ``postprocess``), global average pooling, linear classifier.

``ConvBnRelu(a -> b, s x s)`` = ``Conv2d`` (no bias, 'same' padding) -> ``BatchNorm2d`` -> ``ReLU``.

A cell of width w with input x (``c_in`` channels: C for the network's first cell, else the previous cell's
``w_prev k``) has k+1 input projections, ``proj_i = ConvBnRelu(c_in -> w, 1x1)`` for block i and
``proj_out = ConvBnRelu(c_in -> w k, 1x1)`` for the input -> output edge, and computes

    n_0 = x,   h_i = op_i( sum_{p in parents(i)} (proj_i(x) if p == 0 else h_p) ),   i = 1..k
    out = concat(m_1 h_1, ..., m_k h_k) + m_0 proj_out(x)                       (w k channels)

with ``op_i`` one of conv3x3-bn-relu, conv1x1-bn-relu (``ConvBnRelu(w -> w)``) and maxpool3x3 (stride 1, padding 1),
and ``m_j`` = 1 when node j is a parent of the output, else 0. This is NB101's output node (the concatenation of the
blocks feeding it, plus the projected input when the input feeds it), except that the one-shot model's width is fixed:
a block that does not feed the output keeps its place in the concatenation, as zeros.

Single path. The official model runs a configuration by weighting every op of every choice block, every candidate
input and every block at the output by 0 or 1 (``discrete=True``). ``net(x, config)`` here runs only what those
weights keep: the op of each block that reaches the output (a loose end, a block NB101's pruning removes, is not run),
and the projections of the inputs that such blocks and the output take. Multiplying by 1, adding a zero and
concatenating zeros are exact, so the values are the official weighted forward's, and only the path's weights get
gradients (single path, as SPOS); the official forward gives the others an exact zero gradient, which
``supernet.update_unsampled`` reproduces (weight decay and momentum still move them). Every cell runs the same
configuration, as in the official one-shot model.

BatchNorm, as ``operations.py``: every ``ConvBnRelu`` (stem, projections, conv ops) has an affine BN (TF's scale) with
running statistics, eps 1e-5, and PyTorch momentum 0.997: NB101's TF decay 0.997 written as PyTorch's momentum, which
weights the *new* batch (running <- 0.003 running + 0.997 batch), so a running statistic is practically that of the
last training batch that ran its op. The official one-shot model computes this (so did the thesis's copy) and it is
kept. The head's BN is not affine and keeps running statistics at PyTorch's default momentum 0.1. Running statistics
move only for the BNs a forward pass runs (the official discrete forward runs every op, multiplying the unused by 0,
so there they move for all). The config's BN settings, named for NB201, act here as: ``bn_affine`` on the cells' BNs
(projections and conv ops; the head's BN is never affine), ``bn_track_running_stats`` on the cells' and the head's,
``outer_bn_running_stats`` on the stem's (always affine). The space's defaults are the official settings
(:attr:`harness.supernet.spaces.nb1shot1.NB1Shot1Space.config_defaults`).

Mixed forward (differentiable search, :mod:`harness.search.spaces`). ``net(x, path)`` with a :class:`MixedPath` runs the
official search forward (``Network.forward`` with ``discrete=False`` after its normalisation, ``Cell.forward``,
``ChoiceBlock.forward``, ``MixedOp.forward`` in ``model_search.py``) under normalised weights: the op weights
``a[i, o]`` of block i over its ops (the columns named by ``MixedPath.op_names``), the input weights ``b_i[p]`` of
block i over its candidate inputs p = 0..i-1 (None for a block with a single candidate input set, which the official
model leaves unweighted: block 1, and block 2 of space 1), and the output weights ``c[j]``, j = 0..k. Every cell runs
the same weights:

    h_i = sum_o a[i, o] op_o(s_i),   s_i = sum_{p=0}^{i-1} b_i[p] t_p  (or sum_p t_p without weights),
    t_0 = proj_i(x),  t_p = h_p (p >= 1),
    out = c[0] proj_out(x) + concat(c[1] h_1, ..., c[k] h_k)

with every sum taken in that order, from 0, as Python's ``sum`` does there. Under 0/1 weights that encode a
configuration (ops one-hot, ``b_i`` = 1 on block i's parents, ``c`` = 1 on the output's parents) this is the single
path's value exactly: every dropped term is ``0 * t`` = 0 with ``t`` finite (every projection and conv op ends in a
ReLU, and a max-pool of those is >= 0 too, so not even a -0 appears), and adding 0, multiplying by 1 or concatenating
zeros in place of the single path's ``zeros_like`` changes no bit; a block that does not reach the output enters only
through weights 0. Only the BN running statistics differ: the mixed forward runs every op, so it moves them for all
(the search's cells keep none by default, :mod:`harness.search.spaces`).

One class serves both roles: the supernet's cells hold every projection and all three ops in every block; the
standalone network of a configuration (:func:`materialise`) holds only those its path runs, under the same names, so
its weights are a slice of the supernet's state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import HarnessError
from harness.spaces.nb101 import CONV1X1, CONV3X3, MAXPOOL3X3, OPS
from harness.spaces.nb1shot1 import Config, search_space

BN_MOMENTUM = 0.997  # operations.py's BN_MOMENTUM, passed to PyTorch as is (module docstring)
BN_EPS = 1e-5
OUTPUT = "out"  # the key of the input -> output projection; block i's is str(i)


@dataclass(frozen=True)
class OneShotShape:
    """The macro-architecture: the space (1, 2, 3), channels C, cells per stack N, classes, BatchNorm options."""

    space: int
    channels: int = 16
    cells_per_stage: int = 3
    n_classes: int = 10
    bn_affine: bool = True  # the cells' BNs
    bn_track_running_stats: bool = True  # the cells' and the head's BNs
    stem_bn_running_stats: bool = True  # the stem's BN (always affine)

    @property
    def n_blocks(self) -> int:
        return search_space(self.space).n_blocks


@dataclass(frozen=True)
class MixedPath:
    """The normalised weights of a mixed forward (module docstring): ``ops`` ``[k, 3]`` over the ops ``op_names`` (the
    column order), ``output`` ``[k + 1]`` over the cell input and blocks 1..k, and per block 1..k its input weights over
    nodes 0..i-1, or None where the official model weighs no input."""

    op_names: tuple[str, ...]
    ops: torch.Tensor
    output: torch.Tensor
    inputs: tuple[torch.Tensor | None, ...]


@dataclass(frozen=True)
class CellPlan:
    """What a cell runs for one configuration: the parents of nodes 1..k+1, and per block its op, or None for a block
    that does not reach the output."""

    parents: tuple[tuple[int, ...], ...]
    ops: tuple[str | None, ...]

    @property
    def projections(self) -> tuple[str, ...]:
        """The input projections run: block i's when block i runs and takes the cell input, the output's when the
        output takes it."""
        blocks = [str(b) for b, op in enumerate(self.ops, start=1) if op is not None and 0 in self.parents[b - 1]]
        return (*blocks, OUTPUT) if 0 in self.parents[-1] else tuple(blocks)


def cell_plan(config: Config) -> CellPlan:
    """The plan of a validated configuration: block b runs when the output is reachable from it, i.e. it is a parent
    of the output or of a block that runs (blocks are visited from the last one back)."""
    k = len(config.ops)
    reaches = [False] * (k + 2)
    reaches[k + 1] = True
    for node in range(k, 0, -1):
        reaches[node] = any(reaches[child] and node in config.parents[child - 1] for child in range(node + 1, k + 2))
    return CellPlan(config.parents, tuple(op if reaches[b] else None for b, op in enumerate(config.ops, start=1)))


def conv_bn_relu(c_in: int, c_out: int, kernel: int, affine: bool, track_running_stats: bool) -> nn.Sequential:
    """``ConvBnRelu``: Conv (no bias, 'same' padding), BN (eps 1e-5, momentum 0.997), ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM, affine=affine, track_running_stats=track_running_stats),
        nn.ReLU(inplace=False),
    )


def make_op(op: str, width: int, shape: OneShotShape) -> nn.Module:
    """One of the three NB101 ops at ``width`` channels, stride 1."""
    if op == CONV3X3:
        return conv_bn_relu(width, width, 3, shape.bn_affine, shape.bn_track_running_stats)
    if op == CONV1X1:
        return conv_bn_relu(width, width, 1, shape.bn_affine, shape.bn_track_running_stats)
    if op == MAXPOOL3X3:
        return MaxPool3x3()
    raise ValueError(f"no module for op {op!r}")  # callers pass OPS only


class MaxPool3x3(nn.Module):
    """maxpool3x3: ``MaxPool2d(3, stride=1, padding=1)``. On the CPU a tensor in the default (NCHW) layout is pooled in
    channels-last layout and returned in its own: PyTorch's NCHW kernel for this window is about 5x slower on the small
    tensors of a CPU run, and both kernels give the same values and the same argmax, hence the same gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.is_contiguous(memory_format=torch.channels_last):
            return nn.functional.max_pool2d(x, 3, stride=1, padding=1)
        return nn.functional.max_pool2d(x.contiguous(memory_format=torch.channels_last), 3, stride=1, padding=1).contiguous()


class Cell(nn.Module):
    """One cell of width ``width`` holding the input projections ``projections`` (keys ``"1".."k"``, ``"out"``) and, in
    block i, the ops ``ops[i - 1]`` (module docstring)."""

    def __init__(self, c_in: int, width: int, shape: OneShotShape, projections: Sequence[str], ops: Sequence[Sequence[str]]):
        super().__init__()
        self.width = width
        k = len(ops)
        self.projections = nn.ModuleDict({
            key: conv_bn_relu(c_in, width * k if key == OUTPUT else width, 1, shape.bn_affine, shape.bn_track_running_stats)
            for key in projections
        })
        self.blocks = nn.ModuleList(nn.ModuleDict({op: make_op(op, width, shape) for op in block_ops}) for block_ops in ops)

    def forward(self, x: torch.Tensor, plan: CellPlan) -> torch.Tensor:
        states: list[torch.Tensor | None] = [None]  # node 0 enters each block through that block's projection
        for b, op in enumerate(plan.ops, start=1):
            if op is None:  # a loose end: nothing reads it
                states.append(None)
                continue
            total: torch.Tensor | None = None
            for parent in plan.parents[b - 1]:  # ascending, the input first: the official sum's order
                h = self.projections[str(b)](x) if parent == 0 else states[parent]
                assert h is not None, "a block that runs has parents that run"
                total = h if total is None else total + h
            states.append(self.blocks[b - 1][op](total))
        fed = plan.parents[-1]
        # every space's output has two or more parents, so at least one block feeds it
        shape_of = next(states[b] for b in fed if b > 0)
        out = torch.cat([states[b] if b in fed else torch.zeros_like(shape_of) for b in range(1, len(plan.ops) + 1)], dim=1)
        return self.projections[OUTPUT](x) + out if 0 in fed else out

    def mixed(self, x: torch.Tensor, path: MixedPath) -> torch.Tensor:
        """The official mixed cell under the weights ``path`` (module docstring): every op, input and block weighted."""
        states: list[torch.Tensor] = []
        for b, block in enumerate(self.blocks, start=1):
            inputs = [self.projections[str(b)](x), *states]
            weights = path.inputs[b - 1]
            if weights is not None:
                inputs = [w * t for w, t in zip(weights, inputs)]
            total = sum(inputs)
            states.append(sum(w * block[op](total) for w, op in zip(path.ops[b - 1], path.op_names)))
        out = torch.cat([w * h for w, h in zip(path.output[1:], states)], dim=1)
        return path.output[0] * self.projections[OUTPUT](x) + out


class OneShotNetwork(nn.Module):
    """The NAS-Bench-1Shot1 one-shot model of ``shape``: the supernet (``config`` None: every projection and op), or the
    standalone network of ``config`` (only what its path runs); module docstring."""

    def __init__(self, shape: OneShotShape, config: Config | None = None):
        super().__init__()
        self.shape = shape
        self.space = search_space(shape.space)
        self.config = None if config is None else self.space.validate(config)
        k = self.space.n_blocks
        if self.config is None:
            projections: Sequence[str] = [*(str(b) for b in range(1, k + 1)), OUTPUT]
            ops: list[tuple[str, ...]] = [OPS] * k
        else:
            plan = cell_plan(self.config)
            projections = plan.projections
            ops = [() if op is None else (op,) for op in plan.ops]
        c, n = shape.channels, shape.cells_per_stage
        self.stem = conv_bn_relu(3, c, 3, affine=True, track_running_stats=shape.stem_bn_running_stats)
        self.downsample_before = (n, 2 * n)  # cell indices a max-pool precedes
        cells, c_in = [], c
        for i in range(3 * n):
            width = c * 2 ** (i // n)
            cells.append(Cell(c_in, width, shape, projections, ops))
            c_in = width * k
        self.cells = nn.ModuleList(cells)
        last = 4 * c
        self.head = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(last * k, last, 1, bias=False),
            nn.BatchNorm2d(last, affine=False, track_running_stats=shape.bn_track_running_stats),
        )
        self.classifier = nn.Linear(last, shape.n_classes)

    def forward(self, x: torch.Tensor, path: Config | MixedPath | None = None) -> torch.Tensor:
        """Logits of the configuration ``path`` run by every cell (a standalone network runs its own: ``path`` None or
        equal to it), or of the supernet's mixed forward under the weights ``path`` (module docstring)."""
        if isinstance(path, MixedPath):
            if self.config is not None:
                raise HarnessError(f"this standalone network runs {self.config}; a mixed forward needs the supernet")
            return self._logits(x, lambda cell, h: cell.mixed(h, path))
        if self.config is not None and path is not None and path != self.config:
            raise HarnessError(f"this standalone network runs {self.config}, not {path}")
        config = self.config if path is None else self.space.validate(path)
        if config is None:
            raise HarnessError(f"a supernet forward needs a nb1shot1-{self.shape.space} configuration or a MixedPath")
        plan = cell_plan(config)
        return self._logits(x, lambda cell, h: cell(h, plan))

    def _logits(self, x: torch.Tensor, run: Callable[[Cell, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The stem, every cell as ``run`` runs it (after the max-pool before stacks 2 and 3), the head."""
        h = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in self.downsample_before:
                h = nn.functional.max_pool2d(h, kernel_size=2, stride=2, padding=1)
            h = run(cell, h)
        return self.classifier(self.head(h).mean(dim=(2, 3)))


def materialise(supernet: OneShotNetwork, config: Config) -> OneShotNetwork:
    """The standalone network of ``config`` holding copies of exactly the supernet tensors its path runs (parameters
    and BN buffers, a slice of the state dict; same device and dtype as the supernet)."""
    if supernet.config is not None:
        raise HarnessError("materialise takes the supernet, not a standalone network")
    reference = next(supernet.parameters())
    net = OneShotNetwork(supernet.shape, config).to(device=reference.device, dtype=reference.dtype)
    source = supernet.state_dict()
    net.load_state_dict({name: source[name].detach().clone() for name in net.state_dict()}, strict=True)
    return net
