"""The diagnostics of a differentiable search: cell depths on hand-checked NB201 cells and DARTS
genotypes, the power-iteration Hessian eigenvalue against the exact eigenvalues of the explicit
float64 Hessian, and the headless trajectory plot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.errors import HarnessError
from harness.plots import plot_search_trajectories
from harness.search.diagnostics import cell_depth_darts, cell_depth_nb201
from harness.spaces.darts import parse_genotype

CONV = "nor_conv_3x3"


# edges in order (0->1), (0->2), (1->2), (0->3), (1->3), (2->3)
@pytest.mark.parametrize("ops, depth", [
    ((CONV,) * 6, 3),                                                              # 0->1->2->3
    (("none", "none", "none", CONV, "none", "none"), 1),                          # only 0->3
    (("none",) * 6, 0),                                                            # output never reached
    ((CONV, "none", "none", "none", CONV, "none"), 2),                            # 0->1->3
    (("skip_connect", "none", "avg_pool_3x3", "none", "none", "nor_conv_1x1"), 3),  # skip and pool count 1 each
    ((CONV, CONV, CONV, CONV, "none", "none"), 1),                                # 0->1->2 ends before the output
    (("none", "none", CONV, CONV, CONV, CONV), 1),                                # nodes 1, 2 unreached: 1->2->3 starts nowhere
    ((CONV, "none", "none", "none", "none", CONV), 0),                            # 0->1 and 2->3 do not meet
])
def test_nb201_depth_is_the_longest_path_from_input_to_output_over_edges_that_are_not_none(ops, depth) -> None:
    assert cell_depth_nb201(ops) == depth


def test_nb201_depth_reads_arch_strings_and_refuses_bad_cells() -> None:
    assert cell_depth_nb201("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|") == 3
    with pytest.raises(HarnessError, match="6 ops"):
        cell_depth_nb201((CONV,) * 5)
    with pytest.raises(HarnessError, match="unknown NB201 op 'conv_5x5'"):
        cell_depth_nb201((CONV,) * 5 + ("conv_5x5",))
    with pytest.raises(HarnessError, match="not an NB201 arch string"):
        cell_depth_nb201("nor_conv_3x3")


def test_darts_depth_counts_the_connection_into_the_output() -> None:
    chain = [("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 2), ("max_pool_3x3", 0),
             ("dil_conv_3x3", 3), ("sep_conv_5x5", 1), ("skip_connect", 4), ("avg_pool_3x3", 0)]
    assert cell_depth_darts(chain) == 5  # input -> 2 -> 3 -> 4 -> 5 -> output
    from_inputs = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    assert cell_depth_darts(from_inputs) == 2  # input -> k -> output for every k
    # DARTS V2 (Liu et al. 2019): the longest path is input -> 2 -> 5 -> output in both cells
    v2 = parse_genotype(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    assert cell_depth_darts(v2.normal) == 3
    assert cell_depth_darts(v2.reduce) == 3  # 0 -> 2 -> 3 (or 4, 5) -> output


@pytest.mark.parametrize("cell, message", [
    ([("sep_conv_3x3", 0)] * 7, "8 \\(op, input\\) pairs"),
    ([("sep_conv_3x3", 0)] * 7 + [("none", 1)], "unknown op 'none'"),
    ([("sep_conv_3x3", 0), ("sep_conv_3x3", 2)] + [("sep_conv_3x3", 0)] * 6, "earlier node 0..1"),
    ([("sep_conv_3x3", 0), "sep_conv_3x3"] + [("sep_conv_3x3", 0)] * 6, "an \\(op, input\\) pair"),
])
def test_darts_depth_refuses_bad_cells(cell, message) -> None:
    with pytest.raises(HarnessError, match=message):
        cell_depth_darts(cell)


def test_the_depths_import_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from harness.search.diagnostics import cell_depth_nb201\n"
            "assert cell_depth_nb201(('nor_conv_3x3',) * 6) == 3")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------
# the dominant Hessian eigenvalue
# ------------------------------------------------------------------------------------------------


def _largest_magnitude(eigenvalues) -> float:
    return float(eigenvalues[eigenvalues.abs().argmax()])


@pytest.mark.parametrize("spectrum", [(4.0, -1.5, 0.7, 0.1), (-5.0, 2.0, 1.0, 0.5)])
def test_power_iteration_finds_the_largest_magnitude_eigenvalue_of_a_quadratic(spectrum) -> None:
    torch = pytest.importorskip("torch")
    from harness.search.diagnostics import dominant_hessian_eigenvalue

    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    a_matrix = q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T
    b = torch.randn(4, generator=g, dtype=torch.float64)

    def quadratic(alpha):  # alpha [2, 2]: the function takes alpha of any shape
        x = alpha.reshape(4)
        return 0.5 * x @ a_matrix @ x + b @ x

    alpha = torch.randn(2, 2, generator=g, dtype=torch.float64)
    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(quadratic, alpha).reshape(4, 4))
    assert _largest_magnitude(exact) == pytest.approx(spectrum[0], rel=1e-12)
    value, used = dominant_hessian_eigenvalue(quadratic, alpha, iterations=500, generator=torch.Generator().manual_seed(1), tol=1e-12)
    assert value == pytest.approx(spectrum[0], rel=1e-9)
    assert 2 <= used < 500


def _nb201_state():
    torch = pytest.importorskip("torch")
    from harness.search.config import SearchConfig
    from harness.search.loop import init_state

    cfg = SearchConfig().with_overrides(network={"channels": 2, "cells_per_stage": 1}, device={"device": "cpu"})
    state = init_state(cfg, seed=3, device=torch.device("cpu"), dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        state.alpha.copy_(torch.randn(6, 5, generator=g, dtype=torch.float64))
    batch = (torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g))
    return state, batch


def test_power_iteration_matches_the_exact_hessian_of_a_mixed_op_network_in_alpha() -> None:
    torch = pytest.importorskip("torch")
    from harness.search.algorithms import loss
    from harness.search.diagnostics import dominant_hessian_eigenvalue

    torch.set_num_threads(1)
    state, batch = _nb201_state()

    def loss_fn(alpha):
        return loss(state.net, alpha, batch)

    hessian = torch.autograd.functional.hessian(loss_fn, state.alpha.detach()).reshape(30, 30)
    assert torch.allclose(hessian, hessian.T, atol=1e-12)
    exact = torch.linalg.eigvalsh(hessian)
    largest = _largest_magnitude(exact)
    second = sorted(exact.abs().tolist())[-2]
    assert second < 0.95 * abs(largest)  # a clear gap, or power iteration would need far more steps

    alpha_before = state.alpha.detach().clone()
    value, used = dominant_hessian_eigenvalue(loss_fn, state.alpha, iterations=2000, generator=torch.Generator().manual_seed(0), tol=1e-12)
    assert value == pytest.approx(largest, rel=1e-8)
    assert used < 2000
    assert torch.equal(state.alpha.detach(), alpha_before) and state.alpha.grad is None  # alpha untouched


def test_the_start_vector_comes_from_the_generator_only() -> None:
    torch = pytest.importorskip("torch")
    from harness.search.algorithms import loss
    from harness.search.diagnostics import dominant_hessian_eigenvalue

    torch.set_num_threads(1)
    state, batch = _nb201_state()

    def run(seed: int) -> tuple[float, int]:
        return dominant_hessian_eigenvalue(lambda a: loss(state.net, a, batch), state.alpha, iterations=5,
                                           generator=torch.Generator().manual_seed(seed), tol=0.0)

    global_state = torch.random.get_rng_state()
    first, again, other = run(0), run(0), run(1)
    assert first == again  # same generator seed: the same start vector, the same 5 iterates
    assert first[1] == 5 and first != other  # tol = 0 runs every iteration; another start, other iterates
    assert torch.equal(torch.random.get_rng_state(), global_state)  # the global RNG is neither read nor reseeded


def test_eigenvalue_edge_cases_and_bad_input() -> None:
    torch = pytest.importorskip("torch")
    from harness.search.diagnostics import dominant_hessian_eigenvalue

    alpha = torch.ones(3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    assert dominant_hessian_eigenvalue(lambda a: (2 * a).sum(), alpha, generator=gen) == (0.0, 0)  # linear: H = 0
    with pytest.raises(HarnessError, match="does not depend on alpha"):
        dominant_hessian_eigenvalue(lambda a: torch.zeros((), dtype=torch.float64, requires_grad=True), alpha, generator=gen)
    with pytest.raises(HarnessError, match="scalar"):
        dominant_hessian_eigenvalue(lambda a: a**2, alpha, generator=gen)
    with pytest.raises(HarnessError, match="iterations >= 1"):
        dominant_hessian_eigenvalue(lambda a: (a**2).sum(), alpha, iterations=0, generator=gen)
    with pytest.raises(HarnessError, match="tolerance"):
        dominant_hessian_eigenvalue(lambda a: (a**2).sum(), alpha, generator=gen, tol=-1.0)
    with pytest.raises(HarnessError, match="floating-point"):
        dominant_hessian_eigenvalue(lambda a: (a**2).sum(), torch.ones(3, dtype=torch.int64), generator=gen)
    with pytest.raises(HarnessError, match="torch.Generator"):
        dominant_hessian_eigenvalue(lambda a: (a**2).sum(), alpha, generator=0)


# ------------------------------------------------------------------------------------------------
# the trajectory plot
# ------------------------------------------------------------------------------------------------


def _history(skips: list[int], accuracies: list[float], eigenvalues: list[float | None]) -> list[dict]:
    return [{"epoch": e + 1, "arch": "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|none~2|",
             "arch_index": 1462, "n_skip": s, "n_parameter_free": 6, "cifar10_test_200": acc, "cifar10_test_12": acc - 30,
             "arch_loss": 2.3 - 0.1 * e, "train_loss": 2.2 - 0.1 * e, "depth": 3 - min(s, 2), "hessian_eigenvalue": ev,
             "op_weights": [[0.2] * 5] * 6, "seconds": 61.5}
            for e, (s, acc, ev) in enumerate(zip(skips, accuracies, eigenvalues))]


def test_plot_search_trajectories_writes_png_and_pdf(tmp_path) -> None:
    histories = {
        "darts-1 seed 0": _history([1, 2, 4, 6], [89.1, 85.0, 70.2, 54.3], [0.05, 0.11, 0.2, 0.35]),
        "sotl-darts seed 0": _history([0, 1, 1, 1], [91.2, 93.1, 93.4, 93.4], [0.04, None, 0.05, 0.06]),
    }
    paths = plot_search_trajectories(histories, tmp_path / "trajectories")
    assert [p.name for p in paths] == ["trajectories.png", "trajectories.pdf"]
    assert paths[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and paths[1].read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trajectories.pdf", "trajectories.png"]  # no temp file left


def test_plot_search_trajectories_refuses_empty_or_incomplete_histories(tmp_path) -> None:
    with pytest.raises(HarnessError, match="no search histories"):
        plot_search_trajectories({}, tmp_path / "x")
    with pytest.raises(HarnessError, match="has no epochs"):
        plot_search_trajectories({"darts-1 seed 0": []}, tmp_path / "x")
    with pytest.raises(HarnessError, match="no cifar100_test_12"):
        plot_search_trajectories({"darts-1 seed 0": _history([1], [90.0], [0.1])}, tmp_path / "x", truth_column="cifar100_test_12")
    assert not list(tmp_path.iterdir())
