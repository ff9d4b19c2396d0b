"""Differentiable search on NAS-Bench-1Shot1 spaces 1-3: the packed architecture weights and their mask, the mixings
on masked rows (NB201's unchanged), the one-shot model's mixed forward against the single path and against an
independent transcription of the official weighted forward, the derivation against a step-by-step reading of the
official parser, the truth and its missing case, a killed search resuming bit for bit, and the report's Table 4.7 row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness import thesis
from harness.cli import main
from harness.adapters import nb101
from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.search.algorithms import (DERIVATION, ExponentiatedGradient, dirichlet_weights, search_block,
                                       simplex_weights, softmax_weights)
from harness.search.config import ALGORITHMS, SearchConfig
from harness.search.derive import NB1SHOT1_TEST_COLUMN, NB1SHOT1_TRUTH_COLUMN, derived_config
from harness.search.diagnostics import cell_depth_nb101
from harness.search.loop import checkpoint_path, init_state, load_checkpoint, log_path, search
from harness.search.report import load_runs, published, summary, final_epochs, trajectories
from harness.search.spaces import SEARCH_SPACES, NB1Shot1SearchSpace, get_search_space
from harness.spaces.nb101 import CONV1X1, CONV3X3, MAXPOOL3X3, ModelSpec
from harness.spaces.nb1shot1 import Config, search_space
from harness.supernet.train import load_images
from image_fixtures import write_cifar10
from nb101_fixtures import write_fixture
from search_fixtures import assert_same_search_state

torch.set_num_threads(1)
C3, C1, MP = CONV3X3, CONV1X1, MAXPOOL3X3
BEGIN = {1: 3, 2: 2, 3: 2}  # model_search.py, _initialize_alphas: the first length of alphas_inputs
CONFIGS = (
    Config(1, ((0,), (0, 1), (1, 2), (0, 3), (0, 2)), (C3, C1, C3, MP)),  # blocks 3 and 4 are loose ends
    Config(1, ((0,), (0, 1), (0, 2), (1, 3), (3, 4)), (MP, C3, C1, C3)),
    Config(2, ((0,), (1,), (0, 2), (2, 3), (0, 1, 4)), (C1, MP, C3, C3)),
    Config(2, ((0,), (0,), (1, 2), (0, 1), (1, 2, 4)), (C3, C3, MP, C1)),  # block 3 is a loose end
    Config(3, ((0,), (1,), (2,), (0, 3), (1, 4), (0, 5)), (C3, C1, MP, C3, C1)),  # a chain through every block
    Config(3, ((0,), (1,), (1,), (0, 2), (0, 1), (0, 5)), (C1, C3, C3, MP, C3)),  # blocks 3 and 4 are loose ends
)


def _cfg(number: int, algorithm: str = "darts-1", **search: object) -> SearchConfig:
    return SearchConfig().with_overrides(
        space=f"nb1shot1-{number}", network={"channels": 2, "cells_per_stage": 1, "bn_affine": True},
        search={"algorithm": algorithm, **search}, device={"device": "cpu"})


def _one_hot(space: NB1Shot1SearchSpace, config: Config) -> np.ndarray:
    """The packed 0/1 weights of ``config``, written from the layout the module docstring states: rows 0..k-1 the op
    rows over the official PRIMITIVES (maxpool, conv3x3, conv1x1), row k the output's inputs 0..k, then one row per
    block with a choice of parents over nodes 0..block-1."""
    k = len(config.ops)
    weights = np.zeros(space.alpha_shape(None))
    for b, op in enumerate(config.ops):
        weights[b, ["maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu"].index(op)] = 1
    weights[k, list(config.parents[k])] = 1
    for row, block in enumerate(range(BEGIN[config.space], k + 1), start=k + 1):
        weights[row, list(config.parents[block - 1])] = 1
    return weights


# --------------------------------------------------------------------------- packing and mask


@pytest.mark.parametrize("number", [1, 2, 3])
def test_alpha_packs_the_official_groups_in_their_draw_order(number: int) -> None:
    space = get_search_space(f"nb1shot1-{number}")
    k = search_space(number).n_blocks
    lengths = [3] * k + [k + 1] + list(range(BEGIN[number], k + 1))
    assert space.alpha_shape(None) == (len(lengths), max(3, k + 1))
    np.testing.assert_array_equal(space.alpha_mask(None), [[j < n for j in range(max(3, k + 1))] for n in lengths])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        alpha = space.draw_alpha(None, 1e-3)
        torch.manual_seed(7)
        official = [1e-3 * torch.randn(k, 3, dtype=torch.float64), 1e-3 * torch.randn(1, k + 1, dtype=torch.float64),
                    *(1e-3 * torch.randn(1, n, dtype=torch.float64) for n in range(BEGIN[number], k + 1))]
    ops, output, inputs = space.groups(alpha)
    assert torch.equal(ops, official[0]) and torch.equal(output, official[1][0])
    assert [None if w is None else len(w) for w in inputs] == [None] * (BEGIN[number] - 1) + list(range(BEGIN[number], k + 1))
    for weights, group in zip([w for w in inputs if w is not None], official[2:]):
        assert torch.equal(weights, group[0])
    assert (alpha[~torch.as_tensor(space.alpha_mask(None))] == 0).all()
    with pytest.raises(HarnessError, match=r"op weights are \[rows, entries\]"):
        space.groups(np.zeros((3, 3)))


def test_the_other_spaces_have_no_mask_and_the_registry_names_the_new_ones() -> None:
    assert {f"nb1shot1-{n}" for n in (1, 2, 3)} <= set(SEARCH_SPACES)
    for name in ("nb201", "darts", "darts-s2"):
        assert SEARCH_SPACES[name].alpha_mask(SearchConfig()) is None
    with pytest.raises(HarnessError, match="nb1shot1-1"):
        get_search_space("nb1shot1-4")
    space = get_search_space("nb1shot1-2")
    assert space.ws_space == space.benchmark == "nb1shot1-2" and space.truth_columns == (NB1SHOT1_TRUTH_COLUMN,)


# --------------------------------------------------------------------------- mixings on masked rows


def _masked_alpha(number: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    space = get_search_space(f"nb1shot1-{number}")
    mask = torch.as_tensor(space.alpha_mask(None))
    alpha = torch.randn(mask.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return torch.where(mask, alpha, torch.zeros_like(alpha)).requires_grad_(), mask


def test_softmax_normalises_each_row_over_its_real_entries_and_pads_get_zero_weight_and_gradient() -> None:
    alpha, mask = _masked_alpha()
    weights = softmax_weights(alpha, np.random.default_rng(0), mask)
    assert (weights[~mask] == 0).all()
    np.testing.assert_allclose(weights.sum(dim=1).detach(), 1.0, rtol=1e-15)
    for row in range(len(alpha)):
        n = int(mask[row].sum())
        assert torch.equal(weights[row, :n], torch.softmax(alpha[row, :n], dim=0))
    (grad,) = torch.autograd.grad((weights * torch.arange(weights.numel()).reshape(weights.shape)).sum(), [alpha])
    assert (grad[~mask] == 0).all() and (grad[mask] != 0).any()
    assert torch.equal(DERIVATION["softmax"](alpha, mask), weights) and torch.equal(DERIVATION["dirichlet"](alpha, mask), weights)
    nb201 = torch.randn(6, 5, dtype=torch.float64)  # NB201 and DARTS: no mask, softmax as before
    assert torch.equal(softmax_weights(nb201, np.random.default_rng(0)), torch.softmax(nb201, dim=-1))


def test_dirichlet_draws_each_group_of_rows_over_its_real_entries_one_after_the_other() -> None:
    alpha, mask = _masked_alpha()
    weights = dirichlet_weights(alpha, np.random.default_rng(5), mask)
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    np.testing.assert_allclose(weights.sum(dim=1).detach(), 1.0, rtol=1e-12)
    # step by step: the seed, then rows grouped by their real length in order of their first row, one rsample each
    seed = int(np.random.default_rng(5).integers(2**63))
    concentration = torch.nn.functional.elu(alpha.detach()) + 1
    expected = torch.zeros_like(concentration)
    lengths = mask.sum(dim=1).tolist()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        for n in dict.fromkeys(lengths):
            rows = [r for r, length in enumerate(lengths) if length == n]
            expected[rows, :n] = torch.distributions.Dirichlet(concentration[rows, :n]).rsample()
    assert torch.equal(weights.detach(), expected)
    (grad,) = torch.autograd.grad((weights * torch.arange(weights.numel()).reshape(weights.shape)).sum(), [alpha])
    assert (grad[~mask] == 0).all() and (grad[mask] != 0).any()


@pytest.mark.parametrize("shape", [(6, 5), (2, 14, 8)])
def test_an_all_real_mask_draws_the_same_dirichlet_sample_as_no_mask(shape: tuple[int, ...]) -> None:
    """NB201 and DARTS have no mask; a mask with every entry real would draw the very same numbers."""
    alpha = 1e-3 * torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    unmasked = dirichlet_weights(alpha, np.random.default_rng(9))
    assert torch.equal(unmasked, dirichlet_weights(alpha, np.random.default_rng(9), torch.ones(shape, dtype=torch.bool)))
    seed = int(np.random.default_rng(9).integers(2**63))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        assert torch.equal(unmasked, torch.distributions.Dirichlet(torch.nn.functional.elu(alpha) + 1).rsample())


@pytest.mark.parametrize("number", [1, 3])
def test_gaea_starts_uniform_on_each_rows_real_entries_and_its_steps_keep_the_padding_at_zero(number: int) -> None:
    state = init_state(_cfg(number, "gaea-darts"), 0, torch.device("cpu"), torch.float64)
    mask = state.mask
    lengths = mask.sum(dim=1, keepdim=True).double()
    assert torch.equal(state.alpha.detach(), torch.where(mask, 1 / lengths, torch.zeros_like(state.alpha)))
    assert simplex_weights(state.alpha, state.draws, mask) is state.alpha
    assert isinstance(state.a_optimizer, ExponentiatedGradient)
    state.alpha.grad = torch.randn(state.alpha.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    state.a_optimizer.step()
    assert (state.alpha[~mask] == 0).all() and (state.alpha[mask] > 0).all()
    np.testing.assert_allclose(state.alpha.detach().sum(dim=1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("algorithm", ["darts-1", "drnas"])
def test_adam_keeps_the_padding_at_zero(algorithm: str) -> None:
    state = init_state(_cfg(2, algorithm), 0, torch.device("cpu"), torch.float64)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for _ in range(2):
        state.a_optimizer.zero_grad()
        (grad,) = torch.autograd.grad(state.loss((x, torch.tensor([0, 1, 2, 3]))), [state.alpha])
        state.alpha.grad = grad
        state.a_optimizer.step()
    assert (state.alpha[~state.mask] == 0).all() and (state.alpha.grad[~state.mask] == 0).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_runs_a_block_on_nb1shot1_3_and_keeps_the_padding_at_zero(algorithm: str) -> None:
    state = init_state(_cfg(3, algorithm), 0, torch.device("cpu"), torch.float64)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=generator), torch.tensor([0, 1, 2, 3]))
               for _ in range(4)]
    before = state.alpha.detach().clone()
    arch_loss, train_loss = search_block(state, algorithm, batches[:2], batches[2:], [0.025, 0.02])
    assert np.isfinite([float(arch_loss), float(train_loss)]).all()
    assert (state.alpha[~state.mask] == 0).all() and not torch.equal(state.alpha.detach(), before)


# --------------------------------------------------------------------------- the mixed forward


def official_mixed_forward(net: torch.nn.Module, x: torch.Tensor, number: int, mixed_op: torch.Tensor,
                           output: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """automl/nasbench-1shot1 ``model_search.py`` read independently of the module under test: ``mixed_op`` ``[k, 3]``
    over PRIMITIVES (maxpool, conv3x3, conv1x1), ``output`` ``[1, k + 1]``, ``inputs`` the ``[1, n]`` input weights,
    all normalised; a block takes the next input weights unless it is the first block, or the second in space 1; its
    inputs are the projected cell input then every earlier block; the output is ``w_0 proj_out(x)`` plus the
    concatenation of ``w_j h_j``."""
    primitives = ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu")
    k = mixed_op.shape[0]
    n = net.shape.cells_per_stage
    s = net.stem(x)
    for i, cell in enumerate(net.cells):
        if i in (n, 2 * n):
            s = torch.nn.functional.max_pool2d(s, kernel_size=2, stride=2, padding=1)
        pending = list(inputs)
        states: list[torch.Tensor] = []
        for idx in range(k):
            weights = None if idx == 0 or (idx == 1 and number == 1) else pending.pop(0)
            candidates = [cell.projections[str(idx + 1)](s), *states]
            if weights is not None:
                candidates = [w * t for w, t in zip(weights.squeeze(0), candidates)]
            total = sum(candidates)
            states.append(sum(w * cell.blocks[idx][op](total) for w, op in zip(mixed_op[idx], primitives)))
        assert not pending
        s = output[0][0] * cell.projections["out"](s) + torch.cat([w * t for w, t in zip(output[0][1:], states)], dim=1)
    return net.classifier(net.head(s).mean(dim=(2, 3)))


@pytest.mark.parametrize("number", [1, 2, 3])
def test_the_mixed_forward_is_the_official_weighted_forward(number: int) -> None:
    cfg = _cfg(number)
    space = get_search_space(cfg.space)
    state = init_state(cfg, 0, torch.device("cpu"), torch.float64)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(number))
    alpha = torch.randn(state.alpha.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    weights = softmax_weights(alpha, state.draws, state.mask)
    ops, output, inputs = space.groups(weights)
    mine = space.logits(state.net, x, weights)
    official = official_mixed_forward(state.net, x, number, ops, output[None], [w[None] for w in inputs if w is not None])
    torch.testing.assert_close(mine, official, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_one_hot_weights_of_a_configuration_give_the_single_path_exactly(config: Config) -> None:
    cfg = _cfg(config.space)
    space = get_search_space(cfg.space)
    net = init_state(cfg, 0, torch.device("cpu"), torch.float64).net
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    weights = torch.as_tensor(_one_hot(space, config))
    assert torch.equal(space.logits(net, x, weights), net(x, config))


def test_a_standalone_network_refuses_a_mixed_forward() -> None:
    from harness.supernet.nb1shot1_model import materialise

    cfg = _cfg(1)
    space = get_search_space(cfg.space)
    net = init_state(cfg, 0, torch.device("cpu"), torch.float64).net
    standalone = materialise(net, CONFIGS[0])
    with pytest.raises(HarnessError, match="needs the supernet"):
        space.logits(standalone, torch.zeros(2, 3, 8, 8, dtype=torch.float64), torch.as_tensor(_one_hot(space, CONFIGS[0])))


# --------------------------------------------------------------------------- derivation and truth


def official_parse(number: int, mixed_op: np.ndarray, output: np.ndarray, inputs: list[np.ndarray]) -> ModelSpec:
    """``eval_one_shot_model`` of automl/nasbench-1shot1 ``nasbench_analysis/eval_darts_one_shot_model_in_nasbench.py``
    read step by step: softmax per group, the op argmax, ``get_top_k`` (``argpartition``) of the input weights with
    the number of parents of nodes 3.. (space 1) or 2.. (spaces 2, 3), of the output weights with the output's; node 1
    reads the input, node 2 of space 1 both nodes 0 and 1; the adjacency, padded before the output in spaces 1 and 2
    with an unused conv1x1 vertex."""
    def softmax(a: np.ndarray) -> np.ndarray:
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def top(a: np.ndarray, n: int) -> list[int]:
        return list(np.argpartition(a[0], -n)[-n:])

    primitives = ["maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu"]
    degrees = {1: [0, 1, 2, 2, 2, 2], 2: [0, 1, 1, 2, 2, 3], 3: [0, 1, 1, 1, 2, 2, 2]}[number]
    nodes = [primitives[i] for i in softmax(mixed_op).argmax(-1)]
    fixed = {1: {1: [0], 2: [0, 1]}, 2: {1: [0]}, 3: {1: [0]}}[number]
    first = max(fixed) + 1
    parents = dict(fixed)
    for node, alpha in zip(range(first, len(degrees) - 1), inputs):
        parents[node] = top(softmax(alpha), degrees[node])
    parents[len(degrees) - 1] = top(softmax(output), degrees[-1])
    size = len(degrees)
    matrix = np.zeros((size, size), dtype=np.int64)
    for node, ps in parents.items():
        matrix[ps, node] = 1
    ops = ["input", *nodes, "output"]
    if number in (1, 2):
        matrix = np.insert(np.insert(matrix, 5, 0, axis=1), 5, 0, axis=0)
        ops.insert(5, "conv1x1-bn-relu")
    return ModelSpec(matrix, ops)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_the_derived_configuration_is_the_official_parse(number: int) -> None:
    space = get_search_space(f"nb1shot1-{number}")
    k = search_space(number).n_blocks
    generator = np.random.default_rng(number)
    for _ in range(40):
        mixed_op, output = generator.normal(size=(k, 3)), generator.normal(size=(1, k + 1))
        inputs = [generator.normal(size=(1, n)) for n in range(BEGIN[number], k + 1)]
        alpha = np.zeros(space.alpha_shape(None))
        alpha[:k, :3], alpha[k, :k + 1] = mixed_op, output[0]
        for row, a in enumerate(inputs, start=k + 1):
            alpha[row, :a.shape[1]] = a[0]
        weights = DERIVATION["softmax"](torch.as_tensor(alpha), torch.as_tensor(space.alpha_mask(None))).numpy()
        config = derived_config(search_space(number), *space.groups(weights))
        official = official_parse(number, mixed_op, output, inputs)
        assert search_space(number).to_spec(config).hash() == official.hash()
        assert config.ops == tuple(["maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu"][i] for i in mixed_op.argmax(1))


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_one_hot_weights_derive_their_configuration(config: Config) -> None:
    space = get_search_space(f"nb1shot1-{config.space}")
    assert derived_config(search_space(config.space), *space.groups(_one_hot(space, config))) == config


def test_derivation_by_hand_ties_and_refusals() -> None:
    space = get_search_space("nb1shot1-2")
    weights = np.zeros(space.alpha_shape(None))
    weights[:4, :3] = [[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]]  # block 4: a tie -> maxpool
    weights[4, :5] = [0.3, 0.1, 0.25, 0.25, 0.1]  # output: its 3 parents 0, 2, 3
    weights[5, :2] = [0.4, 0.6]  # block 2: 1 parent of nodes 0, 1
    weights[6, :3] = [0.5, 0.2, 0.3]  # block 3: 2 parents
    weights[7, :4] = [0.1, 0.3, 0.3, 0.3]  # block 4: 2 parents, a three-way tie -> the lower nodes 1, 2
    config = derived_config(search_space(2), *space.groups(weights))
    assert config == Config(2, ((0,), (1,), (0, 2), (1, 2), (0, 2, 3)), (C3, MP, C1, MP))
    with pytest.raises(HarnessError, match="input weights of lengths"):
        derived_config(search_space(2), weights[:4, :3], weights[4, :5], (None, None, weights[6, :3], weights[7, :4]))
    bad = weights.copy()
    bad[0, 0] = np.nan
    with pytest.raises(HarnessError, match="finite"):
        derived_config(search_space(2), *space.groups(bad))


def test_the_truth_is_the_embedded_validation_accuracy_or_missing_never_imputed() -> None:
    space = get_search_space("nb1shot1-1")
    bench = load_benchmark("nb1shot1-1")
    covered = bench.archs_with_data()
    with_data = search_space(1).config(int(covered[0]))
    without = search_space(1).config(int(np.setdiff1d(np.arange(search_space(1).n_configs), covered)[0]))
    entry = space.describe(_one_hot(space, with_data), bench)
    assert entry["arch"] == str(with_data) and entry["arch_index"] == search_space(1).index(with_data)
    assert entry[NB1SHOT1_TRUTH_COLUMN] == float(bench.final([entry["arch_index"]], "cifar10", "accuracy", "valid", "108")[0])
    assert 0 < entry[NB1SHOT1_TRUTH_COLUMN] <= 100 and entry["truth_missing"] is False
    missing = space.describe(_one_hot(space, without), bench)
    assert missing[NB1SHOT1_TRUTH_COLUMN] is None and missing["truth_missing"] is True
    with pytest.raises(HarnessError, match="have no data"):
        bench.resolve([without])
    assert missing["n_skip"] == 0
    kept = search_space(1).pruned_graph(without.parents)[1]
    assert missing["n_parameter_free"] == sum(without.ops[b - 1] == MP for b in kept)


@pytest.fixture(scope="module")
def nb101_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A converted NB101 store of the official tfrecord format (tests/nb101_fixtures.py: 1,000 real cells, their test
    accuracies synthetic, 3 runs each) and the records it holds."""
    root = tmp_path_factory.mktemp("nb101-store")
    records = write_fixture(root / "f.tfrecord", budgets=(108,))
    return nb101.convert(root / "f.tfrecord", root / "store"), records


def test_over_a_converted_store_the_truth_is_the_cells_test_accuracy_over_its_runs(
        nb101_store: tuple[Path, pd.DataFrame]) -> None:
    store, records = nb101_store
    space = get_search_space("nb1shot1-1")
    bench = space.truth_benchmark(str(store))
    config = search_space(1).config(int(bench.archs_with_data()[0]))
    entry = space.describe(_one_hot(space, config), bench)
    cell = search_space(1).to_spec(config).hash()
    assert entry[NB1SHOT1_TEST_COLUMN] == pytest.approx(100 * records[records.hash == cell].final_test.mean(), rel=1e-6)
    assert NB1SHOT1_TRUTH_COLUMN not in entry and entry["truth_missing"] is False
    cfg = SearchConfig().with_overrides(space="nb1shot1-1", search={"truth_root": str(store)})
    assert space.truth_columns_of(cfg) == (NB1SHOT1_TEST_COLUMN,) and space.truth_columns_of(SearchConfig().with_overrides(
        space="nb1shot1-1")) == (NB1SHOT1_TRUTH_COLUMN,)
    with pytest.raises(HarnessError, match="truth_root is for the nb1shot1 spaces"):
        SearchConfig().with_overrides(search={"truth_root": str(store)})
    with pytest.raises(HarnessError, match="takes no search.truth_root"):
        get_search_space("nb201").truth_benchmark(str(store))


def test_a_search_over_a_store_logs_the_test_truth_the_report_compares_it_and_refuses_a_mix(
        data_root: Path, nb101_store: tuple[Path, pd.DataFrame], searched: dict[str, Path], tmp_path: Path) -> None:
    store, _ = nb101_store
    folder = tmp_path / "darts-1-store"
    assert main(["search", "run", "--config", str(_toml(data_root, tmp_path / "toy.toml")), "--algorithm", "darts-1",
                 "--truth-root", str(store), "--out", str(folder), "--no-progress"]) == 0
    history = json.loads(log_path(folder, 0).read_text())
    bench = get_search_space("nb1shot1-1").truth_benchmark(str(store))
    for entry in history:
        assert NB1SHOT1_TRUTH_COLUMN not in entry and (entry[NB1SHOT1_TEST_COLUMN] is None) == entry["truth_missing"]
        if not entry["truth_missing"]:
            assert entry[NB1SHOT1_TEST_COLUMN] == float(bench.final([entry["arch_index"]], "cifar10", "accuracy", "test", "108")[0])
    out = tmp_path / "report"
    assert main(["search", "report", str(folder), "--out", str(out)]) == 0
    text = (out / "table.md").read_text()
    assert "ours: cifar10_test_108" in text and "the same, from an NB101 store" in text
    with pytest.raises(HarnessError, match="log different truths"):
        load_runs([folder, searched["sotl-darts"]])
    assert main(["search", "run", "--config", str(tmp_path / "toy.toml"), "--algorithm", "darts-1", "--out", str(folder),
                 "--no-progress"]) == 2  # resuming over the embedded table is refused: search.truth_root changed
    never = tmp_path / "never"
    assert main(["search", "run", "--config", str(tmp_path / "toy.toml"), "--truth-root", str(tmp_path / "no-store"),
                 "--out", str(never), "--no-progress"]) == 2 and not never.exists()  # refused before the folder is made


def _toml(data_root: Path, path: Path) -> Path:
    """A 1-epoch nb1shot1-1 search config file of the toy size (:func:`_loop_config`)."""
    path.write_text(f"""name = "toy"\nspace = "nb1shot1-1"\n[data]\nroot = "{data_root}"\nimage_size = 8\n
[network]\nchannels = 2\ncells_per_stage = 1\n[search]\nseeds = [0]\nepochs = 1\nbatch_size = 8\n
eigenvalue_iterations = 2\n[device]\ndevice = "cpu"\nthreads = 1\n""")
    return path


def test_nb101_depth_is_the_longest_input_to_output_path() -> None:
    chain = search_space(3).adjacency(CONFIGS[4].parents)  # 0 -> 1 -> 2 -> 3 -> 4 -> 5 -> 6
    assert cell_depth_nb101(chain) == 6
    assert cell_depth_nb101(search_space(1).adjacency(CONFIGS[0].parents)) == 3  # 0 -> 1 -> 2 -> out; 3, 4 loose
    assert cell_depth_nb101(search_space(1).to_spec(CONFIGS[0]).matrix) == 3  # the padding vertex changes nothing
    assert cell_depth_nb101(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])) == 0  # the output is not reached
    for bad in (np.zeros((3, 2)), np.array([[0, 1], [1, 0]]), np.array([[0, 2], [0, 0]]), np.zeros((1, 1))):
        with pytest.raises(HarnessError, match="upper-triangular adjacency"):
            cell_depth_nb101(bad)


# --------------------------------------------------------------------------- the search loop and the report


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_train=64, n_test=8)
    return root


def _loop_config(root: Path, algorithm: str, epochs: int = 2, **search_settings: object) -> SearchConfig:
    return SearchConfig().with_overrides(
        space="nb1shot1-1", data={"root": str(root), "image_size": 8},
        network={"channels": 2, "cells_per_stage": 1, "bn_affine": True},
        search={"algorithm": algorithm, "seeds": [0], "epochs": epochs, "batch_size": 8, "unroll_steps": 2,
                "eigenvalue_iterations": 5, "weight_decay": 3e-4, **search_settings},
        device={"device": "cpu", "threads": 1})


def _search(cfg: SearchConfig, out: Path, stop: int | None = None) -> None:
    train, valid = load_images(cfg.ws_config(), torch.device("cpu"))
    search(cfg, 0, train, None if cfg.search.algorithm == "sotl-darts" else valid, out, stop_after_epoch=stop,
           dtype=torch.float64)


@pytest.fixture(scope="module")
def searched(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per algorithm, the folder of a whole 2-epoch search on nb1shot1-1 (with its config.json, as a run folder)."""
    root = tmp_path_factory.mktemp("nb1shot1-runs")
    out = {}
    for algorithm in ("darts-1", "sotl-darts"):
        cfg = _loop_config(data_root, algorithm)
        out[algorithm] = root / algorithm
        _search(cfg, out[algorithm])
        (out[algorithm] / "config.json").write_text(json.dumps(cfg.to_dict(), default=list))
    return out


@pytest.mark.parametrize("algorithm", ["darts-1", "sotl-darts"])
def test_a_killed_nb1shot1_search_resumes_bit_for_bit_and_logs_the_derived_configuration(
        data_root: Path, tmp_path: Path, searched: dict[str, Path], algorithm: str) -> None:
    cfg = _loop_config(data_root, algorithm)
    _search(cfg, tmp_path, stop=1)
    assert load_checkpoint(checkpoint_path(tmp_path, 0))["epoch"] == 1
    _search(cfg, tmp_path)
    assert_same_search_state(checkpoint_path(searched[algorithm], 0), checkpoint_path(tmp_path, 0))
    space = get_search_space("nb1shot1-1")
    bench = load_benchmark("nb1shot1-1")
    history = json.loads(log_path(tmp_path, 0).read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    alpha = load_checkpoint(checkpoint_path(tmp_path, 0))["alpha"]
    mask = torch.as_tensor(space.alpha_mask(cfg))
    assert (alpha[~mask] == 0).all()
    last = history[-1]
    assert np.array_equal(last["op_weights"], DERIVATION["softmax"](alpha, mask).numpy())
    assert {key: last[key] for key in space.describe(np.asarray(last["op_weights"]), bench)} == \
        space.describe(np.asarray(last["op_weights"]), bench)
    assert last["arch"].startswith("nb1shot1-1[") and isinstance(last["depth"], int)
    assert (last[NB1SHOT1_TRUTH_COLUMN] is None) == last["truth_missing"]
    assert np.isfinite(last["hessian_eigenvalue"]) and np.isfinite([last["arch_loss"], last["train_loss"]]).all()


def test_table_4_7_rows_and_the_report_renders_them(searched: dict[str, Path], tmp_path: Path) -> None:
    cfg = SearchConfig().with_overrides(space="nb1shot1-2", network={"bn_affine": True})
    table = thesis.table("4.7")

    def row(method: str, space: str) -> tuple[float, float]:
        ((mean, std),) = table[(table.method == method) & (table.search_space == space)][["mean", "std"]].to_numpy()
        return mean, std

    for algorithm, settings, method in (("darts-1", {}, "DARTS"), ("sotl-darts", {}, "SoTL-DARTS"),
                                        ("sotl-darts", {"unroll_steps": 10, "batch_size": 32}, "SoTL-DARTS (diff. hparams)")):
        ref = published(cfg.with_overrides(search={"algorithm": algorithm, **settings}))
        assert ref is not None and ref.source == "thesis Table 4.7" and ref.method == method
        assert (ref.mean, ref.std) == row(method, "NB101-2")
        assert "validation" in ref.conditions
    assert published(cfg.with_overrides(search={"algorithm": "darts-2"})) is None

    runs = load_runs([searched["darts-1"], searched["sotl-darts"]])
    final = final_epochs(runs, trajectories(runs))
    frame = summary(runs, final)
    assert frame.loc["darts-1", "published_mean"] == row("DARTS", "NB101-1")[0]
    assert frame.loc["sotl-darts", "published_method"] == "SoTL-DARTS"
    out = tmp_path / "report"
    assert main(["search", "report", str(searched["darts-1"]), str(searched["sotl-darts"]), "--out", str(out)]) == 0
    text = (out / "table.md").read_text()
    assert "thesis Table 4.7: DARTS" in text and "thesis Table 4.7: SoTL-DARTS" in text
    assert "validation accuracy" in text and "cifar10_valid_108" in text


def test_the_report_shows_a_missing_truth_as_a_dash_and_leaves_it_out_of_the_means(
        searched: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "darts-1"
    shutil.copytree(searched["darts-1"], folder)
    history = json.loads((folder / "search-seed0.json").read_text())
    history[-1] |= {NB1SHOT1_TRUTH_COLUMN: None, "truth_missing": True}
    (folder / "search-seed0.json").write_text(json.dumps(history))
    runs = load_runs([folder])
    final = final_epochs(runs, trajectories(runs))
    assert np.isnan(final[NB1SHOT1_TRUTH_COLUMN].iloc[0])
    assert np.isnan(summary(runs, final).loc["darts-1", f"{NB1SHOT1_TRUTH_COLUMN}_mean"])
    out = tmp_path / "report"
    assert main(["search", "report", str(folder), "--out", str(out)]) == 0
    text = (out / "table.md").read_text()
    assert "Truth missing for 1 of 1 seeds" in text and "darts-1 seed 0" in text
    gaps = sum(entry[NB1SHOT1_TRUTH_COLUMN] is None for entry in history)
    assert f"no truth, per search: darts-1 seed 0: {gaps} of {len(history)}" in text
    history[-1][NB1SHOT1_TRUTH_COLUMN] = None
    history[-1]["truth_missing"] = False  # None without truth_missing is refused
    (folder / "search-seed0.json").write_text(json.dumps(history))
    with pytest.raises(HarnessError, match=NB1SHOT1_TRUTH_COLUMN):
        load_runs([folder])


def test_sotl_darts_and_its_diff_hparams_folder_are_two_rows_named_by_folder_each_beside_its_own_table_4_7_row(
        searched: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    variant = shutil.copytree(searched["sotl-darts"], tmp_path / "sotl-darts.diff-hparams")
    config = json.loads((variant / "config.json").read_text())
    config["search"] |= {"unroll_steps": 10, "batch_size": 32}
    (variant / "config.json").write_text(json.dumps(config))
    runs = load_runs([searched["darts-1"], searched["sotl-darts"], variant])
    assert [run.label for run in runs] == ["darts-1", f"sotl-darts ({searched['sotl-darts'].name})",
                                           "sotl-darts (sotl-darts.diff-hparams)"]
    frame = summary(runs, final_epochs(runs, trajectories(runs)))
    assert frame["published_method"].tolist() == ["DARTS", "SoTL-DARTS", "SoTL-DARTS (diff. hparams)"]
    assert frame.loc["sotl-darts (sotl-darts.diff-hparams)", "n_seeds"] == 1
