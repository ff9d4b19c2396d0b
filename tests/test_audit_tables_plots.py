"""Tables, figures and TOML reading, pinned where a mutation audit found that no test noticed a change:
the table layout a reader copies into a paper, which cell is bold or marked, what a figure's axes and
error bars show, what a saved figure embeds, and which config values are refused.

Inputs are small real-format frames (a correlation run's tidy results, the committed NB201 zero-cost
comparison in ``results/compare-nb201/compare.csv``); expected values are computed here with numpy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from harness import plots, ranking, tables
from harness.errors import HarnessError
from harness.tomlfile import read_toml, typed

REPO = Path(__file__).resolve().parent.parent
COMPARE_CSV = REPO / "results" / "compare-nb201" / "compare.csv"


def _run(values: dict[str, list[list[float]]], metric: str = "spearman", n_archs: int = 350) -> pd.DataFrame:
    """A correlation run's tidy frame: estimator -> [repetition][epoch] values of ``metric`` (epochs 1..E)."""
    rows = [{"estimator": est, "epoch": epoch, "repetition": rep, "n_archs": n_archs, "k": 10, metric: value}
            for est, reps in values.items() for rep, series in enumerate(reps) for epoch, value in enumerate(series, start=1)]
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- tables


def test_markdown_table_has_its_caption_first_and_right_aligned_number_columns() -> None:
    run = _run({"ValLoss": [[0.2, 0.5], [0.4, 0.7]], "SoTL": [[0.1, 0.5], [0.3, 0.5]]})
    lines = tables.correlation_table(run, epochs=[1, 2]).splitlines()
    assert lines[0] == "**spearman: mean (std) over repetitions**" and lines[1] == ""
    assert lines[2] == "| estimator | epoch 1 | epoch 2 |"
    assert lines[3] == "|---|---:|---:|"
    # rows follow the run's estimator order (the config's), not the alphabet
    assert lines[4].startswith("| ValLoss |") and lines[5].startswith("| SoTL |")
    assert lines[4] == "| ValLoss | **0.300 (0.100)** | **0.600 (0.100)** |"  # np.mean/np.std of [0.2, 0.4], [0.5, 0.7]
    assert lines[5] == "| SoTL | 0.200 (0.100) | 0.500 (0.000) |"


def test_latex_table_escapes_underscores_and_percent_and_has_one_column_spec_per_column() -> None:
    means = pd.DataFrame({"top_k": [0.5, 0.7], "5% of T": [0.1, 0.2]}, index=["grad_norm", "l2_norm"])
    latex = tables.render(means, style="latex", caption="top_k at 5%", row_label="estimator").splitlines()
    assert "\\caption{top\\_k at 5\\%}" in latex
    assert "\\begin{tabular}{lrr}" in latex
    assert "estimator & top\\_k & 5\\% of T \\\\" in latex
    assert "grad\\_norm & 0.500 & 0.100 \\\\" in latex
    assert "l2\\_norm & \\textbf{0.700} & \\textbf{0.200} \\\\" in latex


def test_a_missing_std_prints_the_mean_alone() -> None:
    means = pd.DataFrame({"a": [0.5, 0.25]}, index=["x", "y"])
    stds = pd.DataFrame({"a": [np.nan, 0.05]}, index=["x", "y"])
    text = tables.render(means, stds)
    assert "| x | **0.500** |" in text and "| y | 0.250 (0.050) |" in text and "nan" not in text


def test_an_all_nan_column_is_n_a_without_a_bold_cell_or_a_warning() -> None:
    means = pd.DataFrame({"a": [np.nan, np.nan], "b": [0.1, 0.2]}, index=["x", "y"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = tables.render(means)
    assert "| x | n/a | 0.100 |" in text and "| y | n/a | **0.200** |" in text


@pytest.mark.parametrize(("call", "named"), [
    (lambda: tables.render(pd.DataFrame({"a": [0.5]}, index=["x"]), pd.DataFrame({"b": [0.1]}, index=["x"])),
     "std table must have the same rows and columns"),
    (lambda: tables.render(pd.DataFrame({"a": [0.5]}, index=["x"]), pd.DataFrame({"a": [0.1]}, index=["y"])),
     "std table must have the same rows and columns"),
    (lambda: tables.render(pd.DataFrame({"a": [0.5]}), style="html"), "unknown table style 'html'; valid: 'markdown', 'latex'"),
    (lambda: tables.render(pd.DataFrame({"a": [0.5]}), digits=True), "must be an integer >= 0, got True"),
    (lambda: tables.correlation_table(_run({"SoTL": [[0.1, 0.2]]}), "bogus"), "unknown table metric 'bogus'; valid: 'n_archs', 'k', 'spearman'"),
    (lambda: tables.correlation_table(_run({"SoTL": [[0.1, 0.2]]}), epochs=[1, 5]), "epoch 5 is not in this run; epochs: 1"),
])
def test_bad_table_requests_are_named_errors(call, named: str) -> None:
    with pytest.raises(HarnessError, match=named.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_ten_archs_ranked_exactly_as_the_truth_are_marked_but_nine_are_not() -> None:
    values = {"ValAcc": [[0.5, 1.0], [0.6, 1.0]], "SoTL": [[0.3, 0.8], [0.4, 0.9]]}
    assert "1.000 (0.000)\u2020" in tables.correlation_table(_run(values, n_archs=10), epochs=[2])
    text = tables.correlation_table(_run(values, n_archs=9), epochs=[2])
    assert "\u2020" not in text and "**1.000 (0.000)**" in text


def test_a_perfect_precision_at_k_is_a_result_bolded_not_a_truth_mark() -> None:
    """Only rank correlations of exactly 1 mean "the estimator is the truth"; precision@k = 1 means
    the estimator found every true top-k arch."""
    run = _run({"ValAcc": [[0.6, 1.0], [0.7, 1.0]], "SoTL": [[0.5, 0.8], [0.4, 0.9]]}, metric="precision_at_k")
    run["spearman"] = 0.9  # a good prediction, not the truth's own ranking
    text = tables.correlation_table(run, "precision_at_k", epochs=[2])
    assert "\u2020" not in text and "| ValAcc | **1.000 (0.000)** |" in text and "cannot be recognised" not in text


def test_a_run_without_a_rank_correlation_says_the_truth_cannot_be_recognised() -> None:
    run = _run({"ValAcc": [[0.6, 1.0], [0.7, 1.0]], "SoTL": [[0.5, 0.8], [0.4, 0.9]]}, metric="precision_at_k")
    text = tables.correlation_table(run, "precision_at_k", epochs=[2])
    assert "\u2020" not in text and "| ValAcc | **1.000 (0.000)** |" in text
    assert text.endswith("\n\nThis run recorded no spearman or kendall column, so an estimator that is the ground truth "
                         "itself cannot be recognised here: none is marked.")


def test_reference_columns_take_their_own_digits_and_are_never_bold() -> None:
    means = pd.DataFrame({"ours": [0.7868, 0.7655], "theirs": [0.77, 0.75], "ours - theirs": [0.0168, 0.0157]},
                         index=["nwot", "jacov"])
    text = tables.render(means, column_digits={"theirs": 2}, no_best=["theirs", "ours - theirs"], note="theirs: a paper")
    assert "| nwot | **0.787** | 0.77 | 0.017 |" in text and "| jacov | 0.765 | 0.75 | 0.016 |" in text
    assert text.endswith("\n\ntheirs: a paper")
    latex = tables.render(means, style="latex", no_best=["theirs"], note="100% theirs")
    assert "nwot & \\textbf{0.787} & 0.770 & \\textbf{0.017} \\\\" in latex and "\\par\\smallskip 100\\% theirs" in latex
    with pytest.raises(HarnessError, match="unknown no_best column 'mine'; valid: 'ours', 'theirs', 'ours - theirs'"):
        tables.render(means, no_best=["mine"])
    with pytest.raises(HarnessError, match="unknown column_digits column 'mine'"):
        tables.render(means, column_digits={"mine": 2})
    with pytest.raises(HarnessError, match="must be an integer >= 0, got -2"):
        tables.render(means, column_digits={"theirs": -2})


def test_a_loss_truth_reverses_only_top_k_not_the_correlations() -> None:
    run = _run({"SoTL": [[0.5, 0.9]], "ValLoss": [[0.4, 0.8]]})
    text = tables.correlation_table(run, "spearman", epochs=[2], truth_lower_is_better=True)
    assert "| SoTL | **0.900 (0.000)** |" in text and "| ValLoss | 0.800 (0.000) |" in text


# --------------------------------------------------------------------------------------------- plots


def test_correlation_plot_axes_labels_and_markers() -> None:
    run = _run({"SoTL": [[0.1, 0.3, 0.5, 0.9], [0.3, 0.5, 0.5, 0.8], [0.2, 0.1, 0.2, 0.7]]})
    ax = plots.correlation_vs_epoch(run).axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_xscale() == "linear" and ax.get_ylabel() == "spearman with ground truth"
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3, 4] and line.get_marker() == "o"  # a sparse series shows its points
    # the line is the mean over repetitions (not the median: 0.3 vs 0.2 at epoch 2)
    assert np.allclose(line.get_ydata(), [0.2, 0.3, 0.4, 0.8])
    run["epoch"] = run["epoch"].map({1: 1, 2: 2, 3: 4, 4: 8})  # recorded epochs need not be 1..E
    frac = plots.correlation_vs_epoch(run, fraction=True).axes[0]
    assert frac.get_xlabel() == "fraction of training epochs (log scale)" and frac.get_xscale() == "log"
    assert np.allclose(frac.get_lines()[0].get_xdata(), [1 / 8, 2 / 8, 4 / 8, 1.0])  # epoch / last epoch
    long = _run({"SoTL": [list(np.linspace(0.1, 0.9, 12))]})
    assert plots.correlation_vs_epoch(long).axes[0].get_lines()[0].get_marker() in (None, "None", "")
    steps = _run({"SoTL": [[0.1, 0.3]]}).rename(columns={"epoch": "step", "repetition": "seed"})
    assert plots.correlation_vs_epoch(steps, x="step", over="seed").axes[0].get_xlabel() == "finetuning step"
    plots.plt.close("all")


def test_precision_at_k_bands_are_clipped_to_zero_and_one() -> None:
    run = _run({"SoTL": [[0.0, 0.1], [0.0, 0.9], [0.6, 0.1]]}, metric="precision_at_k")  # epoch 1: mean 0.2, std 0.28
    ax = plots.correlation_vs_epoch(run, "precision_at_k").axes[0]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.0) and band.max() <= 1.0
    assert ax.get_ylabel() == "precision at k with ground truth"
    plots.plt.close("all")


def test_nothing_to_plot_is_a_named_error() -> None:
    with pytest.raises(HarnessError, match="no results to plot"):
        plots.correlation_vs_epoch(_run({"SoTL": [[0.1]]}).iloc[:0])
    with pytest.raises(HarnessError, match="no results to plot"):
        plots.compare_bars(pd.read_csv(COMPARE_CSV).iloc[:0])


def test_compare_bars_of_the_committed_nb201_results() -> None:
    frame = pd.read_csv(COMPARE_CSV)
    estimators = list(dict.fromkeys(frame["estimator"]))
    # the later panels' rows in another order: each bar must still sit on its estimator's tick
    first = frame[frame["dataset"] == frame["dataset"].iloc[0]]
    shuffled = pd.concat([first, frame.drop(first.index).iloc[::-1]])
    datasets = list(dict.fromkeys(shuffled["dataset"]))  # panels in the frame's order
    fig = plots.compare_bars(shuffled, title="nb201: Spearman rho")
    assert fig._suptitle.get_text() == "nb201: Spearman rho"
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == datasets and all(ax.get_xlabel() == "spearman" for ax in axes)
    assert [t.get_text() for t in axes[0].get_yticklabels()] == estimators and axes[0].yaxis_inverted()
    red, blue = mcolors.to_rgba("tab:red", 0.8), mcolors.to_rgba("tab:blue", 0.8)
    for ax, dataset in zip(axes, datasets):
        part = frame[frame["dataset"] == dataset].set_index("estimator").loc[estimators]
        bars = next(c for c in ax.containers if isinstance(c, BarContainer))
        assert np.allclose([bar.get_width() for bar in bars], part["spearman"])
        assert np.allclose([bar.get_y() + bar.get_height() / 2 for bar in bars], np.arange(len(estimators)))
        colors = [bar.get_facecolor() for bar in bars]
        assert colors == [red if v < 0 else blue for v in part["spearman"]]
        segments = bars.errorbar.lines[2][0].get_segments()
        assert np.allclose([s[:, 0].min() for s in segments], part["spearman_ci_low"])
        assert np.allclose([s[:, 0].max() for s in segments], part["spearman_ci_high"])
    assert any(v < 0 for v in frame["spearman"])  # plain is negative: the red branch is exercised
    plots.plt.close(fig)


def test_saved_figures_embed_no_date_or_version_and_close_the_figure(tmp_path: Path) -> None:
    def figure():
        return plots.correlation_vs_epoch(_run({"SoTL": [[0.1, 0.5], [0.2, 0.6]]}))

    fig = figure()
    paths = plots.save(fig, tmp_path / "new" / "dir" / "fig")  # the folder is created
    assert paths == [tmp_path / "new" / "dir" / "fig.png", tmp_path / "new" / "dir" / "fig.pdf"]
    assert fig.number not in plots.plt.get_fignums()  # closed: a long run does not pile up open figures
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and pdf.startswith(b"%PDF")
    assert b"Matplotlib" not in png and b"Software" not in png
    assert b"CreationDate" not in pdf and b"Matplotlib" not in pdf and b"Producer" not in pdf
    again = plots.save(figure(), tmp_path / "again")
    assert again[0].read_bytes() == png and again[1].read_bytes() == pdf


# ---------------------------------------------------------------------------------------------- TOML


def test_read_toml_names_a_missing_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"config file .*nope\.toml does not exist"):
        read_toml(tmp_path / "nope.toml")
    with pytest.raises(HarnessError, match="cannot read config file"):
        read_toml(tmp_path)  # a directory
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(HarnessError, match=r"bad\.toml is not valid TOML"):
        read_toml(bad)
    good = tmp_path / "good.toml"
    good.write_text('name = "x"\n[sampling]\nn_archs = 5\n')
    assert read_toml(good) == {"name": "x", "sampling": {"n_archs": 5}}


@pytest.mark.parametrize(("value", "hint", "minimum", "expected"), [
    (3, "float", None, 3.0),
    (1, "int", 1, 1),  # the minimum itself is valid
    (None, "int | None", None, None),
    ([1, 2], "tuple[int, ...]", 1, (1, 2)),
    (["a"], "tuple[str, ...] | None", None, ("a",)),
    (False, "bool", None, False),
])
def test_typed_accepts_and_converts(value, hint: str, minimum, expected) -> None:
    got = typed(value, hint, "where", minimum)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("value", "hint", "minimum", "named"), [
    (True, "int", None, "where must be an integer, got True"),
    (True, "float", None, "where must be a number, got True"),
    (0, "int", 1, "where must be an integer >= 1, got 0"),
    ([1, 0], "tuple[int, ...]", 1, "where entry must be an integer >= 1, got 0"),
    ("ab", "tuple[str, ...]", None, "where must be a list of str, got 'ab'"),
    (None, "int", None, "where must be an integer, got None"),
    (5, "str", None, "where must be a string, got 5"),
    ("yes", "bool", None, "where must be true or false, got 'yes'"),
])
def test_typed_refuses_with_what_is_valid(value, hint: str, minimum, named: str) -> None:
    with pytest.raises(HarnessError, match=named.replace("[", r"\[")):
        typed(value, hint, "where", minimum)


# ------------------------------------------------------------------------- ranking helpers (CIs)


@pytest.mark.parametrize(("call", "named"), [
    (lambda: ranking.summarize(np.zeros((0, 3)), ci=0.95), "no repetitions to summarize"),
    (lambda: ranking.summarize(np.ones((4, 2)), ci=1.5), r"ci must be in \(0, 1\), got 1.5"),
    (lambda: ranking.bootstrap(np.arange(5.0), np.arange(5.0), "spearman", higher_is_better=True, level=0.0),
     r"level must be in \(0, 1\), got 0.0"),
    (lambda: ranking.bootstrap(np.arange(10.0).reshape(2, 5), np.arange(10.0).reshape(2, 5), "spearman", higher_is_better=True),
     r"one truth \[N\], got shapes \(2, 5\) and \(2, 5\)"),
])
def test_ci_helpers_refuse_an_empty_sample_an_impossible_level_or_several_truths(call, named: str) -> None:
    with pytest.raises(HarnessError, match=named):
        call()


def test_an_epoch_asked_for_twice_is_one_column_not_a_crash() -> None:
    run = _run({"SoTL": [[0.1, 0.2], [0.3, 0.4]]})
    assert tables.correlation_table(run, epochs=[2, 2]) == tables.correlation_table(run, epochs=[2])


def test_a_dotted_figure_name_keeps_its_dots(tmp_path: Path) -> None:
    """with_suffix would have written fig4.png for the stem fig4.4a-spearman (a thesis figure name)."""
    import matplotlib.pyplot as plt

    paths = plots.save(plt.figure(), tmp_path / "fig4.4a-spearman")
    assert [p.name for p in paths] == ["fig4.4a-spearman.png", "fig4.4a-spearman.pdf"]
    assert all(p.is_file() for p in paths)
    assert [p.name for p in plots.save(plt.figure(), tmp_path / "curves.png")] == ["curves.png", "curves.pdf"]
