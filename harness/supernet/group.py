"""An arch group of one: a standalone network in the form the finetuner takes (:mod:`harness.supernet.finetune`).

NB201 finetunes several archs side by side in one network (``device.archs_per_group``); the other
spaces finetune one arch at a time, and this wrapper gives their standalone network the same
interface: ``forward`` maps ``[B, 3, H, W]`` to logits ``[B, 1, classes]``, ``group`` lists the one
arch, and ``parameter_archs`` gives every parameter to arch 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SingleArchGroup(nn.Module):
    """``net`` (a standalone network of ``arch``) seen as an arch group of one."""

    def __init__(self, net: nn.Module, arch: Any):
        super().__init__()
        self.net = net
        self.group = (arch,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, None, :]

    def parameter_archs(self) -> list[tuple[nn.Parameter, tuple[int, ...]]]:
        return [(p, (0,)) for p in self.parameters()]
