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


def _count_inversions(seq: np.ndarray, counts_below: np.ndarray) -> np.ndarray:
    """Strict inversions ``#{i < j : a_i > a_j}`` per row of an int array [R, N] with values in 0..N-1.

    Bitwise radix refinement, O(N log N) per row, all rows at once. Before the pass for bit k the row
    is arranged by the prefix ``a >> (k+1)`` (stable within equal prefixes). A pair whose highest
    differing bit is k is an inversion iff its 1-bit element comes first, so each 0-bit element counts
    the 1-bit elements of its prefix group before it (a cumulative sum); then every group is stably
    partitioned by bit k. ``counts_below[., v]`` = number of values < v in the row (shape [R or 1,
    N+1]) gives every group's start position without sorting. Buffers are reused across passes.
    """
    r, n = seq.shape
    shared = counts_below.shape[0] == 1
    stride = counts_below.shape[1]
    table = counts_below.ravel().astype(np.int32)
    cur = seq.astype(np.int32, copy=True)
    nxt, bit, ones, group, a, b = (np.empty_like(cur) for _ in range(6))
    row_off = (np.arange(r, dtype=np.int32) * n)[:, None]
    table_off = (np.arange(r, dtype=np.int32) * stride)[:, None] if not shared else np.zeros((1, 1), np.int32)
    pos = np.arange(n, dtype=np.int32)
    total = np.zeros(r, dtype=np.int64)
    for k in range(max(1, int(n - 1).bit_length()) - 1, -1, -1):
        np.bitwise_and(np.right_shift(cur, k, out=bit), 1, out=bit)
        np.subtract(np.cumsum(bit, axis=1, out=ones), bit, out=ones)  # 1-bits before, in the row
        np.left_shift(np.right_shift(cur, k + 1, out=group), k + 1, out=group)  # the group's lowest value
        np.add(group, table_off, out=group)
        np.take(table, group, out=a)  # where the group starts
        np.take(ones.ravel(), np.add(a, row_off, out=b), out=b)
        np.subtract(ones, b, out=ones)  # 1-bits before, in the group
        total += ones.sum(axis=1, dtype=np.int64) - np.einsum("ij,ij->i", ones, bit, dtype=np.int64)
        # new position: a 0-bit element moves to pos - ones; a 1-bit one to (start of the 1s) + ones
        np.minimum(np.add(group, 1 << k, out=group), table_off + stride - 1, out=group)
        np.add(np.take(table, group, out=a), ones, out=a)
        np.subtract(pos, ones, out=b)
        np.add(b, np.multiply(np.subtract(a, b, out=a), bit, out=a), out=b)
        nxt.ravel()[np.add(b, row_off, out=b).ravel()] = cur.ravel()
        cur, nxt = nxt, cur
    return total


def _min_ranks(srt: _Sorted) -> np.ndarray:
    """0-based min ranks (number of strictly smaller values) in original order."""
    return srt.in_original_order(srt.run_start)


def _counts_below(values: np.ndarray, n: int) -> np.ndarray:
    """[R, n+1]: for each v, the number of entries < v in each row of the int array ``values``."""
    r = values.shape[0]
    counts = np.bincount((values + (np.arange(r) * n)[:, None]).ravel(), minlength=r * n).reshape(r, n)
    out = np.zeros((r, n + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, out=out[:, 1:])
    return out


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


def _kendall(sx: _Sorted, y_min_rank: np.ndarray, y_tied_pairs: np.ndarray, y_counts: np.ndarray, n: int) -> np.ndarray:
    """tau-b = (n0 - n1 - n2 + n3 - 2 nd) / sqrt((n0 - n1)(n0 - n2)) (Knight 1966's O(N log N) scheme)."""
    r = sx.order.shape[0]
    dense_x = sx.in_original_order(sx.dense_sorted)
    ymr = np.broadcast_to(y_min_rank, dense_x.shape)
    keys = np.sort(dense_x * n + ymr, axis=1)  # rows ordered by (x, y)
    seq = keys % n
    joint_new = np.ones((r, n), dtype=bool)
    joint_new[:, 1:] = keys[:, 1:] != keys[:, :-1]
    pos = np.arange(n)
    joint_tied = (pos - np.maximum.accumulate(np.where(joint_new, pos, 0), axis=1)).sum(axis=1).astype(np.float64)
    discordant = _count_inversions(seq, y_counts).astype(np.float64)
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
        """Min ranks [R|1, N], tied pairs [R|1], and the counts-below table [R|1, N+1]."""
        min_rank = _min_ranks(self.sorted)
        counts = _counts_below(min_rank, min_rank.shape[1])
        return self.rows(min_rank), self.rows(self.sorted.tied_pairs), self.rows(counts)


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
