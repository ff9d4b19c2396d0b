"""Tables and figures of a correlation run: what they mark, bold, label and clip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import plots, tables
from harness.cli import main
from harness.errors import HarnessError
from harness.experiments.config import parse_config
from harness.experiments.correlation import load_results, run_correlation

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import write_curve_store


def _run(values: dict[str, list[list[float]]]) -> pd.DataFrame:
    """A correlation-run frame: estimator -> [repetition][epoch] spearman values (epochs 1..E)."""
    rows = []
    for estimator, reps in values.items():
        for rep, series in enumerate(reps):
            for epoch, value in enumerate(series, start=1):
                rows.append({"estimator": estimator, "epoch": epoch, "repetition": rep, "spearman": value,
                             "n_archs": 350, "k": 10})
    return pd.DataFrame(rows)


def test_an_estimator_that_is_the_truth_is_marked_and_never_bolded_as_best():
    """NB301's ValAcc at epoch 98 is the truth itself (rho = 1 in every repetition); it was bolded as best."""
    run = _run({"ValAcc": [[0.4, 1.0], [0.5, 1.0]], "ValLoss": [[0.3, 0.88], [0.4, 0.87]]})
    text = tables.correlation_table(run, epochs=[1, 2])
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| Val")}
    assert "1.000 (0.000)\u2020" in lines["ValAcc"] and "**1.000" not in text
    assert "**0.875 (0.005)**" in lines["ValLoss"]  # the best real estimator at epoch 2
    assert "**0.450 (0.050)**" in lines["ValAcc"]  # a perfect score elsewhere does not bar it from epoch 1
    assert "\u2020 ranks exactly as the ground truth in every repetition" in text
    latex = tables.correlation_table(run, epochs=[1, 2], style="latex")
    assert "1.000 (0.000)$^\\dagger$" in latex and "\\par\\smallskip $^\\dagger$ ranks exactly" in latex
    # a single repetition at 1.0 among others is a (lucky) prediction, not the truth: no mark
    run = _run({"ValAcc": [[0.4, 1.0], [0.5, 0.99]], "ValLoss": [[0.3, 0.88], [0.4, 0.87]]})
    assert "\u2020" not in tables.correlation_table(run, epochs=[1, 2])


NB301_RUN = Path(__file__).resolve().parent.parent / "results" / "nb301-cifar10"


@pytest.mark.parametrize("metric", ["spearman", "kendall", "top_k", "precision_at_k"])
def test_the_nb301_truth_is_marked_in_every_metric_table_not_bolded(metric):
    """Pitfall: ValAcc at NB301's epoch 98 is the truth itself (the surrogate's epoch-98 validation
    accuracy); the Spearman and Kendall tables marked it, but the top-k table bolded its 93.186 and the
    precision@k table its 1.000 as the best estimator."""
    results = load_results(NB301_RUN)  # the committed run, read only
    text = tables.correlation_table(results, metric, epochs=[49, 98])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| estimator")}
    final = results[results["epoch"] == 98].groupby("estimator", sort=False)[metric]
    final = pd.DataFrame({"mean": final.mean(), "std": final.std(ddof=0)})
    # marked, not bolded at epoch 98 ...
    assert rows["ValAcc"][1] == f"{final.loc['ValAcc', 'mean']:.3f} ({final.loc['ValAcc', 'std']:.3f})\u2020 |"
    best = final.drop("ValAcc")["mean"].round(3).max()  # ... the best of the real predictions is
    assert all(("**" in rows[est][1]) == (round(final.loc[est, "mean"], 3) == best) for est in final.index.drop("ValAcc"))
    assert "\u2020" not in rows["ValAcc"][0]  # epoch 49: a prediction like any other
    assert "\u2020 ranks exactly as the ground truth in every repetition" in text


def test_a_run_that_ranks_as_the_truth_in_one_repetition_only_is_not_marked_in_any_table():
    run = _run({"ValAcc": [[0.4, 1.0], [0.5, 0.99]], "ValLoss": [[0.3, 0.88], [0.4, 0.87]]})
    run["top_k"] = 90 + run["spearman"]
    assert "\u2020" not in tables.correlation_table(run, "top_k", epochs=[2])
    assert "| ValAcc | **90.995 (0.005)** |" in tables.correlation_table(run, "top_k", epochs=[2])
    kendall_only = run.rename(columns={"spearman": "kendall"})
    kendall_only.loc[kendall_only["estimator"] == "ValAcc", "kendall"] = [0.4, 1.0, 0.5, 1.0]
    assert "| ValAcc | 90.995 (0.005)\u2020 |" in tables.correlation_table(kendall_only, "top_k", epochs=[2])


def test_a_perfect_ranking_of_a_handful_of_archs_is_not_called_the_truth():
    run = _run({"ValAcc": [[0.4, 1.0], [0.5, 1.0]], "ValLoss": [[0.3, 0.88], [0.4, 0.87]]})
    run["n_archs"] = 5  # 1 in 5! = 120 random orders is perfect: chance, not identity
    text = tables.correlation_table(run, epochs=[1, 2])
    assert "\u2020" not in text and "**1.000 (0.000)**" in text


def test_top_k_of_a_loss_truth_bolds_the_lowest():
    """top_k is the truth's mean over the chosen archs; for a loss truth the best is the lowest."""
    run = _run({"SoTL": [[0.5, 0.9]], "ValLoss": [[0.4, 0.8]]})
    run["top_k"] = run["spearman"]  # pretend: the mean validation loss of the top-k archs
    assert "| ValLoss | **0.800 (0.000)** |" in tables.correlation_table(run, "top_k", epochs=[2], truth_lower_is_better=True)
    assert "| SoTL | **0.900 (0.000)** |" in tables.correlation_table(run, "top_k", epochs=[2])


def test_plot_labels_an_estimator_drawn_over_an_identical_one_and_clips_bands_to_the_valid_range():
    identical = [[0.5, 1.0], [0.7, 1.0], [0.7, 0.1]]  # epoch 2: mean 0.7, std 0.42: unclipped, the band passes 1
    run = _run({"ValLoss": identical, "SoVL-E": identical, "SoVL": [[0.1, 0.2], [0.2, 0.3], [0.1, 0.2]]})
    fig = plots.correlation_vs_epoch(run)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["ValLoss", "SoVL-E (= ValLoss, drawn over it)", "SoVL"]
    assert ax.get_legend().get_title().get_text() == "mean, band \u00b11 std over repetitions"
    tops = [collection.get_paths()[0].vertices[:, 1].max() for collection in ax.collections]
    assert max(tops) <= 1.0  # no band past rho = 1
    with pytest.raises(HarnessError, match=r"unknown plot metric 'n_archs'; valid: 'spearman'"):
        plots.correlation_vs_epoch(run, metric="n_archs")
    plots.plt.close(fig)


def test_bands_past_one_are_clipped_for_correlations_only():
    # epoch 2: 1.0, 1.0, 0.1 -> mean 0.7, std 0.424: an unclipped band would reach 1.124
    run = _run({"ValAcc": [[0.9, 1.0], [0.9, 1.0], [0.9, 0.1]]})
    run["top_k"] = run["spearman"] * 100
    top = plots.correlation_vs_epoch(run).axes[0].collections[0].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(1.0)
    top_k = plots.correlation_vs_epoch(run, metric="top_k").axes[0].collections[0].get_paths()[0].vertices[:, 1].max()
    assert top_k == pytest.approx(70 + 100 * np.std([1.0, 1.0, 0.1]))  # accuracy bands are not clipped
    plots.plt.close("all")


def test_default_table_epochs_are_those_nearest_to_fractions_of_the_last_epoch():
    """Without ``epochs``, the columns are the run's epochs nearest to 5/10/25/50/100 % of its last
    epoch (not of the number of recorded epochs), each listed once."""
    recorded = [1, 2, 4, 8, 16, 32, 100]
    # last epoch 100 -> targets 5, 10, 25, 50, 100; nearest recorded: 4 (|4-5| = 1 < |8-5| = 3),
    # 8 (2 < 6), 32 (7 < 9), 32 (18 < 34), 100 -> columns 4, 8, 32, 100
    run = _run({"SoTL": [[e / 1000 for e in recorded]]})
    run["epoch"] = run["epoch"].map(dict(enumerate(recorded, start=1)))  # the cell value names its epoch
    text = tables.correlation_table(run)
    assert "| estimator | epoch 4 | epoch 8 | epoch 32 | epoch 100 |" in text
    assert "0.004 (0.000)" in text and "0.032 (0.000)" in text and "0.016" not in text
    # 12 epochs: targets 0.6, 1.2, 3, 6, 12 -> nearest 1, 1, 3, 6, 12 -> columns 1, 3, 6, 12
    run = _run({"SoTL": [[e / 1000 for e in range(1, 13)]]})
    assert "| estimator | epoch 1 | epoch 3 | epoch 6 | epoch 12 |" in tables.correlation_table(run)


def test_cli_table_of_a_run_with_a_loss_truth_bolds_the_lowest_top_k(tmp_path):
    """``harness table`` reads ``truth_minimize`` from run.json: with a loss truth the best top-k (the
    mean true loss of the estimator's picks) is the lowest."""
    store = write_curve_store(tmp_path / "store", n_epochs=12)
    cfg = parse_config({"name": "loss-truth", "benchmark": "nb201", "dataset": "cifar10-valid", "schedule": "200",
                        "estimators": ["SoTL", "Params"], "truth": {"split": "x-valid", "metric": "loss"},
                        "sampling": {"n_archs": 60, "repetitions": 2, "seed": 0}, "ranking": {"metrics": ["top_k"], "k": 5}})
    run = run_correlation(cfg, tmp_path, root=store, progress=False).out_dir
    assert json.loads((run / "run.json").read_text())["truth_minimize"] is True
    means = pd.read_parquet(run / "results.parquet").query("epoch == 12").groupby("estimator")["top_k"].mean()
    lowest, highest = means.idxmin(), means.idxmax()
    assert round(means[lowest], 3) < round(means[highest], 3)  # the printed cells differ
    assert main(["table", str(run), "--metric", "top_k", "--epochs", "12"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line for line in (run / "table-top_k.md").read_text().splitlines()
            if line.startswith(("| SoTL ", "| Params "))}
    assert f"**{means[lowest]:.3f}" in rows[lowest] and "**" not in rows[highest]
