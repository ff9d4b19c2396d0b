"""Markdown and LaTeX tables in the thesis format: "mean (std)", best value per column in bold.

:func:`render` takes a frame with one row per table row and, for every column, a mean (and
optionally a std) column. The best value per column is the highest unless that column is listed in
``lower_is_better``; ties for best are all bold. NaN cells print as "n/a" and are never best.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from harness.benchmark import epoch_span
from harness.errors import HarnessError, choices
from harness.ranking import CORRELATIONS

Style = Literal["markdown", "latex"]


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
) -> str:
    """Render ``means`` (index = row labels, columns = table columns) with optional ``stds`` alongside.

    The best mean per column (by printed value, so that equal printed values are both bold) is bold.
    Cells where the boolean frame ``unranked`` is True are marked with a dagger, take no part in
    choosing the best, and ``unranked_note`` explains the dagger under the table.
    """
    if style not in ("markdown", "latex"):
        raise choices("table style", style, ["markdown", "latex"])
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise HarnessError(f"digits (decimal places) must be an integer >= 0, got {digits!r}")
    if stds is not None and (list(stds.columns) != list(means.columns) or list(stds.index) != list(means.index)):
        raise HarnessError("std table must have the same rows and columns as the mean table")
    header = [row_label or ""] + [str(c) for c in means.columns]
    body: list[list[str]] = []
    skip = np.zeros(means.shape, dtype=bool) if unranked is None else unranked.loc[means.index, means.columns].to_numpy(bool)
    dagger = "\u2020" if style == "markdown" else "$^\\dagger$"
    printed = {col: _printed(means[col].to_numpy(np.float64), digits) for col in means.columns}
    best: dict[str, float] = {}
    for j, (col, values) in enumerate(printed.items()):
        ranked = np.where(skip[:, j], np.nan, values)
        if np.isnan(ranked).all():
            continue
        best[col] = np.nanmin(ranked) if col in lower_is_better else np.nanmax(ranked)
    for i, (label, row) in enumerate(means.iterrows()):
        cells = [str(label)]
        for j, col in enumerate(means.columns):
            mean = float(row[col])
            std = None if stds is None else float(stds.loc[label, col])
            text = _cell(mean, std, digits)
            if skip[i, j]:
                text += dagger
            elif col in best and printed[col][i] == best[col]:
                text = f"**{text}**" if style == "markdown" else f"\\textbf{{{text}}}"
            cells.append(text)
        body.append(cells)
    note = f"{dagger} {unranked_note}" if skip.any() and unranked_note else ""
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        if caption:
            lines = [f"**{caption}**", ""] + lines
        if note:
            lines += ["", note]
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
    if note:
        lines.append(f"\\par\\smallskip {escape(note).replace(escape(dagger), dagger)}")
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
    # A correlation of exactly 1 in every repetition: the estimator ranks as the truth itself (ValAcc
    # at the epoch the truth is read from, say); it is marked and not counted as the best.
    # With fewer than 10 archs a perfect ranking can be chance (1/10! for 10), so those are not marked.
    enough = sub["n_archs"] >= 10 if "n_archs" in sub else True
    exact = (sub[metric] == 1.0) & enough if metric in CORRELATIONS else pd.Series(False, index=sub.index)
    perfect = exact.groupby([sub["estimator"], sub["epoch"]], sort=False).all()
    perfect = perfect.unstack("epoch").loc[order, list(epochs)].fillna(False).astype(bool)
    means.columns = stds.columns = perfect.columns = [f"epoch {e}" for e in epochs]
    lower = list(means.columns) if metric == "top_k" and truth_lower_is_better else []
    return render(means, stds, style=style, digits=digits, row_label="estimator", caption=f"{metric}: mean (std) over repetitions",
                  lower_is_better=lower,
                  unranked=perfect, unranked_note="ranks exactly as the ground truth in every repetition (the estimator "
                  "is the truth at that epoch, e.g. ValAcc where the truth is read): not a prediction, not bolded")
