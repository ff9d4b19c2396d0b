"""Rank agreement between an estimator's scores and the ground truth, vectorised over many rows.

Every function takes ``score`` shaped ``[..., N]`` (e.g. ``[epochs, archs]``: one row per epoch) and
``truth`` shaped ``[N]`` (shared by every row) or ``[..., N]``, and returns one value per row. All
rows are computed together with array operations: there is no Python loop over architectures or rows.

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

from collections.abc import Sequence
from functools import cached_property
from typing import Literal

import numpy as np

from harness.errors import HarnessError, choices

NanPolicy = Literal["raise", "drop"]
ConstantPolicy = Literal["raise", "nan"]
METRICS = ("spearman", "kendall", "sparse_kendall", "top_k", "precision_at_k")


# --------------------------------------------------------------------------------------------- input


def _prepare(
    score: np.ndarray, truth: np.ndarray, higher_is_better: bool, truth_higher_is_better: bool, nan: NanPolicy
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], np.ndarray]:
    """Oriented score [R, N], oriented truth [Tr, N], the leading shape, and the kept columns.

    Row r of the score uses truth row ``r % Tr``: a truth shaped like the trailing axes of the score
    (``[N]``, or ``[B, N]`` for a score ``[E, B, N]``) is ranked once, not once per score row.
    """
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise HarnessError(f"higher_is_better must be True or False, got {higher_is_better!r}")
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
                f"{int(bad_t.sum())} arch(s) with NaN truth; pass nan='drop' to drop those archs explicitly"
            )
        s2 = s2[:, keep]
        t2 = t2[:, keep]
    if s2.shape[-1] < 2:
        raise HarnessError(f"rank agreement needs at least 2 archs, got {s2.shape[-1]}")
    # x + 0.0 and 0.0 - x both turn -0.0 into 0.0, so that zeros tie
    s2 = s2 + 0.0 if higher_is_better else 0.0 - s2
    t2 = t2 + 0.0 if truth_higher_is_better else 0.0 - t2
    return s2, t2, lead, keep


# ------------------------------------------------------------------------------------ rank helpers


class _Sorted:
    """Per-row sort of a 2-D array [R, N] and its tie runs; the tie quantities are computed lazily."""

    def __init__(self, x: np.ndarray):
        self.shape = x.shape
        self.order = np.argsort(x, axis=1)
        self.values = np.take_along_axis(x, self.order, axis=1)
        self.new_run = np.ones(x.shape, dtype=bool)
        np.not_equal(self.values[:, 1:], self.values[:, :-1], out=self.new_run[:, 1:])
        self.constant = ~self.new_run[:, 1:].any(axis=1)
        self.tied = not self.new_run.all()

    @cached_property
    def run_start(self) -> np.ndarray:
        return np.maximum.accumulate(np.where(self.new_run, np.arange(self.shape[1]), 0), axis=1)

    @cached_property
    def sorted_avg_rank(self) -> np.ndarray:
        """Average rank (1-based) at each sorted position; ``arange + 1`` when nothing ties.

        With ties: each run of equal values gets ``start + (length - 1) / 2 + 1``, from the run starts
        of the flattened array (every row begins a run) and their lengths.
        """
        r, n = self.shape
        if not self.tied:
            return np.broadcast_to(np.arange(1.0, n + 1.0), (r, n))
        flat = self.new_run.ravel()
        starts = np.flatnonzero(flat)
        lengths = np.diff(np.append(starts, flat.size))
        run = np.cumsum(flat) - 1
        avg = (starts % n) + (lengths - 1) / 2.0 + 1.0
        return avg[run].reshape(r, n)

    @cached_property
    def dense_sorted(self) -> np.ndarray:
        return np.cumsum(self.new_run, axis=1) - 1

    @cached_property
    def tied_pairs(self) -> np.ndarray:
        """Pairs tied per row: sum over runs of t(t-1)/2 = sum over positions of (pos - run start)."""
        if not self.tied:
            return np.zeros(self.shape[0])
        return (np.arange(self.shape[1]) - self.run_start).sum(axis=1).astype(np.float64)

    def in_original_order(self, sorted_values: np.ndarray) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.asarray(sorted_values).dtype)
        np.put_along_axis(out, self.order, sorted_values, axis=1)
        return out

    def gather(self, rows_of: np.ndarray, width: int | None = None) -> np.ndarray:
        """``rows_of`` ([1, N] or [R, N], original order) read in this sort's order (last ``width`` positions)."""
        order = self.order if width is None else self.order[:, self.shape[1] - width:]
        if rows_of.shape[0] == 1:
            return rows_of[0][order]
        return np.take_along_axis(rows_of, order, axis=1)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) along the last axis, as scipy's rankdata."""
    array = np.asarray(x, dtype=np.float64)
    flat = array.reshape(-1, array.shape[-1])
    srt = _Sorted(flat)
    return srt.in_original_order(srt.sorted_avg_rank).reshape(array.shape)


def _wavelet_sum(seq: np.ndarray, chunk: int = 16) -> np.ndarray:
    """Per row of a non-negative int array [R, N]: the sum over bit passes of ``sum_p ones_k(p)``.

    Pass k (highest bit first) takes the row in its current arrangement, counts with a cumulative sum
    ``ones_k(p)`` = the elements at positions <= p whose bit k is 1, adds ``sum_p ones_k(p)`` to the
    row's total, then stably moves the 0-bit elements before the 1-bit ones (a wavelet-matrix level,
    two ``np.compress`` calls). After the passes above k, elements sharing the bits above k are
    contiguous, in their original order.

    Why: a pair i < j is an inversion (a_i > a_j) iff at its highest differing bit k the 1-bit element
    comes first. The pass-k sum counts, for every 0-bit element, the 1-bit elements before it
    (the inversions decided at bit k within its group, plus the 1-bit elements of earlier groups)
    plus ``T_k (T_k + 1) / 2`` for the T_k 1-bit elements. The part that is not an inversion depends
    only on the multiset of values (group sizes and group order), so
    ``inversions(a) = _wavelet_sum(a) - _wavelet_sum(sort(a))``: a sorted row has none.
    O(N log max(a)) per row with ~6 array operations per pass; rows are taken ``chunk`` at a time
    so that the working arrays stay in cache.
    """
    r, n = seq.shape
    n_bits = max(1, int(seq.max(initial=0)).bit_length())
    total = np.zeros(r, dtype=np.int64)
    for lo in range(0, r, chunk):
        cur = np.array(seq[lo:lo + chunk], dtype=np.int32)
        m = cur.shape[0]
        nxt, work, ones = np.empty_like(cur), np.empty_like(cur), np.empty_like(cur)
        bit, zero = np.empty(cur.shape, dtype=bool), np.empty(cur.shape, dtype=bool)
        for k in range(n_bits - 1, -1, -1):
            np.bitwise_and(np.right_shift(cur, k, out=work), 1, out=work)
            np.not_equal(work, 0, out=bit)
            np.cumsum(bit, axis=1, dtype=np.int32, out=ones)
            total[lo:lo + m] += ones.sum(axis=1, dtype=np.int64)
            if k == 0:
                break
            n_ones = ones[:, -1]
            np.logical_not(bit, out=zero)
            flat = cur.ravel()
            if (n_ones == n_ones[0]).all():  # rows with the same values (one truth): same split point
                z = n - int(n_ones[0])
                nxt[:, :z] = np.compress(zero.ravel(), flat).reshape(m, z)
                nxt[:, z:] = np.compress(bit.ravel(), flat).reshape(m, n - z)
            else:
                to_front = np.arange(n) < (n - n_ones)[:, None]
                nxt[to_front] = np.compress(zero.ravel(), flat)
                nxt[~to_front] = np.compress(bit.ravel(), flat)
            cur, nxt = nxt, cur
    return total


def count_inversions(seq: np.ndarray) -> np.ndarray:
    """Strict inversions ``#{i < j : a_i > a_j}`` per row of a non-negative int array [R, N] (ties do not count)."""
    array = np.atleast_2d(np.asarray(seq))
    if array.dtype.kind not in "iu" or (array.size and array.min() < 0):
        raise HarnessError("count_inversions takes non-negative integers")
    return _wavelet_sum(array) - _wavelet_sum(np.sort(array, axis=1))


# ---------------------------------------------------------------------------------- the metrics


def _spearman(sx: _Sorted, ry: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlation of average ranks: sum_i rx_i ry_i is taken in x's sorted order (a gather)."""
    ry_sorted = sx.gather(ry)
    mean = (n + 1) / 2.0
    if sx.tied:
        rx = sx.sorted_avg_rank
        sxy = np.einsum("ij,ij->i", rx, ry_sorted)
        sxx = np.einsum("ij,ij->i", rx, rx) - n * mean * mean
    else:
        sxy = ry_sorted @ np.arange(1.0, n + 1.0)
        sxx = np.full(ry_sorted.shape[0], n * (n * n - 1) / 12.0)
    sxy = sxy - n * mean * mean
    syy = np.einsum("ij,ij->i", ry, ry) - n * mean * mean
    with np.errstate(invalid="ignore", divide="ignore"):
        return sxy / np.sqrt(sxx * (syy if ry.shape[0] > 1 else syy[0]))


def _kendall(sx: _Sorted, y_rank: np.ndarray, y_tied_pairs: np.ndarray, y_sorted_sum: np.ndarray, n: int) -> np.ndarray:
    """tau-b = (n0 - n1 - n2 + n3 - 2 nd) / sqrt((n0 - n1)(n0 - n2)) (Knight 1966's O(N log N) scheme).

    n0 = N(N-1)/2, n1 and n2 the pairs tied in x and in y, n3 the pairs tied in both, nd the
    discordant pairs: the inversions of y's dense ranks read in x's sorted order, with each run of
    tied x ordered by y so that pairs tied in x are not counted. ``y_sorted_sum`` is
    :func:`_wavelet_sum` of y's sorted dense ranks (the non-inversion part of every row's sum).
    """
    seq = sx.gather(y_rank)
    joint_tied = np.zeros(seq.shape[0])
    if sx.tied:
        keys = np.sort(sx.dense_sorted * n + seq, axis=1)  # nearly sorted already: only tie runs move
        seq = keys % n
        joint_new = np.ones(keys.shape, dtype=bool)
        joint_new[:, 1:] = keys[:, 1:] != keys[:, :-1]
        pos = np.arange(n)
        joint_tied = (pos - np.maximum.accumulate(np.where(joint_new, pos, 0), axis=1)).sum(axis=1).astype(np.float64)
    discordant = (_wavelet_sum(seq) - y_sorted_sum).astype(np.float64)
    n0 = n * (n - 1) / 2.0
    n1 = sx.tied_pairs
    n2 = y_tied_pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n0 - n1 - n2 + joint_tied - 2.0 * discordant) / np.sqrt((n0 - n1) * (n0 - n2))


def _top_tail(srt: _Sorted, k: int) -> tuple[np.ndarray, int]:
    """Weights of the last ``width`` sorted positions: 1 above the k-th value, free/tied on it, else 0."""
    n = srt.shape[1]
    kth = srt.values[:, n - k][:, None]
    above = (srt.values > kth).sum(axis=1, keepdims=True)
    tied = (srt.values == kth).sum(axis=1, keepdims=True)
    width = int((above + tied).max())
    tail = srt.values[:, n - width:]
    weights = np.where(tail > kth, 1.0, np.where(tail == kth, (k - above) / tied, 0.0))
    return weights, width


def _top_weights(srt: _Sorted, k: int) -> np.ndarray:
    """The same weights over all N archs in original order."""
    weights, width = _top_tail(srt, k)
    full = np.zeros(srt.shape)
    full[:, srt.shape[1] - width:] = weights
    return srt.in_original_order(full)


class _Truth:
    """Ranks of the truth rows [Tr, N], computed once; ``rows(x)`` repeats a per-truth-row array to R rows."""

    def __init__(self, t: np.ndarray, n_rows: int):
        self.values = t
        self.sorted = _Sorted(t)
        self.avg_rank = self.sorted.in_original_order(self.sorted.sorted_avg_rank)
        self.constant = self.sorted.constant
        self._select = None if t.shape[0] == 1 else np.arange(n_rows) % t.shape[0]

    def rows(self, array: np.ndarray) -> np.ndarray:
        return array if self._select is None else array[self._select]

    def kendall_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense ranks [R|1, N], tied pairs [R|1], and the wavelet sum of the sorted dense ranks [R|1]."""
        dense = self.sorted.dense_sorted  # dense ranks need fewer bits than min ranks when ties are many
        sorted_sum = _wavelet_sum(dense)
        return self.rows(self.sorted.in_original_order(dense)), self.rows(self.sorted.tied_pairs), self.rows(sorted_sum)


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
    """Several rank metrics at once (sharing the sorts); each value shaped like ``score.shape[:-1]``.

    Keys: the requested ``metrics`` plus ``n_archs`` (archs used after the NaN policy).
    """
    for m in metrics:
        if m not in METRICS:
            raise choices("rank metric", m, METRICS)
    if constant not in ("raise", "nan"):
        raise choices("constant policy", constant, ["raise", "nan"])
    s, t, lead, keep = _prepare(score, truth, higher_is_better, truth_higher_is_better, nan)
    rows, n = s.shape
    if ("top_k" in metrics or "precision_at_k" in metrics) and not 1 <= k <= n:
        raise HarnessError(f"top-k needs 1 <= k <= number of archs ({n}), got k={k}")
    sx = _Sorted(s)
    truth_ranks = _Truth(t, rows)
    correlation = {"spearman", "kendall", "sparse_kendall"} & set(metrics)
    if correlation and constant == "raise":
        if truth_ranks.constant.any():
            raise HarnessError("the truth is constant over all archs: rank correlation is undefined")
        if sx.constant.any():
            row = int(np.flatnonzero(sx.constant)[0])
            raise HarnessError(
                f"scores are constant over all {n} archs in row {row}: rank correlation is undefined "
                "(pass constant='nan' to record NaN for such rows)"
            )
    out: dict[str, np.ndarray] = {}
    if "spearman" in metrics:
        out["spearman"] = _spearman(sx, truth_ranks.rows(truth_ranks.avg_rank), n)
    if "kendall" in metrics:
        out["kendall"] = _kendall(sx, *truth_ranks.kendall_parts(), n)
    if "sparse_kendall" in metrics:
        rounded = _Truth(np.round(t, sparse_decimals) + 0.0, rows)
        if rounded.constant.any() and constant == "raise":
            raise HarnessError(f"the truth rounded to {sparse_decimals} decimals is constant: sparse Kendall is undefined")
        out["sparse_kendall"] = _kendall(sx, *rounded.kendall_parts(), n)
    if "top_k" in metrics or "precision_at_k" in metrics:
        weights, width = _top_tail(sx, k)
        if "top_k" in metrics:
            raw_truth = truth_ranks.rows(t if truth_higher_is_better else -t)
            out["top_k"] = np.einsum("ij,ij->i", weights, sx.gather(raw_truth, width)) / k
        if "precision_at_k" in metrics:
            true_weights = truth_ranks.rows(_top_weights(truth_ranks.sorted, k))
            out["precision_at_k"] = np.einsum("ij,ij->i", weights, sx.gather(true_weights, width)) / k
    result = {name: np.asarray(v, dtype=np.float64).reshape(lead) for name, v in out.items()}
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
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        draws = rng.integers(0, reps, size=(n_boot, reps))
        means = array[draws].mean(axis=1)
        out["ci_low"] = np.quantile(means, (1 - ci) / 2, axis=0)
        out["ci_high"] = np.quantile(means, (1 + ci) / 2, axis=0)
    return out


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
    same draws, so CIs of several estimators are comparable. Returns (low, high) shaped ``[...]``.
    Draws in which a resample is constant are left out of the quantiles.
    """
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if t.ndim != 1 or s.shape[-1] != t.shape[0]:
        raise HarnessError(f"bootstrap takes scores [..., N] and one truth [N], got shapes {s.shape} and {t.shape}")
    if not 0.0 < level < 1.0:
        raise HarnessError(f"level must be in (0, 1), got {level}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws = rng.integers(0, t.size, size=(n_boot, t.size))
    values = rank_metrics(
        s[..., draws], t[draws], higher_is_better=higher_is_better, k=k, metrics=(metric,), constant="nan"
    )[metric]
    low = np.nanquantile(values, (1 - level) / 2, axis=-1)
    high = np.nanquantile(values, (1 + level) / 2, axis=-1)
    return low, high
