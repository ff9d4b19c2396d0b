"""Figures, headless (matplotlib Agg), separate from computation: they read result frames only.

* :func:`correlation_vs_epoch`: one line per estimator (mean over repetitions) with a +-1 std band
  (clipped to the metric's range);
  the x axis is the epoch, or, with ``fraction=True``, the fraction of training t/T on a log axis
  as in the thesis's Fig. 4.4 and 4.5; also the finetuning-step curves of a weight-sharing run
  (thesis Fig. 4.6a).
* :func:`compare_bars`: rank correlation of static estimators per dataset with bootstrap CIs.
* :func:`plot_search_trajectories`: per epoch of differentiable searches, the derived arch's truth,
  its skip connections, cell depth and dominant Hessian eigenvalue (thesis Figs 4.12-4.16), written.
* :func:`save`: write PNG and PDF next to each other, each atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from harness.atomic import write_atomic  # noqa: E402
from harness.errors import HarnessError, choices  # noqa: E402
from harness.ranking import CORRELATIONS, METRICS  # noqa: E402

VALUE_RANGE = {**{name: (-1.0, 1.0) for name in CORRELATIONS}, "precision_at_k": (0.0, 1.0)}


def correlation_vs_epoch(
    results: pd.DataFrame,
    metric: str = "spearman",
    fraction: bool = False,
    title: str | None = None,
    x: str = "epoch",
    over: str = "repetition",
    ax: Axes | None = None,
) -> Figure:
    """Mean (line) and std (band) over ``over`` of ``metric`` per ``x``, one line per estimator.

    The defaults plot a correlation run (epochs, repetitions); a weight-sharing run passes
    ``x="step", over="seed"`` (finetuning steps, supernet seeds). ``ax`` draws into an existing panel.
    """
    if metric not in METRICS or not {"estimator", x, over, metric} <= set(results.columns):
        raise choices("plot metric", metric, [m for m in METRICS if m in results.columns])
    if results.empty:
        raise HarnessError("no results to plot")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    else:
        fig = ax.figure
    last = float(results[x].max())
    drawn: dict[str, pd.DataFrame] = {}
    for estimator, part in results.groupby("estimator", sort=False):
        stats = part.groupby(x)[metric].agg(["mean", lambda v: float(np.std(v))])
        stats.columns = ["mean", "std"]
        xs = stats.index.to_numpy(np.float64)
        xs = xs / last if fraction else xs
        marker = "o" if len(xs) < 10 else None  # sparse series (ValAcc every 100 steps) show their points
        # an estimator that ranks exactly like one drawn before (SoVL-E with E = 1 and ValLoss) hides it: say so
        same = [name for name, other in drawn.items() if other.index.equals(stats.index) and np.allclose(other, stats, rtol=0, atol=1e-12, equal_nan=True)]
        label = f"{estimator} (= {same[0]}, drawn over it)" if same else str(estimator)
        drawn[str(estimator)] = stats
        (line,) = ax.plot(xs, stats["mean"], label=label, linewidth=1.6, marker=marker)
        low, high = VALUE_RANGE.get(metric, (-np.inf, np.inf))  # a band past +-1 would show impossible values
        ax.fill_between(xs, np.clip(stats["mean"] - stats["std"], low, high), np.clip(stats["mean"] + stats["std"], low, high),
                        color=line.get_color(), alpha=0.2, linewidth=0)
    if fraction:
        ax.set_xscale("log")
        ax.set_xlabel(f"fraction of training {x}s (log scale)")
    else:
        ax.set_xlabel("finetuning step" if x == "step" else x)
    ax.set_ylabel(f"{metric.replace('_', ' ')} with ground truth")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", title=f"mean, band \u00b11 std over {over}s", title_fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def compare_bars(frame: pd.DataFrame, metric: str = "spearman", title: str | None = None) -> Figure:
    """Horizontal bars of ``metric`` per estimator, one panel per dataset (CIs when present)."""
    datasets = list(dict.fromkeys(frame["dataset"]))
    if not datasets:
        raise HarnessError("no results to plot")
    estimators = list(dict.fromkeys(frame["estimator"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets) + 1.2, 0.32 * len(estimators) + 1.4),
                             sharey=True, constrained_layout=True, squeeze=False)
    y = np.arange(len(estimators))
    for ax, dataset in zip(axes[0], datasets):
        part = frame[frame["dataset"] == dataset].set_index("estimator").reindex(estimators)
        values = part[metric].to_numpy(np.float64)
        err = None
        if f"{metric}_ci_low" in part:
            err = np.vstack([values - part[f"{metric}_ci_low"].to_numpy(), part[f"{metric}_ci_high"].to_numpy() - values])
        ax.barh(y, values, xerr=err, color=np.where(values >= 0, "tab:blue", "tab:red"), alpha=0.8, capsize=2)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel(metric.replace("_", " "))
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, estimators)
    axes[0][0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# (history key, panel title, integer-valued) of the panels of :func:`plot_search_trajectories` after
# the truth panel; the last two are drawn only when some history records them
_TRAJECTORY_PANELS: tuple[tuple[str, str, bool], ...] = (
    ("n_skip", "skip_connect edges of the derived cell", True),
    ("depth", "depth of the derived cell", True),
    ("hessian_eigenvalue", "dominant eigenvalue of the Hessian in alpha", False),
)


def plot_search_trajectories(histories: Mapping[str, Sequence[Mapping[str, Any]]], out_path: str | Path,
                             truth_column: str = "cifar10_test_200") -> list[Path]:
    """Per epoch of each search, the derived arch's ``truth_column`` accuracy, its ``n_skip``, its
    ``depth`` and the ``hessian_eigenvalue`` (the last two panels only when some history records
    them), one line per label of ``histories`` (e.g. ``"darts-1 seed 0"``: the per-epoch dicts of a
    ``search-seed{seed}.json``, each with its ``epoch``); writes ``out_path`` .png and .pdf
    (:func:`save`) and returns both paths. An epoch missing an optional key, or holding None there,
    is a gap in its line."""
    if not histories:
        raise HarnessError("no search histories to plot")
    keys = ["epoch", truth_column, "n_skip"]
    panels = [(truth_column, f"derived arch: {truth_column} (%)", False), _TRAJECTORY_PANELS[0]]
    panels += [panel for panel in _TRAJECTORY_PANELS[1:]
               if any(panel[0] in entry for history in histories.values() for entry in history)]
    for name, history in histories.items():
        if not history:
            raise HarnessError(f"search history {name!r} has no epochs")
        for i, entry in enumerate(history):
            missing = [key for key in keys if entry.get(key) is None]
            if missing:
                raise HarnessError(f"search history {name!r}, entry {i}: no {', '.join(missing)}; every epoch records "
                                   f"{', '.join(keys)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), constrained_layout=True, squeeze=False)
    colors = plt.get_cmap("tab10" if len(histories) <= 10 else "tab20")
    for n, (name, history) in enumerate(histories.items()):
        epochs = np.array([entry["epoch"] for entry in history], dtype=np.float64)
        for ax, (key, _, _) in zip(axes[0], panels):
            values = np.array([np.nan if entry.get(key) is None else entry[key] for entry in history], dtype=np.float64)
            # markers keep an epoch between two gaps visible
            ax.plot(epochs, values, color=colors(n % colors.N), linewidth=1.4, marker="o", markersize=2.5, label=name)
    for ax, (_, title, integer) in zip(axes[0], panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if integer:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    return save(fig, out_path)


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``; returns both paths.

    The suffixes are appended, so dots in the name stay ("fig4.4a-spearman" -> "fig4.4a-spearman.png");
    a stem that already ends in ".png" or ".pdf" loses that ending first. Each file is written beside
    its destination and renamed over it (:func:`~harness.atomic.write_atomic`), so a reader never sees
    half a figure. No creation date or software version is embedded, so the same figure gives the same
    bytes (re-running an experiment leaves committed results unchanged)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    name = stem.name.removesuffix(".png").removesuffix(".pdf")
    paths = [stem.parent / f"{name}.png", stem.parent / f"{name}.pdf"]
    write_atomic(paths[0], lambda tmp: fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None}))
    write_atomic(paths[1], lambda tmp: fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None}))
    plt.close(fig)
    return paths
