"""Rank agreement between an estimator's scores and the ground truth, for many rows at once.

Every function takes ``score`` shaped ``[..., N]`` (e.g. ``[epochs, archs]``: one row per epoch) and
``truth`` shaped ``[N]`` (shared by every row) or ``[..., N]``, and returns one value per row. The
truth is ranked once with numpy; each score row then gets one compiled pass
(:mod:`harness._rank_kernels`: a stable O(N) distribution sort and an O(N log N) Kendall count),
which releases the GIL so that callers can rank several blocks in threads. A score passed as the
transposed view of an ``[archs, epochs]`` array is read in place, without a copy.

Orientation
    ``higher_is_better`` is the estimator's declared direction (required, no default). A score that is
    better when lower is negated before ranking, so a good estimator always has a positive
    correlation. ``abs()`` is never taken. The truth is "higher is better" unless
    ``truth_higher_is_better=False`` (e.g. an error rate).

Ties
    Spearman's rho is Pearson's correlation of *average* ranks (scipy's default). Kendall's tau is
    tau-b, which corrects for ties in either variable. Top-k: when several archs tie at the k-th best
    score, each of them counts with weight (free slots) / (size of the tie), the expected value under a
    uniformly random tie-break; precision@k applies the same rule to the true top-k.

NaN and constant rows
    ``nan="raise"`` (default) raises :class:`HarnessError` naming how many values are NaN; nothing is
    dropped silently. ``nan="drop"`` drops every arch whose score is NaN in *any* row or whose truth is
    NaN, so all rows use the same archs (``n_archs`` in :func:`rank_metrics` reports how many). A row
    whose scores (or truth) are all equal has no rank correlation: ``constant="raise"`` (default)
    raises; ``constant="nan"`` returns NaN for that row.

Formulas
    Spearman (1904); Kendall (1945) tau-b; sparse Kendall tau (NASLib, White et al. 2021: tau-b after
    rounding the truth to ``decimals`` places, so near-ties in accuracy do not count); top-k mean true
    accuracy and precision@k as in NAS-Bench-Suite-Zero (Krishnakumar et al. 2022).
"""

from __future__ import annotations

import warnings

from collections.abc import Sequence
from typing import Literal

import numpy as np

from harness.errors import HarnessError, choices
from harness.rng import is_int, make_rng

NanPolicy = Literal["raise", "drop"]
ConstantPolicy = Literal["raise", "nan"]
CORRELATIONS = ("spearman", "kendall", "sparse_kendall")  # rank correlations, in [-1, 1]; 1 = the truth's own ranking
METRICS = (*CORRELATIONS, "top_k", "precision_at_k")


# --------------------------------------------------------------------------------------------- input


def _prepare(
    score: np.ndarray, truth: np.ndarray, truth_higher_is_better: bool, nan: NanPolicy
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Score [R, N] (a view where possible), oriented truth [Tr, N] and the leading shape.

    Row r of the score uses truth row ``r % Tr``: a truth shaped like the trailing axes of the score
    (``[N]``, or ``[B, N]`` for a score ``[E, B, N]``) is ranked once, not once per score row. The
    score is oriented later, inside the compiled pass.
    """
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.ndim == 0 or t.ndim == 0:
        raise HarnessError("score and truth must have an architecture axis (the last axis)")
    if s.shape[-1] != t.shape[-1]:
        raise HarnessError(f"score has {s.shape[-1]} archs on its last axis but truth has {t.shape[-1]}")
    lead = s.shape[:-1]
    if t.ndim > s.ndim or (t.ndim > 1 and s.shape[s.ndim - t.ndim:] != t.shape):
        try:
            t = np.broadcast_to(t, s.shape)
        except ValueError:
            raise HarnessError(f"truth shape {t.shape} does not broadcast to score shape {s.shape}") from None
    n = s.shape[-1]
    s2 = s.reshape(-1, n)
    t2 = t.reshape(-1, n)
    bad_s = np.isnan(s2).any(axis=0)
    bad_t = np.isnan(t2).any(axis=0)
    bad = bad_s | bad_t
    keep = np.flatnonzero(~bad)
    if bad.any():
        if nan != "drop":
            if nan != "raise":
                raise choices("nan policy", nan, ["raise", "drop"])
            raise HarnessError(
                f"{int(np.isnan(s2).sum())} NaN score value(s) in {int(bad_s.sum())} arch(s) and "
                f"{int(bad_t.sum())} arch(s) with NaN truth{_nan_rows(s2)}; pass nan='drop' to drop those "
                "archs explicitly"
            )
        s2 = s2[:, keep]
        t2 = t2[:, keep]
    if s2.shape[-1] < 2:
        dropped = f" after dropping the {int(bad.sum())} of {n} with a NaN score or truth{_nan_rows(s.reshape(-1, n))}" if bad.any() else ""
        raise HarnessError(f"rank agreement needs at least 2 archs, got {s2.shape[-1]}{dropped}")
    # x + 0.0 and 0.0 - x both turn -0.0 into 0.0, so that zeros tie
    t2 = t2 + 0.0 if truth_higher_is_better else 0.0 - t2
    return s2, t2, lead


def _nan_rows(scores: np.ndarray) -> str:
    """Where the NaN scores are, when they fill whole rows (score rows are usually epochs): a split
    evaluated only at the last epoch, say, is NaN in every row but the last."""
    rows = np.flatnonzero(np.isnan(scores).all(axis=1))
    if len(rows) == 0 or len(scores) == 1:
        return ""
    shown = f"{rows[0]}..{rows[-1]}" if len(rows) > 3 and rows[-1] - rows[0] == len(rows) - 1 else ", ".join(map(str, rows[:10]))
    return f" (score rows {shown} of 0..{len(scores) - 1} are NaN for every arch: no values there)"


# ------------------------------------------------------------------------------------------ truth


def _tie_runs(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average ranks (1-based), dense ranks (0-based, int32) and tied pairs per row of a row-sorted array.

    All three come from the runs of equal values: a run of length L starting at position s gives its
    members the average rank s + (L + 1) / 2 and adds L (L - 1) / 2 tied pairs to its row.
    """
    rows, n = sorted_rows.shape
    new_run = np.ones(sorted_rows.shape, dtype=bool)
    np.not_equal(sorted_rows[:, 1:], sorted_rows[:, :-1], out=new_run[:, 1:])
    flat = new_run.ravel()  # every row starts a run
    starts = np.flatnonzero(flat)
    lengths = np.diff(np.append(starts, flat.size))
    run = (np.cumsum(flat) - 1).reshape(rows, n)  # run number of each element, counted over all rows
    avg_rank = (starts % n + (lengths + 1) / 2.0)[run]
    dense = (run - run[:, :1]).astype(np.int32)
    tied_pairs = np.bincount(starts // n, weights=lengths * (lengths - 1) / 2.0, minlength=rows)
    return avg_rank, dense, tied_pairs


def _top_k_weights(t: np.ndarray, k: int) -> np.ndarray:
    """Per row of a row-sorted array: 1 above the k-th largest value, (free slots) / (size of the tie) on it, else 0."""
    n = t.shape[1]
    kth = t[:, n - k][:, None]
    above = (t > kth).sum(axis=1, keepdims=True)
    tied = (t == kth).sum(axis=1, keepdims=True)
    return np.where(t > kth, 1.0, np.where(t == kth, (k - above) / tied, 0.0))


def _kendall_truths(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the compiled Kendall pass, from the truth variants' dense ranks [V, T, N] (non-decreasing
    along N): the zero-bit count per bit level [V, T, bits] and their wavelet sums [V, T]."""
    from harness import _rank_kernels as kernels

    n_bits = max(1, int(dense.max(initial=0)).bit_length())
    bits = np.arange(n_bits, dtype=np.int32)
    zeros = (((dense[..., None] >> bits) & 1) == 0).sum(axis=2, dtype=np.int64)
    sorted_sum = np.stack([kernels.wavelet_sums(d, z) for d, z in zip(dense, zeros)])
    return zeros, sorted_sum


# ---------------------------------------------------------------------------------- the metrics


def rank_metrics(
    score: np.ndarray,
    truth: np.ndarray,
    *,
    higher_is_better: bool,
    k: int = 10,
    metrics: Sequence[str] = METRICS,
    sparse_decimals: int = 1,
    truth_higher_is_better: bool = True,
    nan: NanPolicy = "raise",
    constant: ConstantPolicy = "raise",
) -> dict[str, np.ndarray]:
    """Several rank metrics at once (sharing one sort per row); each value shaped like ``score.shape[:-1]``.

    Keys: the requested ``metrics`` plus ``n_archs`` (archs used after the NaN policy). The rows are
    computed by :func:`harness._rank_kernels.rank_rows` (compiled, releases the GIL).
    """
    from harness import _rank_kernels as kernels

    for m in metrics:
        if m not in METRICS:
            raise choices("rank metric", m, METRICS)
    if constant not in ("raise", "nan"):
        raise choices("constant policy", constant, ["raise", "nan"])
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise HarnessError(f"higher_is_better must be True or False, got {higher_is_better!r}")
    s, t, lead = _prepare(score, truth, truth_higher_is_better, nan)
    rows, n = s.shape
    top = "top_k" in metrics or "precision_at_k" in metrics
    if top and not 1 <= k <= n:
        raise HarnessError(f"top-k needs 1 <= k <= number of archs ({n}), got k={k}")
    correlation = {"spearman", "kendall", "sparse_kendall"} & set(metrics)
    y_order = np.argsort(t, axis=1, kind="stable")
    t_sorted = np.take_along_axis(t, y_order, axis=1)
    if correlation and constant == "raise" and (t_sorted[:, 0] == t_sorted[:, -1]).any():
        raise HarnessError("the truth is constant over all archs: rank correlation is undefined")
    avg_rank, dense_truth, tied_truth = _tie_runs(t_sorted)
    variants = []  # (dense ranks, tied pairs) of each truth Kendall is taken against
    if "kendall" in metrics:
        variants.append((dense_truth, tied_truth))
    if "sparse_kendall" in metrics:
        rounded = np.round(t_sorted, sparse_decimals) + 0.0  # rounding keeps the order
        if constant == "raise" and (rounded[:, 0] == rounded[:, -1]).any():
            raise HarnessError(f"the truth rounded to {sparse_decimals} decimals is constant: sparse Kendall is undefined")
        variants.append(_tie_runs(rounded)[1:])
    if variants:
        dense = np.stack([d for d, _ in variants])
        tied = np.stack([p for _, p in variants])
        zeros, sorted_sum = _kendall_truths(dense)
    else:
        dense, zeros, sorted_sum, tied = (np.zeros((0, 1, 1), np.int32), np.zeros((0, 1, 1), np.int64),
                                          np.zeros((0, 1), np.int64), np.zeros((0, 1)))
    truth_values = t_sorted if truth_higher_is_better else -t_sorted  # top-k reports the truth as given
    top_weights = _top_k_weights(t_sorted, k) if top else np.zeros_like(t_sorted)
    transposed = not s.flags.c_contiguous and s.T.flags.c_contiguous  # e.g. values[archs, epochs].T
    array = s.T if transposed else np.ascontiguousarray(s)
    out = np.empty((4 + len(variants), rows))
    kernels.rank_rows(array, transposed, 1.0 if higher_is_better else -1.0, y_order, avg_rank - (n + 1) / 2.0,
                      truth_values, top_weights, dense, zeros, sorted_sum, tied, k if top else 0, out)
    constant_rows = out[3] > 0
    if correlation and constant == "raise" and constant_rows.any():
        row = int(np.flatnonzero(constant_rows)[0])
        raise HarnessError(
            f"scores are constant over all {n} archs in row {row}: rank correlation is undefined "
            "(pass constant='nan' to record NaN for such rows)"
        )
    columns = {"spearman": out[0], "top_k": out[1], "precision_at_k": out[2]}
    for i, name in enumerate(m for m in ("kendall", "sparse_kendall") if m in metrics):
        columns[name] = out[4 + i]
    result = {name: np.asarray(columns[name], dtype=np.float64).reshape(lead) for name in metrics}
    result["n_archs"] = np.full(lead, n, dtype=np.int64)
    return result


def spearman(score: np.ndarray, truth: np.ndarray, *, higher_is_better: bool, **kw: object) -> np.ndarray:
    """Spearman's rho of average ranks, per row (see module docstring for ties/NaN)."""
    return rank_metrics(score, truth, higher_is_better=higher_is_better, metrics=("spearman",), **kw)["spearman"]  # type: ignore[arg-type]


def kendall(score: np.ndarray, truth: np.ndarray, *, higher_is_better: bool, **kw: object) -> np.ndarray:
    """Kendall's tau-b, per row, in O(N log N)."""
    return rank_metrics(score, truth, higher_is_better=higher_is_better, metrics=("kendall",), **kw)["kendall"]  # type: ignore[arg-type]


def sparse_kendall(score: np.ndarray, truth: np.ndarray, *, higher_is_better: bool, decimals: int = 1, **kw: object) -> np.ndarray:
    """Kendall's tau-b against the truth rounded to ``decimals`` places (NASLib's sparse tau)."""
    return rank_metrics(
        score, truth, higher_is_better=higher_is_better, metrics=("sparse_kendall",), sparse_decimals=decimals, **kw  # type: ignore[arg-type]
    )["sparse_kendall"]


def top_k(score: np.ndarray, truth: np.ndarray, k: int, *, higher_is_better: bool, **kw: object) -> np.ndarray:
    """Mean truth of the k archs the estimator ranks best (ties at the cut weighted)."""
    return rank_metrics(score, truth, higher_is_better=higher_is_better, k=k, metrics=("top_k",), **kw)["top_k"]  # type: ignore[arg-type]


def precision_at_k(score: np.ndarray, truth: np.ndarray, k: int, *, higher_is_better: bool, **kw: object) -> np.ndarray:
    """|estimator's top-k ∩ true top-k| / k (ties at either cut weighted)."""
    return rank_metrics(score, truth, higher_is_better=higher_is_better, k=k, metrics=("precision_at_k",), **kw)["precision_at_k"]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- over repetitions


def _resampler(n_boot: int, seed: int | np.random.Generator) -> np.random.Generator:
    """The generator of ``n_boot`` bootstrap draws (:func:`harness.rng.make_rng` of ``seed``); raises
    unless ``n_boot`` is an integer >= 1 (no draws would give no CI)."""
    if not is_int(n_boot) or n_boot < 1:
        raise HarnessError(f"the number of bootstrap draws (n_boot, --bootstrap) must be an integer >= 1, got {n_boot!r}")
    return make_rng(seed, "the bootstrap seed (seed, --seed)")


def summarize(
    values: np.ndarray, axis: int = 0, ci: float | None = None, n_boot: int = 2000, seed: int | np.random.Generator = 0
) -> dict[str, np.ndarray]:
    """Mean and std (ddof=0, as np.std) over repetitions along ``axis``; optional bootstrap CI of the mean.

    ``ci=0.95`` adds ``ci_low``/``ci_high``: the percentile bootstrap of the mean, resampling the
    repetitions with replacement ``n_boot`` times with the given seed. NaN raises.
    """
    array = np.asarray(values, dtype=np.float64)
    if np.isnan(array).any():
        raise HarnessError(f"{int(np.isnan(array).sum())} NaN value(s) in the repetitions to summarize")
    array = np.moveaxis(array, axis, 0)
    reps = array.shape[0]
    if reps == 0:
        raise HarnessError("no repetitions to summarize")
    out = {"mean": array.mean(axis=0), "std": array.std(axis=0), "n": np.full(array.shape[1:], reps)}
    if ci is not None:
        if not 0.0 < ci < 1.0:
            raise HarnessError(f"ci must be in (0, 1), got {ci}")
        draws = _resampler(n_boot, seed).integers(0, reps, size=(n_boot, reps))
        means = array[draws].mean(axis=1)
        out["ci_low"] = np.quantile(means, (1 - ci) / 2, axis=0)
        out["ci_high"] = np.quantile(means, (1 + ci) / 2, axis=0)
    return out


def bootstrap_values(
    score: np.ndarray,
    truth: np.ndarray,
    metric: str,
    *,
    higher_is_better: bool,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    k: int = 10,
) -> np.ndarray:
    """``metric`` of scores ``[..., N]`` against one truth ``[N]`` on ``n_boot`` resamples of the archs
    (with replacement, seeded; every score row uses the same draws), shaped ``[..., n_boot]``; NaN
    where a resample is constant."""
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if t.ndim != 1 or s.shape[-1] != t.shape[0]:
        raise HarnessError(f"bootstrap takes scores [..., N] and one truth [N], got shapes {s.shape} and {t.shape}")
    draws = _resampler(n_boot, seed).integers(0, t.size, size=(n_boot, t.size))
    return rank_metrics(s[..., draws], t[draws], higher_is_better=higher_is_better, k=k, metrics=(metric,), constant="nan")[metric]


def bootstrap(
    score: np.ndarray,
    truth: np.ndarray,
    metric: str,
    *,
    higher_is_better: bool,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of ``metric`` for scores ``[..., N]`` against one truth ``[N]``.

    The archs are resampled with replacement ``n_boot`` times (seeded); every score row uses the
    same draws, so CIs of several estimators are comparable (:func:`bootstrap_values`). Returns
    (low, high) shaped ``[...]``. Draws in which a resample is constant are left out of the quantiles.
    """
    if not 0.0 < level < 1.0:
        raise HarnessError(f"level must be in (0, 1), got {level}")
    values = bootstrap_values(score, truth, metric, higher_is_better=higher_is_better, n_boot=n_boot, seed=seed, k=k)
    return percentile_interval(values, level)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of bootstrap ``values`` ``[..., n_boot]`` (NaN draws left out; NaN
    where every draw is NaN)."""
    with warnings.catch_warnings():  # an all-NaN slice (every resample constant) is NaN, said by the docstring
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanquantile(values, (1 - level) / 2, axis=-1)
        high = np.nanquantile(values, (1 + level) / 2, axis=-1)
    return low, high
