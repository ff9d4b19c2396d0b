"""Compiled per-row passes behind :func:`harness.ranking.rank_metrics` (numba).

:mod:`harness.ranking` validates the input, prepares the truth once (ranks, tie counts) and calls
:func:`rank_rows`, which handles one score row at a time: a stable sort, then one pass that yields
Spearman's rho, Kendall's tau-b, top-k and precision@k. The functions are compiled on first use and
cached on disk (``cache=True``: in ``__pycache__`` beside this file, or numba's per-user cache
when that folder is read-only), so only the first process pays the compile. They release the GIL
(``nogil=True``): callers run several calls at once in threads, as the correlation runner does.

Sort (:func:`argsort_stable`)
    A distribution sort: each segment longer than ``_SMALL`` is split into as many equal-width value
    buckets as it has elements (``floor((x - min) * (m - 1) / (max - min))``, monotone in x, so the
    bucket order is the value order) and scattered stably; small buckets are insertion-sorted, large
    ones split again. Smooth score distributions take O(N) per row. A bucket holding more than half
    of its segment (heavy tails, a non-finite range) is merge-sorted, which bounds the work by
    O(N log N). Equal values keep their input order, so the result equals
    ``np.argsort(x, kind="stable")``.

Kendall's discordant pairs (Knight 1966, "A computer method for calculating Kendall's tau with
ungrouped data", JASA 61, 436-439)
    Read the score row in the truth's ascending order and sort it stably: every run of tied scores
    then comes out ordered by truth, so pairs tied in the score never count. The discordant pairs
    are the strict inversions of the truth's dense ranks in that order; :func:`wavelet_sum` counts
    them in O(N log N) without comparisons.

Formulas, with n0 = N(N-1)/2, n1 and n2 the pairs tied in the score and in the truth, n3 the pairs
tied in both, nd the discordant pairs, and cx = rx - m, cy = ry - m the average ranks centred on
their mean m = (N + 1) / 2:

    tau_b = (n0 - n1 - n2 + n3 - 2 nd) / sqrt((n0 - n1) (n0 - n2))
    rho   = sum cx cy / sqrt(sum cx^2 * sum cy^2)

The ranks are centred before the products: the uncentred form ``sum rx ry - N m^2`` subtracts two
sums of ~N^3/3 that agree in their leading digits and, beyond N ~ 10^5, lost enough of them to
give |rho| > 1. Centred ranks are multiples of 1/2, so their products are multiples of 1/4; each
sum is taken in blocks of about ``_BLOCK`` terms (a block ends with the run of ties that reaches
``_BLOCK`` terms), exact in float64 for N up to ~3 * 10^6, and the block totals are added: N / _BLOCK
roundings instead of N, which would drift (every term of sum cx^2 is k + 1/4 for even N, always
rounded down once the total passes 2^52). Within a run of tied scores the truth's centred ranks
are summed first (exact: halves) and multiplied once by the run's centred rank. The three sums go
through the runs in ascending order and end their blocks at the same runs (:func:`_sum_of_squares`
for the truth), so a score that ranks exactly as the truth gives exactly 1 (the same products,
rounded the same way, and ``sqrt(a * a) == a`` in binary floating point). Other results can be off
by a few ulps, so rho is clamped to [-1, 1]. A constant row divides 0 by 0 and gives NaN
(``error_model="numpy"``); the caller applies its policy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SMALL = 32  # segments (and merge-sort runs) up to this length are insertion-sorted
_BLOCK = 1024  # Spearman's sums are exact within blocks of this many terms (see the module docstring)
_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}


@njit(**_JIT)
def _insertion_sort(x: np.ndarray, order: np.ndarray, lo: int, hi: int) -> None:
    """Stable sort of ``order[lo:hi]`` (indices into ``x``) by ``x``."""
    for i in range(lo + 1, hi):
        item = order[i]
        value = x[item]
        j = i
        while j > lo and x[order[j - 1]] > value:
            order[j] = order[j - 1]
            j -= 1
        order[j] = item


@njit(**_JIT)
def _merge(x: np.ndarray, src: np.ndarray, dst: np.ndarray, start: int, mid: int, end: int) -> None:
    """Stable merge of the sorted runs ``src[start:mid]`` and ``src[mid:end]`` (by ``x``) into ``dst[start:end]``."""
    i, j = start, mid
    for o in range(start, end):
        if j >= end or (i < mid and not x[src[j]] < x[src[i]]):
            dst[o] = src[i]
            i += 1
        else:
            dst[o] = src[j]
            j += 1


@njit(**_JIT)
def _merge_sort(x: np.ndarray, order: np.ndarray, lo: int, hi: int, scratch: np.ndarray) -> None:
    """Stable O(m log m) sort of ``order[lo:hi]`` by ``x``: insertion-sorted runs, then bottom-up merges."""
    for start in range(lo, hi, _SMALL):
        _insertion_sort(x, order, start, min(start + _SMALL, hi))
    width = _SMALL
    in_order = True  # where the current runs live: ``order`` or ``scratch``
    while width < hi - lo:
        for start in range(lo, hi, 2 * width):
            mid = min(start + width, hi)
            end = min(start + 2 * width, hi)
            if in_order:
                _merge(x, order, scratch, start, mid, end)
            else:
                _merge(x, scratch, order, start, mid, end)
        in_order = not in_order
        width *= 2
    if not in_order:
        for i in range(lo, hi):
            order[i] = scratch[i]


@njit(**_JIT)
def argsort_stable(x: np.ndarray, order: np.ndarray, bucket: np.ndarray, count: np.ndarray,
                   scratch: np.ndarray, stack: np.ndarray) -> None:
    """``order`` = the stable argsort of ``x`` (NaN-free); the other arrays are scratch of size >= N + 2."""
    n = x.shape[0]
    for i in range(n):
        order[i] = i
    stack[0] = 0
    stack[1] = n
    top = 2
    while top > 0:
        hi = stack[top - 1]
        lo = stack[top - 2]
        top -= 2
        m = hi - lo
        if m <= _SMALL:
            _insertion_sort(x, order, lo, hi)
            continue
        low = x[order[lo]]
        high = low
        for i in range(lo, hi):
            v = x[order[i]]
            if v < low:
                low = v
            elif v > high:
                high = v
        if low == high:
            continue
        scale = (m - 1) / (high - low)
        if not (0.0 < scale < np.inf):  # an infinite value or range
            _merge_sort(x, order, lo, hi, scratch)
            continue
        for b in range(m + 1):
            count[b] = 0
        for i in range(lo, hi):
            b = min(int((x[order[i]] - low) * scale), m - 1)
            bucket[i] = b
            count[b + 1] += 1
        for b in range(m):
            count[b + 1] += count[b]
        for i in range(lo, hi):  # stable scatter; count[b] ends as the end of bucket b
            b = bucket[i]
            scratch[lo + count[b]] = order[i]
            count[b] += 1
        for i in range(lo, hi):
            order[i] = scratch[i]
        start = lo
        for b in range(m):
            end = lo + count[b]
            size = end - start
            if size > 1:
                if size <= _SMALL:
                    _insertion_sort(x, order, start, end)
                elif 2 * size > m:
                    _merge_sort(x, order, start, end, scratch)
                else:
                    stack[top] = start
                    stack[top + 1] = end
                    top += 2
            start = end


@njit(**_JIT)
def wavelet_sum(seq: np.ndarray, zeros: np.ndarray, cur: np.ndarray, nxt: np.ndarray) -> int:
    """Per bit pass (highest first): add sum_p ones_k(p), then stably move 0-bit elements first.

    ones_k(p) counts the elements at positions <= p whose bit k is 1. A pair i < j is an inversion
    (a_i > a_j) iff at its highest differing bit the 1-bit element comes first; after the passes
    above k, elements that share the bits above k are contiguous in their original order, so the
    pass-k sum counts, for every 0-bit element, the 1-bit elements before it (the inversions decided
    at bit k, plus 1-bit elements of earlier groups) plus T_k (T_k + 1) / 2 for the T_k 1-bit
    elements. The part that is not an inversion depends only on the multiset, hence
    ``inversions(a) = wavelet_sum(a) - wavelet_sum(sorted(a))``. ``zeros[k]`` is how many elements
    have bit k clear; each element goes to ``p - ones`` (0-bit) or ``zeros[k] + ones - 1`` (1-bit),
    chosen by a select rather than a branch. The first pass reads ``seq`` (left unchanged), the
    others alternate between the scratch arrays ``cur`` and ``nxt``; the last pass only counts.
    """
    n = seq.shape[0]
    total = 0
    for level, k in enumerate(range(zeros.shape[0] - 1, -1, -1)):
        src = seq if level == 0 else (nxt if level % 2 == 1 else cur)
        dst = nxt if level % 2 == 0 else cur
        ones = 0
        if k == 0:
            for p in range(n):
                ones += src[p] & 1
                total += ones
            break
        last_zero = zeros[k] - 1
        for p in range(n):
            v = src[p]
            b = (v >> k) & 1
            ones += b
            total += ones
            dst[last_zero + ones if b else p - ones] = v
    return total


@njit(**_JIT)
def wavelet_sums(rows: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """:func:`wavelet_sum` of each row of ``rows`` [T, N] (for a sorted row: the non-inversion part)."""
    count, n = rows.shape
    cur = np.empty(n, dtype=rows.dtype)
    nxt = np.empty(n, dtype=rows.dtype)
    out = np.empty(count, dtype=np.int64)
    for t in range(count):
        out[t] = wavelet_sum(rows[t], zeros[t], cur, nxt)
    return out


@njit(**_JIT)
def _sum_of_squares(centred: np.ndarray) -> float:
    """``sum c^2`` of non-decreasing centred average ranks, run by run and in the blocks in which
    :func:`rank_rows` sums the score's ``sum cx^2``, so that equal rankings give equal sums."""
    n = centred.shape[0]
    total = 0.0
    block = 0.0
    block_end = _BLOCK
    lo = 0
    while lo < n:
        hi = lo + 1
        while hi < n and centred[hi] == centred[lo]:
            hi += 1
        block += (hi - lo) * centred[lo] * centred[lo]
        if hi >= block_end:
            total += block
            block = 0.0
            block_end = hi + _BLOCK
        lo = hi
    return total + block


@njit(**_JIT)
def rank_rows(
    score: np.ndarray,
    transposed: bool,
    sign: float,
    y_order: np.ndarray,
    y_centred_rank: np.ndarray,
    y_value: np.ndarray,
    y_top_weight: np.ndarray,
    y_dense: np.ndarray,
    y_zeros: np.ndarray,
    y_sorted_sum: np.ndarray,
    y_tied_pairs: np.ndarray,
    k: int,
    out: np.ndarray,
) -> None:
    """Rank metrics of every score row against its truth row (row r uses truth row ``r % T``).

    ``score``: [R, N] (or [N, R] with ``transposed``), NaN-free, oriented by ``sign`` (+1 or -1) so
    that higher is better. The truth comes in its own ascending order: ``y_order`` [T, N] (a stable
    argsort of each truth row); then, at each position of that order, average ranks minus
    (N + 1) / 2 [T, N], values and true-top-k weights [T, N] (for top-k and precision@k). For
    Kendall, per truth variant v (the truth, then e.g. its rounded copy, which sorts the same way):
    dense ranks [V, T, N] (0-based, non-decreasing along N), the count of zero bits per level
    [V, T, bits], :func:`wavelet_sums` of the dense ranks [V, T] and the tied pairs n2 [V, T]. V = 0 skips Kendall; ``k = 0`` skips top-k. ``out`` [4 + V, R] receives
    spearman, top_k, precision_at_k, 1.0 where the row is constant, then tau-b per variant.

    The row is read in the truth's order and sorted stably, so every run of tied scores comes out
    ordered by truth: pairs tied in the score are never counted as discordant (Knight's step 1).
    """
    rows = out.shape[1]
    n_truth, n = y_order.shape
    variants = y_dense.shape[0]
    x = np.empty(n)
    xs = np.empty(n)
    order = np.empty(n, dtype=np.int64)
    bucket = np.empty(n, dtype=np.int64)
    count = np.empty(n + 2, dtype=np.int64)
    scratch = np.empty(n, dtype=np.int64)
    stack = np.empty(2 * n + 2, dtype=np.int64)
    seq = np.empty(n, dtype=y_dense.dtype)
    cur = np.empty(n, dtype=y_dense.dtype)
    nxt = np.empty(n, dtype=y_dense.dtype)
    mean_rank = (n + 1) / 2.0
    n0 = n * (n - 1) / 2.0
    syy = np.empty(n_truth)
    for t in range(n_truth):
        syy[t] = _sum_of_squares(y_centred_rank[t])
    for r in range(rows):
        t = r % n_truth
        for q in range(n):  # oriented; + 0.0 turns -0.0 into 0.0 so that zeros tie
            a = y_order[t, q]
            x[q] = sign * (score[a, r] if transposed else score[r, a]) + 0.0
        argsort_stable(x, order, bucket, count, scratch, stack)
        for p in range(n):
            xs[p] = x[order[p]]
        out[3, r] = 1.0 if xs[0] == xs[n - 1] else 0.0

        # Spearman: each run of equal scores gets its average rank, centred
        sxy = 0.0
        sxx = 0.0
        block_xy = 0.0
        block_xx = 0.0
        block_end = _BLOCK
        n1 = 0.0
        lo = 0
        while lo < n:
            hi = lo + 1
            while hi < n and xs[hi] == xs[lo]:
                hi += 1
            length = hi - lo
            centred = lo + (length + 1) / 2.0 - mean_rank
            run_y = 0.0
            for p in range(lo, hi):
                run_y += y_centred_rank[t, order[p]]
            block_xy += centred * run_y
            block_xx += length * centred * centred
            if hi >= block_end:  # a block ends with the run that reaches _BLOCK terms past the last one
                sxy += block_xy
                sxx += block_xx
                block_xy = 0.0
                block_xx = 0.0
                block_end = hi + _BLOCK
            n1 += length * (length - 1) / 2.0
            lo = hi
        sxy += block_xy
        sxx += block_xx
        rho = sxy / np.sqrt(sxx * syy[t])
        if rho > 1.0:  # a NaN (constant row) fails both tests and stays NaN
            rho = 1.0
        elif rho < -1.0:
            rho = -1.0
        out[0, r] = rho

        # Kendall tau-b per truth variant: inversions of its dense ranks in the score's order
        for v in range(variants):
            n3 = 0.0
            same = 0
            for p in range(n):
                seq[p] = y_dense[v, t, order[p]]
                tied_both = p > 0 and xs[p] == xs[p - 1] and seq[p] == seq[p - 1]
                same = same + 1 if tied_both else 0
                n3 += same
            discordant = wavelet_sum(seq, y_zeros[v, t], cur, nxt) - y_sorted_sum[v, t]
            n2 = y_tied_pairs[v, t]
            out[4 + v, r] = (n0 - n1 - n2 + n3 - 2.0 * discordant) / np.sqrt((n0 - n1) * (n0 - n2))

        if k > 0:  # the k best are at the end; archs tied with the k-th best share the free slots
            kth = xs[n - k]
            above = 0
            while xs[n - 1 - above] > kth:
                above += 1
            first = n - k
            while first > 0 and xs[first - 1] == kth:
                first -= 1
            share = (k - above) / (n - above - first)
            top = 0.0
            hit = 0.0
            for p in range(first, n):
                weight = 1.0 if xs[p] > kth else share
                top += weight * y_value[t, order[p]]
                hit += weight * y_top_weight[t, order[p]]
            out[1, r] = top / k
            out[2, r] = hit / k
