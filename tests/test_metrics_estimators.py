"""Estimator registry: hand-computed vectors for every estimator, directions, inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import HarnessError, NotAvailableError
from harness.metrics import curves, estimator_names, get_estimator

# name (with options) -> (inputs, expected output), all computed by hand
VECTORS: dict[str, tuple[list[np.ndarray], np.ndarray]] = {
    "SoTL": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 2.0, 3.0])),  # the thesis's: the last epoch's loss
    "SoTL-all": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 3.0, 6.0])),
    "SoTL-E": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 2.0, 3.0])),  # E = 1: the value itself
    "SoTL-E(E=2)": ([np.array([1.0, 2.0, 3.0, 4.0])], np.array([1.0, 3.0, 5.0, 7.0])),
    "SoTL-EMA": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 1.1, 1.29])),  # mu = 0.9, A1 = L1
    "SoTL-EMA(mu=0.5)": ([np.array([2.0, 4.0, 8.0])], np.array([2.0, 3.0, 5.5])),
    "SoTL-EMA(variant=ema-sum,mu=0.5)": ([np.array([2.0, 4.0, 8.0])], np.array([2.0, 5.0, 10.5])),
    "SoTL-EMA(variant=ema-sum)": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 2.01, 3.0399])),  # mu = 0.99
    "SoTL-EMA(variant=discounted,mu=0.5)": ([np.array([1.0, 2.0, 3.0])], np.array([1.0, 2.5, 4.25])),
    "SoVL": ([np.array([0.5, 0.25, 4.0])], np.array([0.5, 0.75, 4.75])),
    "SoVL-E": ([np.array([0.5, 0.25, 4.0])], np.array([0.5, 0.25, 4.0])),
    "SoVL-E(E=3)": ([np.array([1.0, 2.0, 3.0, 4.0])], np.array([1.0, 3.0, 6.0, 9.0])),
    "ValAcc": ([np.array([10.0, 50.0, 40.0])], np.array([10.0, 50.0, 40.0])),
    "ValLoss": ([np.array([2.0, 1.0, 1.5])], np.array([2.0, 1.0, 1.5])),
    "TrainLoss": ([np.array([2.0, 1.0, 0.5])], np.array([2.0, 1.0, 0.5])),
    "TrainAcc": ([np.array([20.0, 60.0, 90.0])], np.array([20.0, 60.0, 90.0])),
    "TLMini": ([np.array([2.3, 2.1, 2.2])], np.array([2.3, 2.1, 2.2])),
    "ValAccMini": ([np.array([0.1, 0.3, 0.2])], np.array([0.1, 0.3, 0.2])),
    # grads per step [steps, params]; running sums (1,-2), (4,-1), (-1,-1) -> L1 3, 5, 2
    "SoG": ([np.array([[1.0, -2.0], [3.0, 1.0], [-5.0, 0.0]])], np.array([3.0, 5.0, 2.0])),
    "SoGN": ([np.array([3.0, 4.0, 5.0])], np.array([3.0, 7.0, 12.0])),
    "SoGN-L2": ([np.array([3.0, 4.0, 5.0])], np.array([3.0, 7.0, 12.0])),
    "Params": ([np.array([1.5, 0.2])], np.array([1.5, 0.2])),
    "FLOPs": ([np.array([88.3, 20.1])], np.array([88.3, 20.1])),
}
for _proxy in ("epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "plain", "snip", "synflow", "zen"):
    VECTORS[_proxy] = ([np.array([-1.0, 3.5])], np.array([-1.0, 3.5]))

DIRECTIONS = {
    "SoTL": False, "SoTL-all": False, "SoTL-E": False, "SoTL-EMA": False, "SoVL": False, "SoVL-E": False, "ValAcc": True,
    "ValLoss": False, "TrainLoss": False, "TrainAcc": True, "TLMini": False, "ValAccMini": True,
    "SoG": True, "SoGN": True, "SoGN-L2": True, "Params": True, "FLOPs": True,
}


@pytest.mark.parametrize("spec", sorted(VECTORS))
def test_hand_computed_vector(spec: str) -> None:
    inputs, expected = VECTORS[spec]
    np.testing.assert_allclose(get_estimator(spec)(*inputs), expected, rtol=1e-12)


def test_every_registered_estimator_has_a_vector() -> None:
    covered = {get_estimator(spec).name for spec in VECTORS}
    assert covered == set(estimator_names())


@pytest.mark.parametrize("name,higher", sorted(DIRECTIONS.items()))
def test_declared_direction(name: str, higher: bool) -> None:
    est = get_estimator(name)
    assert est.higher_is_better is higher
    assert est.minimize is (not higher)


def test_curve_estimators_work_on_batches_along_the_last_axis() -> None:
    curves = np.arange(24, dtype=float).reshape(2, 3, 4)
    for spec in ("SoTL", "SoTL-all", "SoTL-E(E=2)", "SoTL-EMA", "SoTL-EMA(variant=discounted)"):
        est = get_estimator(spec)
        batch = est(curves)
        single = np.stack([est(row) for row in curves.reshape(-1, 4)]).reshape(2, 3, 4)
        np.testing.assert_allclose(batch, single)


def test_nan_in_a_curve_propagates_to_later_values_instead_of_being_imputed() -> None:
    out = get_estimator("SoTL-all")(np.array([1.0, np.nan, 3.0]))
    assert out[0] == 1.0 and np.isnan(out[1:]).all()
    assert np.isnan(get_estimator("SoTL")(np.array([1.0, np.nan, 3.0]))[1])
    ema = get_estimator("SoTL-EMA")(np.array([1.0, np.nan, 3.0]))
    assert np.isnan(ema[1:]).all()


def test_spec_strings_mappings_and_case() -> None:
    assert get_estimator("sotl-e(E=3)").options["E"] == 3
    assert get_estimator({"name": "SoTL-EMA", "variant": "discounted", "mu": 0.5}).label == "SoTL-EMA(mu=0.5,variant=discounted)"
    assert get_estimator("SoTL-E").label == "SoTL-E"


@pytest.mark.parametrize(
    "spec,fragment",
    [("SoTLX", "unknown estimator"), ("SoTL-E(F=2)", "no option 'F'"), ("SoTL-E(E=0)", "positive integer"),
     ("SoTL-EMA(variant=foo)", "estimator SoTL-EMA: unknown EMA variant"), ("SoTL-EMA(mu=1.5)", "mu must be in"),
     ("SoTL-E(E=x)", "positive integer, got 'x'"), ("SoTL-E(E=2.5)", "positive integer"),
     ({"name": "SoTL-EMA", "mu": "x"}, "mu must be in .*got 'x'")],
)
def test_bad_specs_raise_naming_the_fault(spec: str | dict, fragment: str) -> None:
    with pytest.raises(HarnessError, match=fragment):
        get_estimator(spec)(np.array([1.0, 2.0]))


def test_compute_from_a_signal_mapping_names_the_missing_signal() -> None:
    est = get_estimator("SoVL")
    np.testing.assert_allclose(est.compute({"val_loss": np.array([1.0, 2.0])}), [1.0, 3.0])
    with pytest.raises(NotAvailableError, match="val_loss"):
        est.compute({"train_loss": np.array([1.0, 2.0])})


def test_sotl_e_with_one_epoch_is_the_loss_bit_for_bit_so_ties_stay_ties() -> None:
    """Pitfall: a difference of cumulative sums rounds, so SoTL-E(E=1) would not equal TrainLoss and
    archs with equal losses but different histories would stop tying."""
    rng = np.random.default_rng(3)
    losses = rng.random((50, 200)) * 2.3
    losses[1] = losses[0]
    losses[1, :100] += 0.3  # a different history, the same losses from epoch 101 on
    np.testing.assert_array_equal(curves.window_sum(losses, 1), losses)
    window = curves.window_sum(losses, 5)
    np.testing.assert_array_equal(window[0, 110:], window[1, 110:])
    long = curves.window_sum(losses, curves.EXACT_WINDOW + 1)  # the cumulative-sum path
    want = np.array([[row[max(0, t - curves.EXACT_WINDOW):t + 1].sum() for t in range(200)] for row in losses[:3]])
    np.testing.assert_allclose(long[:3], want, rtol=1e-12)


@pytest.mark.parametrize("E", [3, curves.EXACT_WINDOW + 4])
def test_long_windows_keep_nan_and_inf_inside_the_windows_that_hold_them(E: int) -> None:
    """Pitfall: the difference of running totals C(t) - C(t-E) carried a NaN or inf into every later
    window (E > EXACT_WINDOW), where the direct sum confines it to the E windows that hold it."""
    losses = np.ones((4, 40))
    losses[0, 0] = np.nan
    losses[1, 5] = np.inf
    losses[2, 5], losses[2, 30] = np.inf, -np.inf
    losses[3, 5], losses[3, 8] = np.inf, -np.inf  # both in one window: inf + -inf = NaN
    with np.errstate(invalid="ignore"):
        want = np.array([[row[max(0, t - E + 1):t + 1].sum() for t in range(40)] for row in losses])
    got = curves.window_sum(losses, E)
    np.testing.assert_array_equal(got, want)  # NaN and +-inf where the direct sum has them, equal elsewhere
    assert np.isfinite(got[0, E:]).all() and np.isnan(got[0, :E]).all()


def test_the_thesis_sotl_is_the_last_epochs_sum_and_the_cumulative_one_is_named_so() -> None:
    """Pitfall pinned: the registry's "SoTL" once summed every epoch 1..t (Ru et al.'s SoTL), while the
    thesis (Sec. 3.1) reads "SoTL" as the sum over the last epoch, so a Fig. 4.4 curve labelled SoTL was
    another estimator than the thesis's. SoTL is now the last epoch's (= SoTL-E with E = 1, = TrainLoss),
    and the cumulative sum is SoTL-all."""
    losses = np.array([[3.0, 1.0, 2.0], [2.0, 2.5, 0.5]])
    np.testing.assert_array_equal(get_estimator("SoTL")(losses), get_estimator("SoTL-E")(losses))
    np.testing.assert_array_equal(get_estimator("SoTL")(losses), get_estimator("TrainLoss")(losses))
    np.testing.assert_array_equal(get_estimator("SoTL-all")(losses), np.cumsum(losses, axis=-1))
    assert not get_estimator("SoTL").reads_history and get_estimator("SoTL-all").reads_history
    assert "thesis" in get_estimator("SoTL").description and "1..t" in get_estimator("SoTL-all").description
