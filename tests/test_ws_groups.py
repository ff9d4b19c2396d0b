"""Finetuning archs in groups (side by side in one network) gives each arch what finetuning it
alone gives: the same update, gradient statistics and logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.supernet.finetune import FlatSGD, arch_losses
from harness.supernet.model import NB201Network, NetworkShape, materialise, materialise_group


def group_images(x: torch.Tensor, n_archs: int) -> torch.Tensor:
    """``[K*B, 3, H, W]`` (arch a's B images at rows a*B..) as an arch group's input ``[B, 3K, H, W]``,
    so that each arch of a test group sees images of its own."""
    rows, channels, height, width = x.shape
    return x.view(n_archs, rows // n_archs, channels, height, width).transpose(0, 1).reshape(rows // n_archs, n_archs * channels, height, width)

ARCHS = [
    ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"),
    ("none",) * 6,
    ("nor_conv_1x1", "none", "none", "none", "none", "nor_conv_3x3"),
    ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "nor_conv_1x1"),
]


@pytest.mark.parametrize("nesterov", [True, False], ids=["nesterov", "heavy-ball"])
@pytest.mark.parametrize("max_norm", [0.05, None], ids=["clipped", "not-clipped"])
def test_flat_sgd_equals_torch_sgd_after_clipping_each_archs_own_gradient(max_norm: float | None, nesterov: bool) -> None:
    """Pitfalls pinned: one clipping norm for the whole group (an arch with a large gradient would
    shrink the others' updates), weight decay counted in the gradient statistics, momentum started
    from a zero step, Nesterov's look-ahead. Oracle: torch.optim.SGD and clip_grad_norm_ on each
    standalone arch, float64."""
    lr, momentum, wd = 0.05, 0.9, 5e-3
    with torch.random.fork_rng():
        torch.manual_seed(0)
        supernet = NB201Network(NetworkShape(channels=3, cells_per_stage=1)).double()
    group = materialise_group(supernet, ARCHS).double()
    flat = FlatSGD(group, lr, momentum, wd, max_norm, nesterov)
    alone = [materialise(supernet, ops).double() for ops in ARCHS]
    optimizers = [torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov) for net in alone]
    gen = torch.Generator().manual_seed(1)
    running = [dict() for _ in ARCHS]
    for step in range(4):
        images = torch.randn(len(ARCHS) * 8, 3, 32, 32, dtype=torch.float64, generator=gen)
        labels = torch.randint(0, 10, (len(ARCHS), 8), generator=gen)
        flat.grads.zero_()
        losses = arch_losses(group(group_images(images, len(ARCHS))), labels.T)
        losses.sum().backward()
        if step == 0:
            flat.check_gradients_in_place()
        grad_l1, grad_l2, grad_sum_l1 = flat.step()
        for a, (net, optimizer) in enumerate(zip(alone, optimizers)):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(images[a * 8 : (a + 1) * 8]), labels[a])
            loss.backward()
            torch.testing.assert_close(losses[a], loss.detach(), rtol=0, atol=1e-12)
            grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
            running[a] = {n: running[a].get(n, 0) + g for n, g in grads.items()}
            assert grad_l1[a].item() == pytest.approx(float(sum(g.abs().sum() for g in grads.values())), rel=1e-12)
            assert grad_l2[a].item() == pytest.approx(float(torch.cat([g.flatten() for g in grads.values()]).norm()), rel=1e-12)
            assert grad_sum_l1[a].item() == pytest.approx(float(sum(g.abs().sum() for g in running[a].values())), rel=1e-12)
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
            optimizer.step()
    named = dict(group.named_parameters())
    owners = {id(p): archs for p, archs in group.parameter_archs()}
    for a, net in enumerate(alone):
        for name, p in net.named_parameters():
            # A parameter outside the arch's graph (the stem of the all-none arch, whose cells output
            # constant zeros) never gets a gradient alone, so torch's SGD skips its weight decay; in
            # the group it decays, unobservably: it reaches no output of that arch.
            if p.grad is not None and a in owners[id(named[name])]:
                j, rows = owners[id(named[name])].index(a), p.shape[0]
                torch.testing.assert_close(named[name].detach()[j * rows : (j + 1) * rows], p.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("device", [{"archs_per_group": 0}, {"archs_in_flight": 0}, {"archs_per_group": True}])
def test_group_and_in_flight_sizes_must_be_positive_integers(device: dict[str, object]) -> None:
    from harness.errors import HarnessError
    from harness.supernet.config import WSConfig

    with pytest.raises(HarnessError, match="archs_"):
        WSConfig().with_overrides(device=device)


def test_a_run_folder_accepts_a_new_group_size(tmp_path: Path) -> None:
    """The group size changes only rounding, so resuming a run with another one is allowed."""
    from harness.supernet.config import WSConfig, changed_settings

    saved = WSConfig().to_dict()
    assert changed_settings(saved, WSConfig().with_overrides(device={"archs_per_group": 8}), ("device",)) == []
    assert changed_settings(saved, WSConfig().with_overrides(finetune={"lr": 0.001}), ("finetune",)) == ["finetune.lr: None -> 0.001"]


def test_one_archs_huge_or_non_finite_gradient_reaches_no_other_arch() -> None:
    """Pitfall pinned (review): per-arch sums taken as differences of one running sum over the whole
    flat buffer let an inf in one arch's gradient turn every later arch's norm, clipping and weights
    into NaN, and a large one swamp their precision. Arch 0's gradient is scaled by 1e6 and given an
    inf; archs 1 and 2 must step exactly as they do without that."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        supernet = NB201Network(NetworkShape(channels=3, cells_per_stage=1))
    images = torch.randn(3 * 8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 10, (3, 8), generator=torch.Generator().manual_seed(2))
    results = []
    for poison in (False, True):
        group = materialise_group(supernet, [ARCHS[0], ARCHS[3], ARCHS[0]])
        flat = FlatSGD(group, 0.05, 0.9, 5e-4, 5.0, nesterov=True)
        flat.grads.zero_()
        arch_losses(group(group_images(images, 3)), labels.T).sum().backward()
        if poison:
            for block, arch in zip(flat.grad_blocks, flat.block_archs.tolist()):
                if arch == 0:
                    block.mul_(1e6)
            flat.grad_blocks[int(flat.block_archs.tolist().index(0))][0] = float("inf")
        stats = flat.step()
        others = torch.cat([b for b, a in zip(flat.grad_blocks, flat.block_archs.tolist()) if a != 0])
        values = torch.cat([flat.values[b.storage_offset() : b.storage_offset() + b.numel()]
                            for b, a in zip(flat.grad_blocks, flat.block_archs.tolist()) if a != 0])
        results.append((stats, others, values))
    (clean_stats, clean_grads, clean_values), (stats, grads, values) = results
    assert not torch.isfinite(stats[0][0]) and torch.isfinite(stats[0][1:]).all()
    for ours, clean in zip(stats, clean_stats):
        assert torch.equal(ours[1:], clean[1:])
    assert torch.equal(grads, clean_grads) and torch.equal(values, clean_values)


def test_flat_sgd_and_evaluate_refuse_a_network_that_is_not_an_arch_group() -> None:
    from harness.errors import HarnessError
    from harness.supernet.finetune import evaluate

    net = materialise(NB201Network(NetworkShape(channels=3, cells_per_stage=1)), ARCHS[0])
    with pytest.raises(HarnessError, match="arch group"):
        FlatSGD(net, 0.1, 0.9, 0.0, 5.0)
    with pytest.raises(HarnessError, match="arch group"):
        evaluate(net, None, None)  # type: ignore[arg-type]
