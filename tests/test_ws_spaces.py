"""What every weight-sharing space promises the core, checked on each space alike (NB201, NAS-Bench-1Shot1 and
DARTS): a fixed-arch update (:meth:`Space.arch_path`, what ``benchmarks/supernet_speed.py`` times against a plain
loop) runs exactly the arch's materialised standalone network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.supernet.config import WSConfig, config_from_dict
from harness.supernet.spaces import get_space
from harness.supernet.train import make_optimizer, supernet_update

# space -> (network and image size small enough for float64 on a CPU, one arch in the space's text form)
SPACES = {
    "nb201": ({"channels": 4, "cells_per_stage": 1}, 8,
              "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"),
    "nb1shot1-2": ({"channels": 2, "cells_per_stage": 1}, 16, "3"),
    "darts": ({"channels": 2, "cells_per_stage": 1}, 8,
              "Genotype(normal=(('sep_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 0), ('dil_conv_3x3', 2), "
              "('sep_conv_5x5', 1), ('avg_pool_3x3', 3), ('dil_conv_5x5', 0), ('skip_connect', 4)), "
              "normal_concat=(2, 3, 4, 5), reduce=(('max_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
              "('dil_conv_5x5', 2), ('avg_pool_3x3', 1), ('sep_conv_5x5', 3), ('dil_conv_3x3', 2), "
              "('sep_conv_3x3', 4)), reduce_concat=(2, 3, 4, 5))"),
}


def _config(space: str) -> WSConfig:
    network, side, _ = SPACES[space]
    return config_from_dict({"space": space}).with_overrides(
        data={"image_size": side, "dataset": "cifar10-valid"}, network=network, device={"device": "cpu"})


def _supernet(cfg: WSConfig) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return get_space(cfg.space).build_supernet(cfg).double()


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_a_fixed_arch_update_trains_exactly_the_materialised_network(space_name: str) -> None:
    """One SGD update of the supernet on ``arch_path(arch)`` against one update of the arch's standalone network
    (float64): the same loss, and the arch's weights move to the same values."""
    cfg = _config(space_name)
    space = get_space(space_name)
    arch = space.decode(SPACES[space_name][2])
    side = SPACES[space_name][1]
    x = torch.randn(16, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.from_numpy(np.random.default_rng(2).integers(0, 10, 16))
    supernet = _supernet(cfg)
    standalone = space.materialise_group(supernet, [arch])
    with torch.no_grad():
        assert torch.equal(supernet(x, space.arch_path(arch, cfg.n_cells)), standalone(x)[:, 0])

    loss, _ = supernet_update(supernet, x, y, [[space.arch_path(arch, cfg.n_cells)]], cfg, make_optimizer(supernet, cfg))
    optimizer = make_optimizer(standalone, cfg)
    optimizer.zero_grad()
    standalone_loss = torch.nn.functional.cross_entropy(standalone(x)[:, 0], y)
    standalone_loss.backward()
    optimizer.step()
    torch.testing.assert_close(loss, standalone_loss.detach(), rtol=1e-12, atol=1e-12)
    after = space.materialise_group(supernet, [arch]).state_dict()
    for name, tensor in standalone.state_dict().items():
        torch.testing.assert_close(after[name], tensor, rtol=1e-12, atol=1e-12, msg=name)
