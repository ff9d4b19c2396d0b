"""Weight sharing on the DARTS space (NB301 truth, Table 4.2): genotypes as archs and paths, the
uniform and FairNAS samplers, the DARTS search network as supernet and standalone network, every
algorithm's update, resume, and the toy pipeline end to end with the thesis's DARTS numbers beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness import thesis
from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.registry import load_benchmark
from harness.spaces.darts import INPUT_PAIRS, OPS, Genotype, encoding_to_genotype, genotype_to_encoding, sample_encodings
from harness.supernet.config import WSConfig, config_from_dict, load_config
from harness.supernet.darts_model import DartsNetwork, FactorizedReduce, materialise
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces import get_space
from harness.supernet.spaces.darts import DartsShape, DartsSpace, fair_genotypes, parameter_count, uniform_genotype
from harness.supernet.train import checkpoint_path, load_checkpoint, load_images, make_optimizer, supernet_update, train_supernet
from image_fixtures import write_cifar10

SPACE = DartsSpace()
CONCAT = (2, 3, 4, 5)
# DARTS's published second-order cell (quark0/darts cnn/genotypes.py, DARTS_V2): separable convs, skips and pools
DARTS_V2 = Genotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=CONCAT,
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=CONCAT,
)
# every op once on a reduction cell's stride-2 edges (skip there is a FactorizedReduce), every node read
ALL_OPS = Genotype(
    normal=(("avg_pool_3x3", 0), ("dil_conv_5x5", 1), ("sep_conv_5x5", 1), ("max_pool_3x3", 2),
            ("skip_connect", 2), ("dil_conv_3x3", 3), ("sep_conv_3x3", 0), ("avg_pool_3x3", 4)),
    normal_concat=CONCAT,
    reduce=(("skip_connect", 0), ("sep_conv_5x5", 1), ("dil_conv_5x5", 0), ("avg_pool_3x3", 1),
            ("dil_conv_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 4)),
    reduce_concat=CONCAT,
)
GENOTYPES = [DARTS_V2, ALL_OPS, *(uniform_genotype(np.random.default_rng(seed)) for seed in range(3))]

TOY = """
name = "toy-darts"
space = "darts"
[data]
dataset = "cifar10-valid"
root = "{root}"
image_size = 8
[network]
channels = 2
cells_per_stage = 1
[supernet]
seeds = [0]
epochs = 1
batch_size = 16
[finetune]
n_archs = 6
steps = 4
batch_size = 16
eval_every = 2
eval_batch_size = 64
val_mini_batch_size = 16
[device]
device = "cpu"
[report]
sum_step = 2
top_k = 2
bootstrap = 20
"""


def _tiny(root: Path | str = "data", **sections: dict[str, object]) -> WSConfig:
    base = {"space": "darts", "data": {"root": str(root), "image_size": 8}, "network": {"channels": 2, "cells_per_stage": 1},
            "supernet": {"epochs": 2, "batch_size": 16}, "finetune": {"steps": 2, "eval_every": 1},
            "device": {"device": "cpu"}, "report": {"sum_step": 1, "top_k": 3}}
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return config_from_dict(base)


def _supernet(shape: DartsShape, seed: int = 0) -> DartsNetwork:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DartsNetwork(shape).double()


def _images(n: int = 6, side: int = 16) -> torch.Tensor:
    return torch.randn(n, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- archs and their text


def test_an_archs_text_is_its_printed_genotype_and_reads_back_canonical() -> None:
    for genotype in GENOTYPES:
        text = SPACE.encode(genotype)
        assert text.startswith("Genotype(normal=((")
        assert SPACE.decode(text) == encoding_to_genotype(genotype_to_encoding(genotype))
        assert text == load_benchmark("nb301").arch_label(genotype_to_encoding(genotype))  # the adapter's label
    # DARTS prints lists and range(2, 6), and may list a node's inputs in either order
    printed = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
               "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
               "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
               "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))")
    assert SPACE.decode(printed) == SPACE.decode(SPACE.encode(DARTS_V2)) != DARTS_V2  # node 4's pairs sorted by input
    assert SPACE.decode(printed).normal[4:6] == (("skip_connect", 0), ("sep_conv_3x3", 1))
    with pytest.raises(HarnessError, match="both edges read node 0"):
        SPACE.decode(printed.replace("('sep_conv_3x3', 1), ('sep_conv_3x3', 0)", "('sep_conv_3x3', 0), ('sep_conv_3x3', 0)", 1))
    with pytest.raises(HarnessError, match="unknown op 'none'"):
        SPACE.decode(printed.replace("'dil_conv_3x3'", "'none'"))
    with pytest.raises(HarnessError, match="not a DARTS genotype string"):
        SPACE.decode("|nor_conv_3x3~0|")
    with pytest.raises(HarnessError, match="harness.spaces.darts.Genotype"):
        SPACE.encode((("sep_conv_3x3", 0),) * 8)


# --------------------------------------------------------------------------- samplers


def test_uniform_paths_are_seeded_genotypes_drawn_as_nb301_samples_its_space() -> None:
    draw = [SPACE.uniform_path(np.random.default_rng(5), 8) for _ in range(2)]
    assert draw[0] == draw[1] and draw[0] != SPACE.uniform_path(np.random.default_rng(6), 8)
    assert SPACE.spos_path(np.random.default_rng(5), 8) == draw[0]  # SPOS draws whole genotypes too
    ours, nb301 = np.random.default_rng(11), np.random.default_rng(11)  # NB301's sampler, one genotype at a time
    assert [SPACE.uniform_path(ours, 8) for _ in range(5)] == [encoding_to_genotype(sample_encodings(1, nb301)[0]) for _ in range(5)]
    # law: per cell and node, the input pair uniform over the node's pairs, each edge's op uniform over 7
    rng = np.random.default_rng(0)
    n = 4000
    enc = np.stack([genotype_to_encoding(SPACE.uniform_path(rng, 8)) for _ in range(n)]).astype(np.int64)
    view = enc.reshape(n, 2, 4, 2, 2)  # [draw, cell, node, edge, (input, op)]
    for cell in range(2):
        ops = np.bincount(view[:, cell, :, :, 1].ravel(), minlength=len(OPS)) / (8 * n)
        np.testing.assert_allclose(ops, 1 / len(OPS), atol=0.01)
        pairs = INPUT_PAIRS[3]  # node 5: C(5, 2) = 10 pairs
        seen = [tuple(row) for row in view[:, cell, 3, :, 0]]
        counts = np.array([seen.count(pair) for pair in pairs]) / n
        np.testing.assert_allclose(counts, 1 / len(pairs), atol=0.025)
        assert {tuple(row) for row in view[:, cell, 0, :, 0]} == {(0, 1)}


def test_fairnas_paths_run_every_op_once_on_every_edge_of_one_sampled_topology() -> None:
    topologies, first_paths = set(), set()
    for seed in range(30):
        paths = SPACE.fair_paths(np.random.default_rng(seed), 8)
        assert paths == fair_genotypes(np.random.default_rng(seed))  # deterministic
        assert len(paths) == len(OPS) == 7
        for cell in ("normal", "reduce"):
            inputs = {tuple(src for _, src in getattr(path, cell)) for path in paths}
            assert len(inputs) == 1  # one topology for every path of the update
            for edge in range(8):
                assert sorted(getattr(path, cell)[edge][0] for path in paths) == sorted(OPS), (seed, cell, edge)
            topologies.add((cell, inputs.pop()))
        assert all(SPACE.decode(SPACE.encode(path)) == path for path in paths)  # canonical, valid genotypes
        first_paths.add(paths[0])
    assert len(topologies) > 40 and len(first_paths) == 30  # topologies and permutations vary between updates
    # node 5 reads every input: its pair (a < b) is drawn over all 10 pairs
    seen = {(cell, inputs[6:]) for cell, inputs in topologies}
    assert {pair for _, pair in seen} == set(INPUT_PAIRS[3])


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("genotype", GENOTYPES, ids=["darts_v2", "all_ops", "uniform0", "uniform1", "uniform2"])
def test_single_path_forward_equals_the_materialised_network_in_float64(genotype: Genotype) -> None:
    shape = DartsShape(channels=4, cells_per_stage=1)
    supernet = _supernet(shape)
    group = SPACE.materialise_group(supernet, [genotype])
    standalone = group.net
    assert group.group == (genotype,) and all(archs == (0,) for _, archs in group.parameter_archs())
    names = dict(standalone.named_parameters())
    assert set(names) < set(dict(supernet.named_parameters()))
    assert sum(p.numel() for p in names.values()) == parameter_count(genotype, shape)
    x = _images()
    for mode in ("eval", "train"):  # eval: the stem BN's running statistics; train: batch statistics
        supernet.train(mode == "train")
        group.train(mode == "train")
        expected = supernet(x, genotype)
        assert expected.dtype == torch.float64
        assert torch.equal(standalone(x), expected), mode
        assert torch.equal(group(x)[:, 0], expected), mode
    with torch.no_grad():  # copies, not views of the supernet's tensors
        names["stem.0.weight"].add_(1.0)
    assert not torch.equal(names["stem.0.weight"], dict(supernet.named_parameters())["stem.0.weight"])


def test_a_path_trains_only_its_genotypes_ops() -> None:
    shape = DartsShape(channels=2, cells_per_stage=1)
    for genotype in GENOTYPES:
        net = _supernet(shape)
        torch.nn.functional.cross_entropy(net(_images(4, 8), genotype), torch.arange(4)).backward()
        chosen = set()
        for i, cell in enumerate(net.cells):
            for m in range(4):
                for op, src in (genotype.reduce if cell.reduction else genotype.normal)[2 * m : 2 * m + 2]:
                    chosen.add(f"cells.{i}.edges.{(0, 2, 5, 9)[m] + src}.{op}.")
        for name, p in net.named_parameters():
            on_path = not name.startswith("cells.") or ".edges." not in name or any(name.startswith(c) for c in chosen)
            assert (p.grad is not None) == on_path, name
            if on_path:
                assert p.grad.abs().sum() > 0, name


def test_the_supernet_is_the_darts_search_network_with_every_op_on_every_edge() -> None:
    net = DartsNetwork(DartsShape())  # C = 16, 8 cells, CIFAR-10
    assert len(net.cells) == 8 and [cell.reduction for cell in net.cells] == [False, False, True, False, False, True, False, False]
    assert all(len(cell.edges) == 14 and all(set(edge) == set(OPS) for edge in cell.edges) for cell in net.cells)
    # DARTS's train_search.py logs "param size = 1.930618MB" for this network (utils.count_parameters_in_MB)
    assert sum(p.numel() for p in net.parameters()) == 1_930_618
    for cell in (net.cells[0], net.cells[2]):  # DARTS's MixedOp puts a BN after a pool; a reducing skip is a FactorizedReduce
        for edge, src in zip(cell.edges, [0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]):
            assert all(isinstance(edge[pool][-1], torch.nn.BatchNorm2d) for pool in ("max_pool_3x3", "avg_pool_3x3"))
            reduces = cell.reduction and src < 2
            assert isinstance(edge["skip_connect"], FactorizedReduce if reduces else torch.nn.Identity)
            assert edge["sep_conv_3x3"][1].stride == edge["dil_conv_5x5"][1].stride == ((2, 2) if reduces else (1, 1))
    bns = [m for m in net.cells.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(bn.affine or bn.track_running_stats for bn in bns)
    assert net(torch.zeros(2, 3, 32, 32), DARTS_V2).shape == (2, 10)
    with pytest.raises(HarnessError, match="needs the genotype"):
        net(torch.zeros(2, 3, 32, 32))
    with pytest.raises(HarnessError, match="Genotype"):
        net(torch.zeros(2, 3, 32, 32), [DARTS_V2.normal, DARTS_V2.reduce])
    standalone = materialise(net, DARTS_V2)
    with pytest.raises(HarnessError, match="takes no path"):
        standalone(torch.zeros(2, 3, 32, 32), DARTS_V2)
    with pytest.raises(HarnessError, match="one arch at a time"):
        SPACE.materialise_group(net, [DARTS_V2, ALL_OPS])


def test_parameter_counts_are_the_standalone_networks() -> None:
    for shape in (DartsShape(), DartsShape(channels=6, cells_per_stage=2, n_classes=100), DartsShape(channels=4, cells_per_stage=1)):
        for genotype in GENOTYPES:
            with torch.random.fork_rng(devices=[]):
                net = DartsNetwork(shape, genotype)
            assert sum(p.numel() for p in net.parameters()) == parameter_count(genotype, shape)
    archs = SPACE.arch_set(_tiny(finetune={"n_archs": 5}))
    params = SPACE.params(archs)
    assert params.shape == (5,) and params.tolist() == [parameter_count(SPACE.decode(t)) / 1e6 for t in archs.arches]
    assert 0.1 < params.min() and params.max() < 0.6  # millions, C = 16 search size


# --------------------------------------------------------------------------- configs and the arch set


def test_the_space_brings_table_b1s_darts_values_and_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    cfg = config_from_dict({"space": "darts"})
    darts_values = (cfg.supernet.weight_decay, cfg.finetune.weight_decay, cfg.network.cells_per_stage, cfg.finetune.n_archs)
    assert darts_values == (3e-4, 3e-4, 2, 350)
    shared = (cfg.supernet.epochs, cfg.supernet.batch_size, cfg.supernet.lr, cfg.supernet.lr_min, cfg.network.channels)
    assert shared == (100, 64, 0.025, 0.001, 16)
    assert cfg.n_cells == 8 and _tiny().n_cells == 5
    assert config_from_dict({"space": "darts", "supernet": {"weight_decay": 1e-4}}).supernet.weight_decay == 1e-4
    assert config_from_dict({"space": "darts", "supernet": {"weight_decay": 1e-4}}).finetune.weight_decay == 3e-4
    for sections, message in (
        ({"network": {"channels": 5}}, "must be even"),
        ({"data": {"image_size": 2}}, "image_size on DARTS must be 4 or more"),
        ({"data": {"dataset": "cifar100"}}, "runs on dataset"),
        ({"device": {"archs_per_group": 2}}, "implemented for NB201 only"),
        ({"device": {"dense_supernet": "on"}}, "implemented for NB201 only"),
    ):
        with pytest.raises(HarnessError, match=message):
            config_from_dict({"space": "darts", **sections})
    # the shipped configs load; the GPU one ranks Table 4.2's 350 genotypes, the CPU mini one 100 (its time budget)
    for name, n_archs in (("ws-mini-cpu-darts.toml", 100), ("ws-darts-gpu.toml", 350)):
        shipped = load_config(Path(__file__).parents[1] / "configs" / name)
        assert shipped.space == "darts" and shipped.finetune.n_archs == n_archs and shipped.supernet.weight_decay == 3e-4


def test_the_arch_set_is_350_distinct_seeded_genotypes_with_the_surrogates_epoch_98_accuracy() -> None:
    cfg = config_from_dict({"space": "darts"})
    archs = SPACE.arch_set(cfg)
    assert len(archs.arches) == len(set(archs.arches)) == 350 and archs.indices.tolist() == list(range(350))
    bench = load_benchmark("nb301")
    encodings = bench.sample(350, cfg.finetune.arch_seed)
    assert [SPACE.decode(t) for t in archs.arches] == [encoding_to_genotype(row) for row in encodings]
    np.testing.assert_array_equal(archs.truth, bench.query(encodings, "cifar10", "accuracy", "valid", "98", epochs=98).values[:, 0, 0])
    assert 80 < archs.truth.min() and archs.truth.max() < 96 and "epoch 98" in archs.truth_source
    other = SPACE.arch_set(cfg.with_overrides(finetune={"arch_seed": 1}))
    assert not set(other.arches) & set(archs.arches)
    assert SPACE.thesis_dataset("cifar10-valid") == SPACE.thesis_search_space("cifar10-valid") == "DARTS"
    with pytest.raises(HarnessError, match="nasbench301"):  # the official ensemble needs its package and models
        SPACE.arch_set(cfg, truth_root=Path("/nonexistent/nb_models"))


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_makes_an_update_of_the_darts_supernet(algorithm: str) -> None:
    cfg = _tiny(supernet={"algorithm": algorithm})
    space = get_space("darts")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = space.build_supernet(cfg)
    before = [p.detach().clone() for p in net.parameters()]
    rollouts = ALGORITHMS[algorithm].draw(space, np.random.default_rng(0), cfg.n_cells)
    assert len(rollouts[0]) == {"fairnas": 7, "multipath": 4}.get(algorithm, 1)
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loss, norm = supernet_update(net, x, torch.arange(8) % 10, rollouts, cfg, make_optimizer(net, cfg))
    assert torch.isfinite(loss) and norm > 0
    moved = sum(not torch.equal(p.detach(), b) for p, b in zip(net.parameters(), before))
    assert moved > 10


@pytest.mark.parametrize("algorithm", ["spos", "fairnas", "metaprox"])
def test_a_killed_darts_supernet_run_resumes_to_identical_weights(tmp_path: Path, algorithm: str) -> None:
    write_cifar10(tmp_path / "data", n_train=64)
    cfg = _tiny(tmp_path / "data", supernet={"algorithm": algorithm})
    train, _ = load_images(cfg, torch.device("cpu"))
    straight = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "straight", progress=False))
    train_supernet(cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    assert load_checkpoint(checkpoint_path(tmp_path / "killed", 0))["epoch"] == 1
    resumed = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "killed", progress=False))
    assert straight["epoch"] == resumed["epoch"] == 2
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    for key, state in straight["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed["optimizer"]["state"][key]["momentum_buffer"])
    other = load_checkpoint(train_supernet(cfg, 1, train, tmp_path / "seed1", progress=False))
    assert not all(torch.equal(t, other["model"][n]) for n, t in straight["model"].items())


def test_a_toy_darts_run_writes_table_4_2s_darts_numbers_beside_ours(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", n_train=96, n_test=40)
    config = tmp_path / "toy.toml"
    config.write_text(TOY.format(root=tmp_path / "data"))
    out = tmp_path / "run"
    assert main(["ws", "run", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    archs = ws._read_arch_set(out)
    assert len(archs.arches) == 6 and all(SPACE.encode(SPACE.decode(t)) == t for t in archs.arches)
    logs = ws.read_logs(out, 0, archs)
    assert len(logs) == 6 * 5 and logs.arch.tolist()[::5] == list(archs.arches)
    text = (out / "table.md").read_text()
    assert "Table 4.2 (DARTS, SPOS)" in text and "val acc" in text and "epoch 98" in text
    assert "(350 archs, 3 supernets of 100 epochs, full-size network)" in text  # Table 4.2's protocol on DARTS
    assert json.loads((out / "truth.json").read_text())["split"] == "val"  # NB301 predicts validation accuracy
    title = ws._run_title(load_config(out / "config.json"), archs)
    assert "SPOS on DARTS cifar10-valid, 6 archs" in title and "NB201" not in title
    table = pd.read_csv(out / "table.csv").set_index("estimator")
    assert table.loc["SoTL", "reference_spearman"] == 0.18 and table.loc["SoTL", "reference_top_k"] == 93.41  # Table 4.2
    published = thesis.table("4.2")
    published = published[(published.search_space == "DARTS") & (published.algorithm == "SPOS")]
    assert len(published) == 8  # SoTL, TLMini, ValAcc, ValAccMini x (Spearman, top-10)
    for row in published.itertuples():
        column = "reference_spearman" if row.measure == "spearman" else "reference_top_k"
        assert table.loc[row.estimator, column] == row.mean, (row.estimator, row.measure)
    corr = pd.read_csv(out / "correlations.csv")
    assert sorted(corr[corr.estimator == "SoTL"].step.unique()) == [1, 2, 3, 4]
