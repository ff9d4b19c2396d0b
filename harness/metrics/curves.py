"""Learning-curve estimators: pure functions over arrays ``[..., T]`` (T epochs or T steps).

Every function returns the estimator's value *at every point t = 1..T* of the curve, shaped like its
input, so that one call gives the whole correlation-vs-epoch trajectory: ``out[..., t-1]`` is what the
estimator would report after observing the first ``t`` points. NaN in an input propagates to every
value that depends on it (nothing is imputed).

Sources: Ru, Lyle, Schut, Fil, van der Wilk, Gal, "Speedy Performance Estimation for Neural
Architecture Search", NeurIPS 2021 (TSE / SoTL and its variants); the MSc thesis "Improving
weight-sharing NAS with a marginal likelihood estimator" (SoTL-E, SoVL, TLMini, SoG, SoGN).
"""

from __future__ import annotations

import numpy as np

from harness.errors import HarnessError, choices
from harness.rng import is_int

EMA_VARIANTS = ("ema", "ema-sum", "discounted")
EXACT_WINDOW = 16  # SoTL-E windows up to this many points are summed directly (see window_sum)
EMA_DEFAULT_MU = {"ema": 0.9, "ema-sum": 0.99, "discounted": 0.9}


def _as_curve(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] == 0:
        raise HarnessError(f"a curve needs a last axis of length >= 1, got shape {array.shape}")
    return array


def cumulative_sum(losses: np.ndarray) -> np.ndarray:
    """SoTL-all / SoVL: ``S(t) = sum_{i=1..t} L_i`` (Ru et al. 2021, Eq. 3 with E = t: their "SoTL")."""
    return np.cumsum(_as_curve(losses), axis=-1)


def last_epoch_sum(losses: np.ndarray) -> np.ndarray:
    """SoTL as the thesis defines it (Sec. 3.1: "SoTL" is the sum of the training losses over the last
    epoch unless stated otherwise): ``S(t) = L_t``, :func:`window_sum` with E = 1, where ``L_t`` is
    epoch t's training loss (a benchmark's per-epoch loss is the epoch's mean minibatch loss, which
    ranks archs exactly as the epoch's sum does)."""
    return window_sum(losses, 1)


def window_sum(losses: np.ndarray, E: int = 1) -> np.ndarray:
    """SoTL-E / SoVL-E: ``S_E(t) = sum_{i=max(1, t-E+1)..t} L_i``, the sum over the last ``E`` points.

    Ru et al. 2021 (TSE-E). E = 1 is the value at t, the thesis's default reading of "SoTL". Before
    E points exist (t < E) the window is the first t points.

    Windows up to ``EXACT_WINDOW`` points are summed directly, so that E = 1 returns the losses bit
    for bit and equal windows give equal sums (ties stay ties). Longer ones take the difference of
    two running totals of the finite values, ``C(t) - C(t-E)`` with ``C(t) = sum_{i<=t} L_i`` (O(T)
    for any E, rounding error ~1e-16 of the running total); a window holding a NaN or an infinity
    gets what the direct sum gives (NaN; +-inf; NaN for +inf and -inf together), found by the same
    difference of running counts of each non-finite value, so it reaches no other window.
    """
    if not is_int(E) or E < 1:
        raise HarnessError(f"window E must be a positive integer, got {E!r}")
    E = int(E)
    curve = _as_curve(losses)
    if E <= EXACT_WINDOW:
        total = curve.copy()
        for lag in range(1, min(E, curve.shape[-1])):
            total[..., lag:] += curve[..., :-lag]
        return total
    finite = np.isfinite(curve)
    total = _trailing(np.cumsum(np.where(finite, curve, 0.0), axis=-1), E)
    if not finite.all():
        for special, is_special in ((np.inf, np.isposinf), (-np.inf, np.isneginf), (np.nan, np.isnan)):
            inside = _trailing(np.cumsum(is_special(curve), axis=-1), E) > 0
            with np.errstate(invalid="ignore"):  # inf + -inf and nan + x are NaN, as in the direct sum
                total = np.where(inside, total + special, total)
    return total


def _trailing(running: np.ndarray, E: int) -> np.ndarray:
    """``running[..., t] - running[..., t-E]`` along the last axis, with ``running[..., t-E] = 0`` for t < E."""
    out = running.copy()
    out[..., E:] -= running[..., :-E]
    return out


def moving_average(losses: np.ndarray, variant: str = "ema", mu: float | None = None) -> np.ndarray:
    """SoTL-EMA in one of three variants used in the literature.

    * ``"ema"`` (default, mu = 0.9, as in the TSE authors' code): the EMA value
      ``A(1) = L_1``, ``A(t) = mu * A(t-1) + (1 - mu) * L_t``.
    * ``"ema-sum"`` (mu = 0.99, as in NASLib's ``SoTLE``-EMA predictor): the sum of the EMA series
      ``sum_{i<=t} A(i)`` with the same recursion.
    * ``"discounted"`` (mu = 0.9, Ru et al. 2021 Eq. 4, TSE-EMA): ``D(t) = sum_{i<=t} mu^(t-i) L_i``.
    """
    if variant not in EMA_VARIANTS:
        raise choices("EMA variant", variant, EMA_VARIANTS)
    if mu is None:
        mu = EMA_DEFAULT_MU[variant]
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.number)) or not 0.0 <= mu < 1.0:
        raise HarnessError(f"EMA mu must be in [0, 1) (a number; None for the variant's default), got {mu!r}")
    mu = float(mu)
    from scipy.signal import lfilter  # imported here: scipy.signal takes ~1.5 s to import, every CLI call would pay it

    curve = _as_curve(losses)
    if variant == "discounted":
        return lfilter([1.0], [1.0, -mu], curve, axis=-1)
    # A(t) = mu A(t-1) + (1-mu) L_t with A(0) := L_1, so that A(1) = L_1.
    initial = (mu * curve[..., :1]).astype(np.float64)
    ema, _ = lfilter([1.0 - mu], [1.0, -mu], curve, axis=-1, zi=initial)
    return ema if variant == "ema" else np.cumsum(ema, axis=-1)


def value_at(curve: np.ndarray) -> np.ndarray:
    """ValAcc, ValLoss, TrainLoss, TrainAcc, TLMini, ValAccMini: the value ``x_t`` itself."""
    return _as_curve(curve).copy()


def sum_of_gradients_l1(grads: np.ndarray) -> np.ndarray:
    """SoG: ``SoG(t) = || sum_{s<=t} g_s ||_1``, the L1 norm of the gradient summed over the trajectory.

    ``grads`` is ``[..., T, P]``: the gradient vector (P parameters) of every step. Thesis, Sec. 3.
    """
    array = np.asarray(grads, dtype=np.float64)
    if array.ndim < 2 or array.shape[-2] == 0:
        raise HarnessError(f"SoG needs per-step gradients shaped [..., steps, params], got shape {array.shape}")
    return np.abs(np.cumsum(array, axis=-2)).sum(axis=-1)


def sum_of_gradient_norms(grad_norms: np.ndarray) -> np.ndarray:
    """SoGN: ``SoGN(t) = sum_{s<=t} ||g_s||``, the running sum of each step's gradient norm: L1 as the
    thesis states (Sec. 4.2.4), or L2 (``SoGN-L2``; the thesis code's ``sogn`` sums global L2 norms)."""
    return cumulative_sum(grad_norms)
