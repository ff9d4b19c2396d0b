"""Weight sharing on NAS-Bench-1Shot1 (the thesis's NB101-1/2/3): arch text, samplers, the one-shot model against an
independent transcription of the official weighted forward, materialised networks, every algorithm's update, resume,
the arch set and its truth, and a toy run end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from harness.adapters import nb101
from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.registry import load_benchmark
from harness.spaces.nb101 import OPS
from harness.spaces.nb1shot1 import Config, search_space
from harness.supernet.config import WSConfig, config_from_dict, load_config
from harness.supernet.nb1shot1_model import OneShotNetwork, materialise
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces import get_space
from harness.supernet.spaces.nb1shot1 import NB1Shot1Space
from harness.supernet.train import load_checkpoint, load_images, make_optimizer, supernet_update, train_supernet
from image_fixtures import write_cifar10
from nb101_fixtures import write_fixture

C3, C1, MP = OPS  # conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3

# Hand-picked configurations. LOOSE: space 1, the output takes the input and block 2, block 2 takes the input and block
# 1; block 3 feeds only block 4 and block 4 feeds nothing, so blocks 3 and 4 are loose ends (NB101 prunes them).
LOOSE = Config(1, ((0,), (0, 1), (1, 2), (0, 3), (0, 2)), (C3, C1, C3, MP))
HAND_PICKED = (
    LOOSE,
    Config(1, ((0,), (0, 1), (0, 2), (1, 3), (3, 4)), (MP, C3, C1, C3)),  # every block runs; the output skips the input
    Config(2, ((0,), (1,), (0, 2), (2, 3), (0, 1, 4)), (C1, MP, C3, C3)),  # block 3 feeds only block 4: all run
    Config(2, ((0,), (0,), (1, 2), (0, 1), (1, 2, 4)), (C3, C3, MP, C1)),  # block 3 is a loose end
    Config(3, ((0,), (1,), (2,), (0, 3), (1, 4), (0, 5)), (C3, C1, MP, C3, C1)),  # a chain through every block
    Config(3, ((0,), (0,), (1,), (2, 3), (0, 1), (4, 5)), (MP, C1, C3, C1, C3)),  # every block runs
    Config(3, ((0,), (1,), (1,), (0, 2), (0, 1), (0, 5)), (C1, C3, C3, MP, C3)),  # blocks 3 and 4 are loose ends
)

TOY = """
name = "toy-nb1shot1"
space = "nb1shot1-1"
[data]
dataset = "cifar10-valid"
root = "{root}"
image_size = 16
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
"""


def _config(root: Path | str = "data", space: int = 1, **sections: dict) -> WSConfig:
    base = config_from_dict({"space": f"nb1shot1-{space}"})
    return base.with_overrides(**{
        "data": {"root": str(root), "image_size": 16},
        "network": {"channels": 2, "cells_per_stage": 1},
        "supernet": {"epochs": 2, "batch_size": 16},
        "finetune": {"steps": 2, "eval_every": 1},
        "device": {"device": "cpu"},
        "report": {"sum_step": 1, "top_k": 3},
    } | sections)


def _supernet(cfg: WSConfig, seed: int = 0) -> OneShotNetwork:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_space(cfg.space).build_supernet(cfg).double()


def _images(n: int = 8, side: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _warm_running_statistics(net: OneShotNetwork, space: NB1Shot1Space, forwards: int = 6) -> None:
    """A few training-mode forwards on random paths, so that running statistics are not their initial 0 and 1."""
    net.train()
    rng = np.random.default_rng(5)
    with torch.no_grad():
        for i in range(forwards):
            net(_images(seed=10 + i), space.uniform_path(rng, 3))


def _configs() -> list[Config]:
    """The hand-picked configurations and two uniform draws per space."""
    rng = np.random.default_rng(11)
    drawn = [NB1Shot1Space(n).uniform_path(rng, 3) for n in (1, 2, 3) for _ in range(2)]
    return [*HAND_PICKED, *drawn]


def official_weighted_forward(net: OneShotNetwork, x: torch.Tensor, config: Config) -> torch.Tensor:
    """The official one-shot model's forward with a discrete architecture (automl/nasbench-1shot1 ``model_search.py``,
    ``discrete=True``), transcribed independently of the module under test: every block runs every op and sums every
    candidate input, each weighted 1 or 0 by the configuration; the output is ``w_0 proj_out(x)`` plus the concatenation
    of ``w_j h_j``; max-pool (2, stride 2, padding 1) before the first cell of stacks 2 and 3."""
    k = len(config.ops)
    n = net.shape.cells_per_stage
    s = net.stem(x)
    for i, cell in enumerate(net.cells):
        if i in (n, 2 * n):
            s = torch.nn.functional.max_pool2d(s, kernel_size=2, stride=2, padding=1)
        states: list[torch.Tensor] = []
        for b in range(1, k + 1):
            inputs = [cell.projections[str(b)](s), *states]
            mixed_input = sum((1.0 if p in config.parents[b - 1] else 0.0) * t for p, t in enumerate(inputs))
            states.append(sum((1.0 if op == config.ops[b - 1] else 0.0) * cell.blocks[b - 1][op](mixed_input) for op in OPS))
        weights = [1.0 if j in config.parents[k] else 0.0 for j in range(k + 1)]
        s = weights[0] * cell.projections["out"](s) + torch.cat([w * t for w, t in zip(weights[1:], states)], dim=1)
    return net.classifier(net.head(s).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- archs and samplers


@pytest.mark.parametrize("number", [1, 2, 3])
def test_an_arch_is_written_as_its_configuration_index_and_read_back(number: int) -> None:
    space = NB1Shot1Space(number)
    last = search_space(number).n_configs - 1
    for index in (0, 1, 12345, last):
        config = search_space(number).config(index)
        assert space.encode(config) == str(index)
        assert space.decode(str(index)) == config
    for bad in ("", "abc", "-1", "1.0", " 3", "0x10", str(last + 1)):
        with pytest.raises(HarnessError, match=rf"0\.\.{last}"):
            space.decode(bad)
    with pytest.raises(HarnessError, match="belongs to nb1shot1-"):
        space.encode(search_space(1 + number % 3).config(0))


def test_an_unknown_space_number_names_the_valid_ones() -> None:
    with pytest.raises(HarnessError, match=r"valid: 1, 2, 3"):
        NB1Shot1Space(4)


@pytest.mark.parametrize("number", [1, 3])
def test_the_samplers_are_functions_of_the_generator_and_spos_draws_the_uniform_configuration(number: int) -> None:
    space = NB1Shot1Space(number)
    draws = [space.uniform_path(np.random.default_rng(42), 9) for _ in range(2)]
    assert draws[0] == draws[1]
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    uniform = [space.uniform_path(a, 9) for _ in range(20)]
    assert [space.spos_path(b, 9) for _ in range(20)] == uniform
    assert len(set(uniform)) > 15 and all(c.space == number for c in uniform)
    other = [space.uniform_path(np.random.default_rng(4), 9) for _ in range(20)]
    assert other != uniform


def test_the_uniform_sampler_is_uniform_over_configurations() -> None:
    """Space 1: 14,580 configurations = 180 parent choices x 81 op choices. Chi-square tests (p > 0.001) of the
    graph and of the ops over 40,500 draws, and of each node's parents and each block's op: a sampler drawing parents
    or ops non-uniformly, or not independently of each other, fails one of them."""
    space = NB1Shot1Space(1)
    graphs = {graph: i for i, graph in enumerate(search_space(1).graphs)}
    rng = np.random.default_rng(0)
    draws = [space.uniform_path(rng, 3) for _ in range(40_500)]
    op_code = {op: i for i, op in enumerate(OPS)}

    def uniform(codes: list[int], categories: int) -> None:
        counts = np.bincount(codes, minlength=categories)
        assert len(counts) == categories
        assert stats.chisquare(counts).pvalue > 1e-3

    uniform([graphs[c.parents] for c in draws], 180)
    uniform([int(np.ravel_multi_index([op_code[o] for o in c.ops], (3,) * 4)) for c in draws], 81)
    uniform([graphs[c.parents] * 3 + op_code[c.ops[0]] for c in draws], 540)  # parents and ops jointly
    for node, choices in enumerate(search_space(1).parent_choices):
        if len(choices) > 1:  # nodes 1 and 2 have one choice each
            uniform([choices.index(c.parents[node]) for c in draws], len(choices))


# --------------------------------------------------------------------------- config


def test_the_space_defaults_are_table_b1s_and_the_official_models_and_a_file_overrides_them() -> None:
    cfg = config_from_dict({"space": "nb1shot1-2"})
    assert (cfg.supernet.epochs, cfg.supernet.weight_decay, cfg.finetune.weight_decay) == (50, 3e-4, 3e-4)
    assert (cfg.supernet.batch_size, cfg.supernet.lr, cfg.supernet.lr_min, cfg.supernet.momentum) == (64, 0.025, 0.001, 0.9)
    assert (cfg.network.channels, cfg.network.cells_per_stage, cfg.finetune.n_archs) == (16, 3, 200)
    assert cfg.network.bn_affine and cfg.network.bn_track_running_stats and cfg.report.truth_schedule == "108"
    assert cfg.n_cells == 9
    nb201 = config_from_dict({})
    assert (nb201.supernet.epochs, nb201.supernet.weight_decay, nb201.network.cells_per_stage) == (100, 5e-4, 5)
    mine = config_from_dict({"space": "nb1shot1-2", "supernet": {"epochs": 3}, "network": {"channels": 4}})
    assert (mine.supernet.epochs, mine.supernet.weight_decay, mine.network.channels, mine.network.cells_per_stage) == (3, 3e-4, 4, 3)


def test_the_shipped_configs_load_on_nb101_1_with_table_b1s_settings() -> None:
    from harness.supernet.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    mini, gpu = load_config(configs / "ws-mini-cpu-nb1shot1.toml"), load_config(configs / "ws-nb1shot1-gpu.toml")
    for cfg in (mini, gpu):
        assert cfg.space == "nb1shot1-1" and cfg.supernet.weight_decay == cfg.finetune.weight_decay == 3e-4
        assert (cfg.finetune.n_archs, cfg.supernet.seeds, cfg.report.truth_schedule) == (200, (0, 1, 2), "108")
    assert (mini.network.channels, mini.network.cells_per_stage, mini.data.image_size, mini.device.device) == (4, 1, 16, "cpu")
    assert (gpu.network.channels, gpu.network.cells_per_stage, gpu.supernet.epochs, gpu.finetune.steps) == (16, 3, 50, 300)


def test_fairnas_arch_groups_and_other_datasets_are_refused_at_config_load() -> None:
    with pytest.raises(HarnessError, match=r"'fairnas' on NB101-1 .*per-edge formulation does not fit 1Shot1's per-node ops.*"
                                           r"valid here: spos, randomnas, multipath"):
        config_from_dict({"space": "nb1shot1-1", "supernet": {"algorithm": "fairnas"}})
    with pytest.raises(HarnessError, match="archs_per_group > 1"):
        config_from_dict({"space": "nb1shot1-3", "device": {"archs_per_group": 2}})
    with pytest.raises(HarnessError, match="runs on dataset.*cifar10-valid"):
        config_from_dict({"space": "nb1shot1-2", "data": {"dataset": "cifar100"}})
    with pytest.raises(HarnessError, match="implemented for NB201 only"):
        config_from_dict({"space": "nb1shot1-2", "device": {"dense_supernet": "on", "device": "cpu"}})


# --------------------------------------------------------------------------- the one-shot model


def test_the_macro_skeleton_is_the_official_one() -> None:
    """Stem C, three stacks of N cells at C, 2C, 4C, max-pool (2, stride 2, padding 1) before stacks 2 and 3 (32 -> 17
    -> 9), block projections c_in -> w, the output projection c_in -> w k, cell outputs w k channels, head 4C k -> 4C."""
    cfg = config_from_dict({"space": "nb1shot1-3"}).with_overrides(data={"image_size": None})
    net = get_space(cfg.space).build_supernet(cfg)
    k, widths = 5, [16] * 3 + [32] * 3 + [64] * 3
    assert net.stem[0].weight.shape == (16, 3, 3, 3)
    c_in = 16
    for cell, width in zip(net.cells, widths, strict=True):
        assert [tuple(p[0].weight.shape[:2]) for p in cell.projections.values()] == [(width, c_in)] * k + [(width * k, c_in)]
        for block in cell.blocks:
            assert list(block) == list(OPS)
            assert block[C3][0].weight.shape == (width, width, 3, 3) and block[C1][0].weight.shape == (width, width, 1, 1)
            assert block[C3][1].momentum == 0.997 and block[C3][1].affine and block[C3][1].track_running_stats
        c_in = width * k
    assert net.head[1].weight.shape == (64, 64 * k, 1, 1) and not net.head[2].affine
    assert net.classifier.weight.shape == (10, 64)
    sides = []
    for cell in net.cells:
        cell.register_forward_hook(lambda module, inputs, output: sides.append((output.shape[1], output.shape[2])))
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32), search_space(3).config(0)).shape == (2, 10)
    assert sides == [(16 * k, 32)] * 3 + [(32 * k, 17)] * 3 + [(64 * k, 9)] * 3


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_maxpool3x3_equals_pytorchs_max_pool_in_values_gradient_and_layout(layout: torch.memory_format) -> None:
    """On the CPU the op pools in channels-last layout; after a ReLU (many tied zeros) its values and the gradient it
    routes to the argmax are nn.MaxPool2d(3, 1, 1)'s, and the output keeps the input's layout."""
    from harness.supernet.nb1shot1_model import MaxPool3x3

    x = torch.randn(4, 6, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).relu().round(decimals=1)
    ours, theirs = x.clone().contiguous(memory_format=layout).requires_grad_(), x.clone().requires_grad_()
    y, reference = MaxPool3x3()(ours), torch.nn.MaxPool2d(3, stride=1, padding=1)(theirs)
    assert torch.equal(y, reference) and y.is_contiguous(memory_format=layout)
    g = torch.randn_like(reference)
    y.backward(g)
    reference.backward(g)
    assert torch.equal(ours.grad, theirs.grad)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_single_path_equals_the_official_weighted_forward(mode: str) -> None:
    """Float64, every space, configurations with and without loose ends; eval mode after running statistics moved, and
    train mode (batch statistics; the official forward also moves the unused ops' statistics, so it runs on a copy)."""
    for config in _configs():
        space = NB1Shot1Space(config.space)
        net = _supernet(_config(space=config.space))
        _warm_running_statistics(net, space)
        reference = copy.deepcopy(net)
        net.train(mode == "train")
        reference.train(mode == "train")
        x = _images(seed=99)
        with torch.no_grad():
            torch.testing.assert_close(net(x, config), official_weighted_forward(reference, x, config), rtol=1e-12, atol=1e-12)


def test_the_materialised_network_holds_a_slice_of_the_supernet_and_computes_its_path() -> None:
    for config in _configs():
        space = NB1Shot1Space(config.space)
        cfg = _config(space=config.space)
        supernet = _supernet(cfg)
        _warm_running_statistics(supernet, space)
        group = space.materialise_group(supernet, [config])
        assert group.group == (config,)
        net = group.net
        source, state = supernet.state_dict(), net.state_dict()
        assert set(state) < set(source)
        for name, tensor in state.items():
            assert torch.equal(tensor, source[name]) and tensor.dtype == source[name].dtype, name
            assert tensor.data_ptr() != source[name].data_ptr(), name  # a copy: finetuning leaves the supernet alone
        x = _images(seed=7)
        for train in (False, True):
            supernet.train(train)
            group.train(train)
            with torch.no_grad():
                torch.testing.assert_close(group(x)[:, 0], supernet(x, config), rtol=1e-12, atol=1e-12)
    with pytest.raises(HarnessError, match="runs nb1shot1-3"):
        net(x, search_space(3).config(0))
    with pytest.raises(HarnessError, match="one arch at a time"):
        space.materialise_group(supernet, [config, config])


def test_a_loose_end_and_an_unused_projection_are_not_in_the_standalone_network() -> None:
    supernet = _supernet(_config())
    net = materialise(supernet, LOOSE)
    modules = {name.rsplit(".", 2)[0] for name in net.state_dict() if name.startswith("cells.0.")}  # "<module>.<layer>.<tensor>"
    assert modules == {"cells.0.projections.1", "cells.0.projections.2", "cells.0.projections.out",
                       f"cells.0.blocks.0.{C3}", f"cells.0.blocks.1.{C1}"}
    assert [list(block) for block in net.cells[0].blocks] == [[C3], [C1], [], []]


def test_only_the_weights_of_the_path_get_gradients() -> None:
    """LOOSE runs, in every cell, the projections of blocks 1, 2 and of the output, block 1's conv3x3 and block 2's
    conv1x1; with the stem, the head and the classifier those get a non-zero gradient and nothing else gets one."""
    cfg = _config()
    net = _supernet(cfg)
    net.train()
    loss = torch.nn.functional.cross_entropy(net(_images(), LOOSE), torch.arange(8) % 10)
    loss.backward()
    on_path = ("stem.", "head.", "classifier.", *(f"cells.{i}.{part}." for i in range(3) for part in (
        "projections.1", "projections.2", "projections.out", f"blocks.0.{C3}", f"blocks.1.{C1}")))
    for name, p in net.named_parameters():
        if name.startswith(on_path):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


@pytest.mark.parametrize("algorithm", [name for name in ALGORITHMS if name != "fairnas"])
def test_every_algorithm_but_fairnas_makes_an_update(algorithm: str) -> None:
    """One update from fresh weights: a finite loss; the weights of the update's paths move, and, without Metaprox's
    proximal term (whose gradient reaches every weight), nothing else does."""
    cfg = _config(supernet={"algorithm": algorithm, "epochs": 2, "batch_size": 16})
    space = get_space(cfg.space)
    net = _supernet(cfg)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    rollouts = ALGORITHMS[algorithm].draw(space, np.random.default_rng(2), cfg.n_cells)
    paths = {path for rollout in rollouts for path in rollout}
    on_paths = {name for path in paths for name, _ in materialise(net, path).named_parameters()}
    net.train()
    loss, norm = supernet_update(net, _images(), torch.arange(8) % 10, rollouts, cfg, make_optimizer(net, cfg))
    assert torch.isfinite(loss) and norm > 0
    moved = {name for name, p in net.named_parameters() if not torch.equal(p.detach(), before[name])}
    if ALGORITHMS[algorithm].prox_lambda:
        assert moved >= on_paths
    else:
        assert moved == on_paths


@pytest.mark.parametrize("algorithm", ["spos", "multipath", "metaprox"])
def test_a_killed_supernet_run_resumes_to_identical_weights(tmp_path: Path, algorithm: str) -> None:
    write_cifar10(tmp_path / "data", n_train=64)
    cfg = _config(tmp_path / "data", supernet={"algorithm": algorithm, "epochs": 2, "batch_size": 16})
    train, _ = load_images(cfg, torch.device("cpu"))
    straight = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "straight", progress=False))
    train_supernet(cfg, 0, train, tmp_path / "killed", stop_after_epoch=1, progress=False)
    assert load_checkpoint(tmp_path / "killed" / "supernet-seed0.pt")["epoch"] == 1
    resumed = load_checkpoint(train_supernet(cfg, 0, train, tmp_path / "killed", progress=False))
    assert straight["model"].keys() == resumed["model"].keys()
    for name, tensor in straight["model"].items():  # BN running statistics included
        assert torch.equal(tensor, resumed["model"][name]), name
    for key, state in straight["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed["optimizer"]["state"][key]["momentum_buffer"])


# --------------------------------------------------------------------------- arch set and truth


def test_the_arch_set_draws_configurations_with_data_and_their_108_epoch_validation_accuracy() -> None:
    cfg = _config(finetune={"n_archs": 40, "arch_seed": 3})
    space = get_space(cfg.space)
    archs = space.arch_set(cfg)
    bench = load_benchmark("nb1shot1-1")
    assert np.isin(archs.indices, bench.archs_with_data()).all() and len(set(archs.indices)) == 40
    assert archs.arches == tuple(str(i) for i in archs.indices)
    embedded = nb101.embedded_values().set_index("hash")
    hashes = [search_space(1).to_spec(search_space(1).config(int(i))).hash() for i in archs.indices]
    np.testing.assert_allclose(archs.truth, 100 * embedded.loc[hashes, "valid_108"].to_numpy(dtype=np.float64), rtol=1e-6)
    assert "validation accuracy (val_accuracy)" in archs.truth_source and "--truth-root" in archs.truth_source
    assert f"{len(set(hashes))} distinct NB101 cells" in archs.truth_source
    again = space.arch_set(cfg)
    np.testing.assert_array_equal(again.indices, archs.indices)
    assert not np.array_equal(space.arch_set(cfg.with_overrides(finetune={"arch_seed": 4})).indices, archs.indices)
    params = space.params(archs)
    np.testing.assert_allclose(params, embedded.loc[hashes, "params"].to_numpy(dtype=np.float64) / 1e6)
    assert space.thesis_dataset(cfg.data.dataset) == space.thesis_search_space(cfg.data.dataset) == "NB101-1"


def test_with_a_converted_store_the_truth_is_the_test_accuracy_over_the_three_runs(tmp_path: Path) -> None:
    records = write_fixture(tmp_path / "f.tfrecord", budgets=(108,))
    store = nb101.convert(tmp_path / "f.tfrecord", tmp_path / "store")
    cfg = _config(finetune={"n_archs": 6, "arch_seed": 0})
    archs = get_space(cfg.space).arch_set(cfg, truth_root=store)
    test_mean = records.groupby("hash").final_test.mean()
    hashes = [search_space(1).to_spec(search_space(1).config(int(i))).hash() for i in archs.indices]
    np.testing.assert_allclose(archs.truth, 100 * test_mean.loc[hashes].to_numpy(), rtol=1e-6)
    assert "test accuracy (mean of the cell's training runs)" in archs.truth_source


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("ws-nb1shot1")
    write_cifar10(base / "data", n_train=160)
    config = base / "toy.toml"
    config.write_text(TOY.format(root=base / "data"))
    out = base / "run"
    assert main(["ws", "run", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    return config, out


def test_a_toy_run_writes_table_4_2s_nb101_1_numbers_beside_ours(toy_run: tuple[Path, Path]) -> None:
    _, out = toy_run
    table = pd.read_csv(out / "table.csv").set_index("estimator")
    # Table 4.2, NB101-1, SPOS: SoTL 0.43 (0.02), top-10 93.44 (0.04); ValAcc 0.23 (0.05), 90.64 (2.44)
    assert table.loc["SoTL", ["reference_spearman", "reference_spearman_std", "reference_top_k"]].tolist() == [0.43, 0.02, 93.44]
    assert table.loc["ValAcc", ["reference_spearman", "reference_top_k", "reference_top_k_std"]].tolist() == [0.23, 90.64, 2.44]
    assert np.isfinite(table.loc["SoTL", "spearman_mean"])
    text = (out / "table.md").read_text()
    assert "Table 4.2 (NB101-1, SPOS)" in text and "val acc" in text and "0.430" in text
    assert "(200 archs, 3 supernets of 50 epochs, full-size network)" in text  # Table 4.2's protocol, Table B.1's epochs
    assert json.loads((out / "truth.json").read_text())["split"] == "val"  # the embedded table's validation accuracy
    archs = ws._read_arch_set(out)
    title = ws._run_title(load_config(out / "config.json"), archs)
    assert "SPOS on NB101-1 (NAS-Bench-1Shot1 space 1) cifar10-valid, 6 archs" in title and "NB201" not in title
    assert len(archs.indices) == 6
    space = NB1Shot1Space(1)
    logs = ws.read_logs(out, 0, archs)
    assert set(logs.arch) == set(archs.arches) and len(logs) == 6 * 5
    assert all(space.decode(text).space == 1 for text in archs.arches)


def test_a_toy_run_refuses_fairnas_before_writing_anything(tmp_path: Path, toy_run: tuple[Path, Path], capsys) -> None:
    config, _ = toy_run
    out = tmp_path / "fair"
    assert main(["ws", "run", "--config", str(config), "--out", str(out), "--algorithm", "fairnas", "--no-progress"]) == 2
    assert "per-edge formulation" in capsys.readouterr().err and not out.exists()
