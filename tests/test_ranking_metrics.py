"""harness.ranking against scipy (random inputs, ties included) and small hand-checked cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from harness import _rank_kernels as kernels
from harness import ranking
from harness.errors import HarnessError


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(3, 80))
    rows = int(rng.integers(1, 6))
    score = rng.integers(0, 6, (rows, n)).astype(float) if rng.random() < 0.5 else rng.normal(size=(rows, n))
    truth = rng.integers(0, 5, n).astype(float) if rng.random() < 0.5 else rng.normal(size=n)
    return score, truth


def test_spearman_and_kendall_match_scipy_on_random_inputs_with_ties() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        score, truth = _random_case(rng)
        if np.ptp(truth) == 0 or (np.ptp(score, axis=1) == 0).any():
            continue
        out = ranking.rank_metrics(score, truth, higher_is_better=True, metrics=("spearman", "kendall", "sparse_kendall"),
                                   constant="nan")
        for i, row in enumerate(score):
            np.testing.assert_allclose(out["spearman"][i], stats.spearmanr(row, truth).statistic, atol=1e-12)
            np.testing.assert_allclose(out["kendall"][i], stats.kendalltau(row, truth).statistic, atol=1e-12)
            sparse = stats.kendalltau(row, np.round(truth, 1)).statistic
            np.testing.assert_allclose(out["sparse_kendall"][i], sparse, atol=1e-12, equal_nan=True)
        checked += 1
    assert checked > 100


def test_kendall_on_a_large_tied_input_matches_scipy() -> None:
    """The O(N log N) inversion count on thousands of archs, with heavy ties in both variables."""
    rng = np.random.default_rng(1)
    truth = np.round(rng.normal(80, 5, 5000), 1)
    score = np.round(truth[None, :] + rng.normal(0, 4, (3, 5000)), 0)
    got = ranking.kendall(score, truth, higher_is_better=True)
    want = [stats.kendalltau(row, truth).statistic for row in score]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_per_row_truth_shared_by_leading_rows_equals_row_by_row() -> None:
    rng = np.random.default_rng(2)
    score = rng.normal(size=(3, 4, 30))
    truth = rng.integers(0, 6, (4, 30)).astype(float)
    out = ranking.rank_metrics(score, truth, higher_is_better=True, k=5)
    for e in range(3):
        for b in range(4):
            one = ranking.rank_metrics(score[e, b], truth[b], higher_is_better=True, k=5)
            for name in ranking.METRICS:
                np.testing.assert_allclose(out[name][e, b], one[name])


def test_hand_checked_small_case() -> None:
    score = np.array([1.0, 2.0, 3.0, 4.0])
    truth = np.array([1.0, 3.0, 2.0, 4.0])
    out = ranking.rank_metrics(score, truth, higher_is_better=True, k=2)
    assert out["spearman"] == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert out["kendall"] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    assert out["top_k"] == pytest.approx((2.0 + 4.0) / 2)  # archs 3 and 4 by score
    assert out["precision_at_k"] == pytest.approx(0.5)  # true top 2 = archs 2 and 4


def test_orientation_uses_the_declared_direction_and_never_abs() -> None:
    truth = np.array([10.0, 20.0, 30.0, 40.0])
    loss_like = np.array([4.0, 3.0, 2.0, 1.0])  # lower is better and ranks perfectly
    assert ranking.spearman(loss_like, truth, higher_is_better=False) == pytest.approx(1.0)
    assert ranking.spearman(loss_like, truth, higher_is_better=True) == pytest.approx(-1.0)
    assert ranking.top_k(loss_like, truth, 1, higher_is_better=False) == pytest.approx(40.0)
    with pytest.raises(HarnessError, match="higher_is_better"):
        ranking.spearman(loss_like, truth, higher_is_better="min")  # type: ignore[arg-type]


def test_top_k_ties_at_the_cut_share_the_free_slots() -> None:
    score = np.array([1.0, 1.0, 1.0, 0.0])
    truth = np.array([3.0, 6.0, 9.0, 0.0])
    # three archs tie for the two slots: each counts 2/3 -> (3 + 6 + 9) * 2/3 / 2 = 6
    assert ranking.top_k(score, truth, 2, higher_is_better=True) == pytest.approx(6.0)
    # true top-2 = {6, 9}; each tied estimator pick has weight 2/3 -> (2/3 + 2/3) / 2
    assert ranking.precision_at_k(score, truth, 2, higher_is_better=True) == pytest.approx(2 / 3)


def test_nan_raises_unless_dropped_explicitly() -> None:
    score = np.array([[1.0, 2.0, np.nan, 4.0], [1.0, 2.0, 3.0, 4.0]])
    truth = np.array([1.0, 2.0, 3.0, 5.0])
    with pytest.raises(HarnessError, match="NaN"):
        ranking.spearman(score, truth, higher_is_better=True)
    out = ranking.rank_metrics(score, truth, higher_is_better=True, nan="drop", metrics=("spearman",))
    assert out["n_archs"].tolist() == [3, 3]  # the arch is dropped from every row
    np.testing.assert_allclose(out["spearman"], [1.0, 1.0])


def test_constant_scores_have_no_correlation() -> None:
    truth = np.array([1.0, 2.0, 3.0])
    with pytest.raises(HarnessError, match="constant"):
        ranking.spearman(np.ones(3), truth, higher_is_better=True)
    out = ranking.rank_metrics(np.ones((1, 3)), truth, higher_is_better=True, constant="nan", metrics=("spearman", "kendall"))
    assert np.isnan(out["spearman"]).all() and np.isnan(out["kendall"]).all()


def test_bad_shapes_and_k_raise() -> None:
    with pytest.raises(HarnessError, match="archs"):
        ranking.spearman(np.ones((2, 3)), np.ones(4), higher_is_better=True)
    with pytest.raises(HarnessError, match="k="):
        ranking.top_k(np.arange(3.0), np.arange(3.0), 4, higher_is_better=True)
    with pytest.raises(HarnessError, match="unknown rank metric"):
        ranking.rank_metrics(np.arange(3.0), np.arange(3.0), higher_is_better=True, metrics=("pearson",))


def test_summarize_mean_std_and_seeded_bootstrap_ci() -> None:
    values = np.array([[0.5, 0.1], [0.7, 0.3], [0.6, 0.2]])
    out = ranking.summarize(values, ci=0.9, seed=3)
    np.testing.assert_allclose(out["mean"], [0.6, 0.2])
    np.testing.assert_allclose(out["std"], np.std(values, axis=0))
    again = ranking.summarize(values, ci=0.9, seed=3)
    np.testing.assert_array_equal(out["ci_low"], again["ci_low"])
    assert (out["ci_low"] <= out["mean"]).all() and (out["mean"] <= out["ci_high"]).all()
    with pytest.raises(HarnessError, match="NaN"):
        ranking.summarize(np.array([[np.nan]]))


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(size=200)
    score = np.stack([truth + rng.normal(size=200), -truth + rng.normal(size=200)])
    low, high = ranking.bootstrap(score, truth, "spearman", higher_is_better=True, n_boot=300, seed=1)
    point = ranking.spearman(score, truth, higher_is_better=True)
    assert ((low <= point) & (point <= high)).all()
    low2, _ = ranking.bootstrap(score, truth, "spearman", higher_is_better=True, n_boot=300, seed=1)
    np.testing.assert_array_equal(low, low2)


def _brute_inversions(row: np.ndarray) -> int:
    return int(sum((row[i] > row[i + 1:]).sum() for i in range(len(row))))


def test_wavelet_inversion_count_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 7, 64, 65, 300):
        for seq in (rng.integers(0, max(1, n // 3), n), rng.integers(0, n + 5, n)):
            seq = seq.astype(np.int32)
            n_bits = max(1, int(seq.max()).bit_length())
            zeros = np.array([(((seq >> k) & 1) == 0).sum() for k in range(n_bits)])
            cur, nxt = np.empty_like(seq), np.empty_like(seq)
            count = kernels.wavelet_sum(seq, zeros, cur, nxt) - kernels.wavelet_sum(np.sort(seq), zeros, cur, nxt)
            assert count == _brute_inversions(seq)


def _stable_argsort(x: np.ndarray) -> np.ndarray:
    n = len(x)
    order = np.empty(n, dtype=np.int64)
    scratch = [np.empty(n + 2, dtype=np.int64) for _ in range(3)]
    kernels.argsort_stable(x, order, scratch[0], scratch[1], scratch[2], np.empty(2 * n + 2, dtype=np.int64))
    return order


@pytest.mark.parametrize("kind", ["normal", "heavy-tailed", "ties", "one-outlier", "exponential-spacing", "infinite", "huge-range"])
def test_distribution_sort_equals_numpy_stable_argsort_on_skewed_inputs(kind: str) -> None:
    """Pitfall: value-range buckets degrade on skewed data; the merge-sort fallback must keep it exact and stable."""
    rng = np.random.default_rng(7)
    n = 5000
    make = {
        "normal": lambda: rng.normal(size=n),
        "heavy-tailed": lambda: rng.lognormal(0, 4, n),
        "ties": lambda: np.round(rng.normal(85, 5, n), 1),
        "one-outlier": lambda: np.append(rng.random(n - 1), 1e12),
        "exponential-spacing": lambda: 2.0 ** rng.uniform(-1000, 1000, n).round(),
        "infinite": lambda: np.where(rng.random(n) < 0.01, np.inf, rng.normal(size=n)) * rng.choice([-1, 1], n),
        "huge-range": lambda: rng.choice([-1e308, 1e308, 0.0, -0.0, 5e-324], n),
    }
    x = make[kind]()
    np.testing.assert_array_equal(_stable_argsort(x), np.argsort(x, kind="stable"))


def test_large_rows_match_scipy_in_both_input_layouts() -> None:
    """Thousands of archs, scores passed as [epochs, archs] and as the transposed view of [archs, epochs]."""
    rng = np.random.default_rng(8)
    truth = np.round(rng.normal(80, 5, 4000), 2)
    by_arch = np.cumsum(rng.normal(size=(4000, 6)), axis=1) + truth[:, None] / 5
    by_arch[:, 2] = np.round(by_arch[:, 2])  # heavy ties in one row
    for score in (by_arch.T, np.ascontiguousarray(by_arch.T)):
        out = ranking.rank_metrics(score, truth, higher_is_better=False, metrics=("spearman", "kendall"))
        for row, rho, tau in zip(score, out["spearman"], out["kendall"]):
            assert rho == pytest.approx(stats.spearmanr(-row, truth).statistic, abs=1e-12)
            assert tau == pytest.approx(stats.kendalltau(-row, truth).statistic, abs=1e-12)


def test_kendall_tied_scores_are_not_counted_as_discordant_pairs() -> None:
    """Pitfall: a run of tied scores read in arbitrary order would add inversions among its truth values."""
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    score = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 2.0], [2.0, 2.0, 2.0, 0.0, 0.0, 1.0]])
    want = [stats.kendalltau(row, truth).statistic for row in score]
    np.testing.assert_allclose(ranking.kendall(score, truth, higher_is_better=True), want, atol=1e-12)


def test_kendall_with_one_truth_per_row_over_many_rows_matches_scipy() -> None:
    """Per-row truths give rows with different values: the count's varied-split path, 40 rows, ties in both."""
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 50, (40, 700)).astype(float)
    score = np.round(truth + rng.normal(0, 20, truth.shape), -1)
    got = ranking.kendall(score, truth, higher_is_better=True)
    want = [stats.kendalltau(s, t).statistic for s, t in zip(score, truth)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_spearman_of_identical_or_reversed_large_rankings_is_exactly_one_not_beyond() -> None:
    """Pitfall: the uncentred sums ``sum rx ry - N m^2`` cancel ~N^3/3 and gave rho = 1.0000000000048748
    in magnitude for N = 423,624; centred ranks summed in the same blocks give exactly +-1, ties included."""
    t = np.arange(423624.0)
    for truth in (t, np.floor(t / 7)):  # without and with ties
        assert ranking.spearman(truth, truth, higher_is_better=True) == 1.0
        assert ranking.spearman(-truth, truth, higher_is_better=True) == -1.0


def test_spearman_of_a_large_input_agrees_with_scipy_to_1e_12() -> None:
    """Pitfall: rounding every one of N additions drifts (each term k + 1/4 rounds down past 2^52);
    the old sums were off by ~1e-11 at this N."""
    rng = np.random.default_rng(5)
    truth = rng.random(423624)
    for score in (truth + 0.1 * rng.random(truth.size), np.round(truth * 100)):  # without and with ties
        got = ranking.spearman(score, truth, higher_is_better=True)
        assert abs(got - stats.spearmanr(score, truth).statistic) < 1e-12


@pytest.mark.parametrize("kw,fragment", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"n_boot": -3}, "n_boot"),
                                         ({"n_boot": 0}, "n_boot")])
def test_bootstrap_with_a_negative_seed_or_no_draws_raises_instead_of_nan_cis(kw: dict, fragment: str) -> None:
    """Pitfall: n_boot = 0 returned NaN CIs with a RuntimeWarning; a negative seed or draw count a numpy ValueError."""
    with pytest.raises(HarnessError, match=fragment):
        ranking.bootstrap(np.arange(5.0), np.arange(5.0), "spearman", higher_is_better=True, **kw)
    with pytest.raises(HarnessError, match=fragment):
        ranking.summarize(np.ones((3, 2)), ci=0.9, **kw)


def test_nan_errors_say_which_score_rows_are_empty_for_every_arch():
    """A split evaluated only at the last epoch is NaN in every earlier row; the error once said only
    '995 NaN score value(s)' or, with nan='drop', 'needs at least 2 archs, got 0'."""
    scores = np.full((200, 5), np.nan)
    scores[-1] = np.arange(5.0)
    with pytest.raises(HarnessError, match=r"score rows 0\.\.198 of 0\.\.199 are NaN for every arch"):
        ranking.rank_metrics(scores, np.arange(5.0), higher_is_better=True)
    with pytest.raises(HarnessError, match=r"got 0 after dropping the 5 of 5 .*score rows 0\.\.198"):
        ranking.rank_metrics(scores, np.arange(5.0), higher_is_better=True, nan="drop")


def test_spearman_stays_within_one_and_is_exactly_one_for_the_truth_with_heavy_ties():
    """Asymmetric ties once gave rho(-t, t) = -1.000000000000001 and a 40 % tie run gave
    rho(t, t) = 0.9999999999987 at NB101 size (the table's 'equals the truth' mark relies on 1.0)."""
    rng = np.random.default_rng(0)
    n = 423_624
    floor_ties = np.floor(rng.permutation(n) / 27.0)
    floor_ties[:5000] = 0.0
    one_big_run = np.round(rng.normal(size=n), 2)
    one_big_run[rng.random(n) < 0.4] = 0.5
    for truth in (floor_ties, one_big_run):
        assert ranking.spearman(truth, truth, higher_is_better=True) == 1.0
        assert -1.0 <= ranking.spearman(-truth, truth, higher_is_better=True) <= -1.0 + 1e-12


# ---------------------------------------------------------------- top-k and precision@k with ties


def test_precision_at_k_with_a_tie_in_the_truth_at_the_cut_weights_the_tied_archs():
    """Pitfall: the true top-k weight of archs tied at the cut was (free slots) / (tie size); counting
    each of them fully made precision@k exceed what any tie-break can give (even past 1).

    Rule (module docstring, Ties): archs tied at the k-th best value each count (free slots) / (tie
    size), the expected value under a uniformly random tie-break; precision@k applies it to both cuts.
    """
    truth = np.array([1.0, 2.0, 2.0, 3.0])
    # k = 2: the true top-2 holds arch 3 (value 3, weight 1) and one of archs 1, 2 (value 2: one free
    # slot, two tied: weight 1/2 each). The estimator (distinct scores) picks archs 2 and 3.
    # |picked ∩ true top-2| = 1 (arch 3) + 1/2 (arch 2) -> precision (1 + 1/2) / 2 = 0.75
    assert ranking.precision_at_k(np.array([1.0, 2.0, 3.0, 4.0]), truth, 2, higher_is_better=True) == pytest.approx(0.75)
    # the score equal to the truth ties the same way: arch 3 counts 1 * 1, archs 1 and 2 each 1/2 * 1/2
    # (independent tie-breaks of score and truth) -> (1 + 1/4 + 1/4) / 2 = 0.75
    assert ranking.precision_at_k(truth, truth, 2, higher_is_better=True) == pytest.approx(0.75)
    # three archs tie for both slots: each has true weight 2/3; the estimator picks two of them
    # -> (2/3 + 2/3) / 2 = 2/3 (counting the tie fully gave (1 + 1) / 2 = 1, as if no tie existed)
    tied3 = np.array([1.0, 2.0, 2.0, 2.0])
    assert ranking.precision_at_k(np.arange(4.0), tied3, 2, higher_is_better=True) == pytest.approx(2 / 3)
    # a tie in both at the cut: estimator weights 2/3 on archs 1..3, true weights 2/3 on them too
    # -> 3 * (2/3 * 2/3) / 2 = 2/3; never above 1
    assert ranking.precision_at_k(tied3, tied3, 2, higher_is_better=True) == pytest.approx(2 / 3)


def _top_sets(values: np.ndarray, k: int) -> np.ndarray:
    """[n!, n] indicators of the top-k of ``values`` (higher is better) under every tie-break: the
    tie-break is a priority permutation, so each of the n! is equally likely (uniformly random)."""
    n = len(values)
    out = []
    for priority in itertools.permutations(range(n)):
        order = sorted(range(n), key=lambda i: (-values[i], priority[i]))
        member = np.zeros(n)
        member[order[:k]] = 1.0
        out.append(member)
    return np.array(out)


def test_top_k_and_precision_at_k_equal_brute_force_averages_over_all_tie_breaks():
    """Random small cases with ties in the score and in the truth, both orientations: top-k and
    precision@k equal their means over every (score tie-break, truth tie-break) pair, enumerated."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(2, 7))
        k = int(rng.integers(1, n + 1))
        score = rng.integers(0, 3, n).astype(float)
        truth = rng.integers(0, 3, n).astype(float)
        higher, truth_higher = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        picked = _top_sets(score if higher else -score, k)  # the estimator's top-k, every tie-break
        best = _top_sets(truth if truth_higher else -truth, k)  # the true top-k, every tie-break
        want_top_k = (picked @ truth).mean() / k  # mean truth (as given) of the picked archs
        want_precision = (picked @ best.T).mean() / k  # every pair of tie-breaks, equally likely
        out = ranking.rank_metrics(score, truth, higher_is_better=higher, truth_higher_is_better=truth_higher, k=k,
                                   metrics=("top_k", "precision_at_k"))
        assert out["top_k"] == pytest.approx(want_top_k, abs=1e-12), (score, truth, k, higher, truth_higher)
        assert out["precision_at_k"] == pytest.approx(want_precision, abs=1e-12), (score, truth, k, higher, truth_higher)
        assert 0.0 <= out["precision_at_k"] <= 1.0


def test_top_k_of_a_loss_truth_reports_the_mean_loss_not_its_negation():
    """Pitfall: a loss truth is negated to rank it; top-k must report the loss as given (the mean loss of
    the estimator's top-k archs), not the negated values it was ranked by."""
    loss = np.array([0.5, 0.2, 0.9, 0.1, 0.7])
    score = np.array([1.0, 2.0, 3.0, 4.0, 0.0])  # higher is better: picks archs 3 and 2 at k = 2
    got = ranking.top_k(score, loss, 2, higher_is_better=True, truth_higher_is_better=False)
    assert got == pytest.approx((0.1 + 0.9) / 2)
    # a lower-is-better score (a loss estimator) picks the archs of the two lowest scores: 4 and 0
    got = ranking.top_k(score, loss, 2, higher_is_better=False, truth_higher_is_better=False)
    assert got == pytest.approx((0.7 + 0.5) / 2)


# ------------------------------------------------------------------------------ bootstrap levels


def _exact_quantile(values: np.ndarray, p: float) -> float:
    """Lower quantile inf{x : F(x) >= p} of the equally weighted ``values`` (p clipped to [0, 1])."""
    return float(np.quantile(values, min(max(p, 0.0), 1.0), method="inverted_cdf"))


def _dkw_slack(n_draws: int, fail: float = 1e-6) -> float:
    """Half-width in probability within which the quantiles of ``n_draws`` bootstrap draws lie.

    Dvoretzky-Kiefer-Wolfowitz (Massart's constant): sup |F_n - F| <= eps with probability
    >= 1 - 2 exp(-2 n eps^2); numpy's linear quantile interpolates between the order statistics
    j/n and (j + 1)/n around p, which adds at most 2/n. So a correct percentile bootstrap with any
    seed lies between the exact quantiles at p -+ slack, except with probability ``fail``.
    """
    return float(np.sqrt(np.log(2 / fail) / (2 * n_draws))) + 2.0 / n_draws


def test_summarize_ci_matches_the_exact_bootstrap_distribution_at_each_level():
    """Pitfall: a CI bound that ignores ``ci`` (e.g. the minimum of the draws) still brackets the mean.

    The exact percentile bootstrap of the mean of 5 repetitions: all 5^5 equally likely ordered
    resamples, enumerated; the seeded Monte-Carlo CI must lie within the DKW slack of its quantiles.
    """
    values = np.array([0.12, 0.35, 0.2, 0.81, 0.47])
    resamples = np.array(list(itertools.product(range(5), repeat=5)))
    exact = np.sort(values[resamples].mean(axis=1))
    n_boot = 100_000
    slack = _dkw_slack(n_boot)
    for ci in (0.5, 0.9, 0.95):
        out = ranking.summarize(values[:, None], ci=ci, n_boot=n_boot, seed=5)
        lo_p, hi_p = (1 - ci) / 2, (1 + ci) / 2
        assert _exact_quantile(exact, lo_p - slack) - 1e-12 <= out["ci_low"][0] <= _exact_quantile(exact, lo_p + slack) + 1e-12, ci
        assert _exact_quantile(exact, hi_p - slack) - 1e-12 <= out["ci_high"][0] <= _exact_quantile(exact, hi_p + slack) + 1e-12, ci


def test_bootstrap_ci_matches_the_exact_bootstrap_distribution_of_spearman():
    """The archs resampled with replacement: all 6^6 ordered resamples, enumerated, Spearman of each by
    scipy's average ranks; resamples constant in the score or the truth have no rho and are left out
    (as documented). The seeded CI must lie within the DKW slack of the exact quantiles."""
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    score = np.array([2.0, 1.0, 4.0, 3.0, 6.0, 5.0])
    resamples = np.array(list(itertools.product(range(6), repeat=6)))
    rx = stats.rankdata(score[resamples], axis=1)
    ry = stats.rankdata(truth[resamples], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    exact = np.sort(rho[np.isfinite(rho)])
    n_boot = 100_000
    slack = _dkw_slack(int(n_boot * 0.999))  # P(constant resample) = 6 / 6^6: at most 0.1 % of draws are left out
    for level in (0.5, 0.95):
        low, high = ranking.bootstrap(score, truth, "spearman", higher_is_better=True, n_boot=n_boot, level=level, seed=2)
        lo_p, hi_p = (1 - level) / 2, (1 + level) / 2
        assert _exact_quantile(exact, lo_p - slack) - 1e-12 <= low <= _exact_quantile(exact, lo_p + slack) + 1e-12, level
        assert _exact_quantile(exact, hi_p - slack) - 1e-12 <= high <= _exact_quantile(exact, hi_p + slack) + 1e-12, level


def test_a_50_percent_ci_lies_strictly_inside_the_95_percent_ci_from_the_same_draws():
    """Same seed, same draws: a lower level must give a strictly narrower interval at both ends."""
    rng = np.random.default_rng(9)
    truth = rng.normal(size=60)
    score = np.stack([truth + rng.normal(size=60), rng.normal(size=60)])
    low50, high50 = ranking.bootstrap(score, truth, "kendall", higher_is_better=True, n_boot=400, level=0.5, seed=3)
    low95, high95 = ranking.bootstrap(score, truth, "kendall", higher_is_better=True, n_boot=400, level=0.95, seed=3)
    assert ((low95 < low50) & (low50 < high50) & (high50 < high95)).all()
    reps = rng.normal(size=(12, 3))
    s50 = ranking.summarize(reps, ci=0.5, n_boot=400, seed=3)
    s95 = ranking.summarize(reps, ci=0.95, n_boot=400, seed=3)
    assert ((s95["ci_low"] < s50["ci_low"]) & (s50["ci_low"] < s50["ci_high"]) & (s50["ci_high"] < s95["ci_high"])).all()
