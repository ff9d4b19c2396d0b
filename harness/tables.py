"""Markdown and LaTeX tables in the thesis format: "mean (std)", best value per column in bold.

:func:`render` takes a frame with one row per table row and, for every column, a mean (and
optionally a std) column. The best value per column is the highest unless that column is listed in
``lower_is_better``; ties for best are all bold. NaN cells print as "n/a" and are never best.

An estimator that ranks the archs exactly as the ground truth (ValAcc at the epoch the truth is read
from, e.g. NB301's epoch 98) is not a prediction: :func:`correlation_table` marks its cells with a
dagger in every metric's table (Spearman, Kendall, top-k, precision@k, ...), never bolds them, and
explains the dagger under the table (:func:`ranks_as_truth` says which cells).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from harness.benchmark import epoch_span
from harness.errors import HarnessError, choices

Style = Literal["markdown", "latex"]
# Rank correlations that are exactly 1 only for the truth's own ranking (ties included). Sparse Kendall
# is left out: it rounds the truth first, so the truth itself scores below 1 there.
IDENTITY_CORRELATIONS = ("spearman", "kendall")
# A perfect ranking of fewer archs can be chance (1 in 9! = 362,880 random orders of 9), not identity.
MIN_ARCHS_FOR_IDENTITY = 10


def _cell(mean: float, std: float | None, digits: int) -> str:
    if np.isnan(mean):
        return "n/a"
    text = f"{mean:.{digits}f}"
    if std is not None and not np.isnan(std):
        text += f" ({std:.{digits}f})"
    return text


def _printed(values: np.ndarray, digits: int) -> np.ndarray:
    """The values as the cells show them (``f"{v:.{digits}f}"`` read back; NaN stays NaN).

    The best cell is chosen on these, so it is the one that prints best: ``np.round`` rounds
    0.6375 (stored as 0.63749999...) to 0.638 where the format prints 0.637.
    """
    return np.array([float(f"{v:.{digits}f}") for v in values], dtype=np.float64)


def mean_std(results: pd.DataFrame, by: str | list[str], metric: str) -> tuple[pd.Series, pd.Series]:
    """Mean and std of ``metric`` over the rows (repetitions) of each group of ``by``.

    The std is the population std, ``sqrt(mean((x - mean)^2))`` (ddof=0, as ``np.std``,
    :func:`harness.ranking.summarize` and the plots' bands).
    """
    grouped = results.groupby(by, sort=False)[metric]
    return grouped.mean(), grouped.std(ddof=0)


def render(
    means: pd.DataFrame,
    stds: pd.DataFrame | None = None,
    *,
    style: Style = "markdown",
    digits: int = 3,
    lower_is_better: Sequence[str] = (),
    row_label: str = "",
    caption: str | None = None,
    unranked: pd.DataFrame | None = None,
    unranked_note: str = "",
    column_digits: Mapping[str, int] | None = None,
    no_best: Sequence[str] = (),
    note: str = "",
    intervals: Mapping[str, tuple[pd.Series, pd.Series]] | None = None,
) -> str:
    """Render ``means`` (index = row labels, columns = table columns) with optional ``stds`` alongside.

    The best mean per column (by printed value, so that equal printed values are both bold) is bold,
    except in the columns listed in ``no_best`` (a published reference, a difference). Cells where the
    boolean frame ``unranked`` is True are marked with a dagger, take no part in choosing the best, and
    ``unranked_note`` explains the dagger under the table; ``note`` is a further line under it.
    ``digits`` decimal places for every column, except those ``column_digits`` names.
    ``intervals`` maps a column to (low, high) series indexed like ``means``: its cells end with
    ``[low, high]`` (a confidence interval), at the column's decimal places.
    """
    if style not in ("markdown", "latex"):
        raise choices("table style", style, ["markdown", "latex"])
    column_digits = dict(column_digits or {})
    for n in (digits, *column_digits.values()):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise HarnessError(f"digits (decimal places) must be an integer >= 0, got {n!r}")
    intervals = dict(intervals or {})
    for what, named in (("column_digits", column_digits), ("no_best", no_best), ("intervals", intervals)):
        for col in named:
            if col not in means.columns:
                raise choices(f"{what} column", col, [str(c) for c in means.columns])
    places = {col: column_digits.get(col, digits) for col in means.columns}
    if stds is not None and (list(stds.columns) != list(means.columns) or list(stds.index) != list(means.index)):
        raise HarnessError("std table must have the same rows and columns as the mean table")
    header = [row_label or ""] + [str(c) for c in means.columns]
    body: list[list[str]] = []
    skip = np.zeros(means.shape, dtype=bool) if unranked is None else unranked.loc[means.index, means.columns].to_numpy(bool)
    dagger = "\u2020" if style == "markdown" else "$^\\dagger$"
    printed = {col: _printed(means[col].to_numpy(np.float64), places[col]) for col in means.columns}
    best: dict[str, float] = {}
    for j, (col, values) in enumerate(printed.items()):
        ranked = np.where(skip[:, j], np.nan, values)
        if col in no_best or np.isnan(ranked).all():
            continue
        best[col] = np.nanmin(ranked) if col in lower_is_better else np.nanmax(ranked)
    for i, (label, row) in enumerate(means.iterrows()):
        cells = [str(label)]
        for j, col in enumerate(means.columns):
            mean = float(row[col])
            std = None if stds is None else float(stds.loc[label, col])
            text = _cell(mean, std, places[col])
            if col in intervals and not np.isnan(mean):
                low, high = (float(bound.loc[label]) for bound in intervals[col])
                text += f" [{low:.{places[col]}f}, {high:.{places[col]}f}]"
            if skip[i, j]:
                text += dagger
            elif col in best and printed[col][i] == best[col]:
                text = f"**{text}**" if style == "markdown" else f"\\textbf{{{text}}}"
            cells.append(text)
        body.append(cells)
    notes = [f"{dagger} {unranked_note}"] if skip.any() and unranked_note else []
    notes += [note] if note else []
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        if caption:
            lines = [f"**{caption}**", ""] + lines
        for text in notes:
            lines += ["", text]
        return "\n".join(lines)
    escape = lambda s: s.replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")  # noqa: E731
    lines = ["\\begin{table}[t]", "\\centering"]
    if caption:
        lines.append(f"\\caption{{{escape(caption)}}}")
    lines.append("\\begin{tabular}{l" + "r" * (len(header) - 1) + "}")
    lines.append("\\toprule")
    lines.append(" & ".join(escape(h) for h in header) + " \\\\")
    lines.append("\\midrule")
    for cells in body:
        lines.append(" & ".join([escape(cells[0])] + cells[1:]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    for text in notes:
        lines.append(f"\\par\\smallskip {escape(text).replace(escape(dagger), dagger)}")
    lines.append("\\end{table}")
    return "\n".join(lines)


def correlation_table(
    results: pd.DataFrame,
    metric: str = "spearman",
    epochs: Sequence[int] | None = None,
    fractions: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 1.0),
    style: Style = "markdown",
    digits: int = 3,
    truth_lower_is_better: bool = False,
) -> str:
    """Table of a correlation-vs-epoch run: rows = estimators, columns = epochs, cells "mean (std)".

    ``epochs`` picks the columns; by default the epochs nearest to the given ``fractions`` of training.
    ``truth_lower_is_better`` (a loss truth) makes the lowest ``top_k`` (the truth's mean over the
    chosen archs) the best.
    """
    if metric not in results.columns:
        raise choices("table metric", metric, [c for c in results.columns if c not in ("estimator", "epoch", "repetition")])
    all_epochs = np.sort(results["epoch"].unique())
    if epochs is None:
        last = all_epochs[-1]
        epochs = sorted({int(all_epochs[np.argmin(np.abs(all_epochs - f * last))]) for f in fractions})
    epochs = list(dict.fromkeys(int(e) for e in epochs))  # an epoch asked for twice is one column
    missing = [e for e in epochs if e not in set(all_epochs.tolist())]
    if missing:
        raise HarnessError(f"epoch {missing[0]} is not in this run; epochs: {epoch_span(tuple(int(e) for e in all_epochs))}")
    sub = results[results["epoch"].isin(epochs)]
    means, stds = (stat.unstack("epoch") for stat in mean_std(sub, ["estimator", "epoch"], metric))
    order = list(dict.fromkeys(results["estimator"]))
    means = means.loc[order, list(epochs)]
    stds = stds.loc[order, list(epochs)]
    identical = ranks_as_truth(sub)
    perfect = pd.DataFrame(False, index=order, columns=list(epochs)) if identical is None else \
        identical.unstack("epoch", fill_value=False).loc[order, list(epochs)].astype(bool)
    means.columns = stds.columns = perfect.columns = [f"epoch {e}" for e in epochs]
    lower = list(means.columns) if metric == "top_k" and truth_lower_is_better else []
    unknown = "" if identical is not None else (
        f"This run recorded no {' or '.join(IDENTITY_CORRELATIONS)} column, so an estimator that is the ground truth "
        "itself cannot be recognised here: none is marked.")
    return render(means, stds, style=style, digits=digits, row_label="estimator", caption=f"{metric}: mean (std) over repetitions",
                  lower_is_better=lower, note=unknown,
                  unranked=perfect, unranked_note="ranks exactly as the ground truth in every repetition (the estimator "
                  "is the truth at that epoch, e.g. ValAcc where the truth is read): not a prediction, not bolded")


def ranks_as_truth(results: pd.DataFrame) -> pd.Series | None:
    """Per (estimator, epoch) of a correlation run: does the estimator rank the archs exactly as the truth?

    True when, in every repetition, Spearman's rho or Kendall's tau-b is exactly 1 (a rank
    correlation is 1 only for the truth's own ranking, ties included) on at least
    ``MIN_ARCHS_FOR_IDENTITY`` archs: the estimator *is* the ground truth there (NB301's ValAcc at
    epoch 98, where the truth is the surrogate's epoch-98 validation accuracy). This holds for the
    whole (estimator, epoch), so every metric's table marks those cells, whatever the metric: the
    truth's own top-k or precision@k = 1 is not a prediction either. A precision@k of 1 alone is a
    result (the estimator found the true top-k), not identity. None when ``results`` records neither
    correlation (a run configured without them), as identity cannot be told then.
    """
    present = [c for c in IDENTITY_CORRELATIONS if c in results.columns]
    if not present:
        return None
    exact = (results[present] == 1.0).any(axis=1)
    if "n_archs" in results.columns:
        exact &= results["n_archs"] >= MIN_ARCHS_FOR_IDENTITY
    return exact.groupby([results["estimator"], results["epoch"]], sort=False).all()
