"""The zero-cost tables (real NASLib records) and the `harness compare` main job."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import tables
from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import compare
from harness.experiments.compare import compare_zero_cost
from harness.spaces import nb201 as space
from harness.zerocost import embedded_table, open_zerocost, read_naslib_json

FIXTURES = Path(__file__).parent / "fixtures" / "zerocost"


@pytest.mark.parametrize("bench_name,file", [("nb201", "naslib-zc-nasbench201-sample.json"),
                                            ("nb101", "naslib-zc-nasbench101-sample.json"),
                                            ("nb301", "naslib-zc-nasbench301-sample.json")])
def test_real_records_parse_and_equal_the_embedded_rows(bench_name: str, file: str) -> None:
    sample = read_naslib_json(FIXTURES / file, bench_name)
    embedded = embedded_table(bench_name).set_index(["dataset", "arch"])
    raw = json.loads((FIXTURES / file).read_text())
    for _, row in sample.iterrows():
        full = embedded.loc[(row["dataset"], row["arch"])]
        for column in sample.columns.drop(["dataset", "arch"]):
            a, b = row[column], full[column]
            assert (pd.isna(a) and pd.isna(b)) or a == b, (row["arch"], column)
    if bench_name == "nb201":  # the scores are the records' {"score": ...} values, verbatim
        record = raw["cifar100"][sample[sample["dataset"] == "cifar100"]["arch"].iloc[0]]
        got = sample[sample["dataset"] == "cifar100"].iloc[0]
        assert got["synflow"] == record["synflow"]["score"] and got["val_accuracy"] == record["val_accuracy"]


def test_missing_synflow_stays_missing() -> None:
    sample = read_naslib_json(FIXTURES / "naslib-zc-nasbench201-sample.json", "nb201")
    assert sample["synflow"].isna().sum() == 1


def test_nb201_naslib_tuples_map_to_real_arch_strings_and_indices() -> None:
    frame = embedded_table("nb201")
    from harness.adapters.nb201 import embedded_table as nb201_table

    official = nb201_table()["arch_str"].tolist()
    for _, row in frame.iterrows():
        assert official[row["index"]] == row["arch_str"]
        space.arch_to_ops(row["arch_str"])  # a well-formed arch string
    # spot check against the documented NASLib convention, decoded by hand:
    # (0, 2, 3, 2, 3, 1) = edges (1,2) skip, (1,3) conv3x3, (1,4) conv1x1, (2,3) conv3x3, (2,4) conv1x1, (3,4) none
    row = frame[frame["arch"] == "(0, 2, 3, 2, 3, 1)"].iloc[0]
    assert row["arch_str"] == "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
    assert frame.groupby("dataset").size().to_dict() == {"cifar10": 725, "cifar100": 725, "ImageNet16-120": 724}


def test_a_file_in_the_wrong_format_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HarnessError, match="cannot read"):
        read_naslib_json(bad, "nb201")
    bad.write_text(json.dumps({"cifar10": {"(0, 0, 0, 0, 0, 0)": {"synflow": 1.0}}}))
    with pytest.raises(HarnessError, match="val_accuracy"):
        read_naslib_json(bad, "nb201")
    with pytest.raises(HarnessError, match="nasbench101"):
        read_naslib_json(FIXTURES / "naslib-zc-nasbench201-sample.json", "nb101")


def test_compare_agrees_with_scipy_on_the_raw_table() -> None:
    frame = compare_zero_cost("nb201", n_boot=50).scores
    raw = embedded_table("nb201")
    for dataset in ("cifar10", "ImageNet16-120"):
        part = raw[raw["dataset"] == dataset].dropna()
        for proxy in ("nwot", "synflow", "params"):
            row = frame[(frame["dataset"] == dataset) & (frame["estimator"] == {"params": "Params"}.get(proxy, proxy))].iloc[0]
            assert row["spearman"] == pytest.approx(stats.spearmanr(part[proxy], part["val_accuracy"]).statistic, abs=1e-12)
            assert row["kendall"] == pytest.approx(stats.kendalltau(part[proxy], part["val_accuracy"]).statistic, abs=1e-12)
            top = part.nlargest(10, proxy, keep="all")
            if len(top) == 10:
                assert row["top_k"] == pytest.approx(top["val_accuracy"].mean())
            assert row["spearman_ci_low"] <= row["spearman"] <= row["spearman_ci_high"]
    counts = frame.groupby("dataset")["n_archs"].first().to_dict()
    assert counts == {"cifar10": 724, "cifar100": 725, "ImageNet16-120": 724}  # cifar10: one arch lacks synflow
    assert frame.groupby("dataset")["estimator"].count().eq(12).all()


def test_zero_cost_benchmark_resolves_rows_and_encodings() -> None:
    zc = open_zerocost("nb301")
    arch = zc.archs[3]
    assert zc.resolve(arch).tolist() == [3]
    with pytest.raises(HarnessError, match="not in the nb301-zc table"):
        zc.resolve("[[(0, 0)]]")
    assert zc.capabilities().n_archs == 500


def test_cli_compare_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--out", str(tmp_path), "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        assert f"nb201 {dataset}:" in text
    out = tmp_path / "compare-nb201"
    for name in ("compare.parquet", "compare.csv", "compare.md", "compare.tex", "compare.png", "compare.pdf"):
        assert (out / name).is_file()
    assert main(["compare", "--benchmark", "nb101", "--out", str(tmp_path), "--bootstrap", "20", "--no-plot"]) == 0
    assert main(["compare", "--benchmark", "nb101", "--dataset", "cifar100", "--out", str(tmp_path)]) == 2
    assert "unknown dataset of the nb101-zc table 'cifar100'; valid: 'cifar10'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # not a dataset of any table: argparse names the choices
        main(["compare", "--dataset", "cifar-10", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'cifar-10' (choose from 'cifar10', 'cifar100', 'ImageNet16-120')" in capsys.readouterr().err


def test_table_renderer_bolds_the_best_per_column() -> None:
    means = pd.DataFrame({"a": [0.5, 0.7, 0.7], "b": [0.2, np.nan, 0.1]}, index=["x", "y", "z"])
    stds = pd.DataFrame({"a": [0.01, 0.02, 0.03], "b": [0.0, np.nan, 0.1]}, index=["x", "y", "z"])
    md = tables.render(means, stds, digits=2)
    assert "| y | **0.70 (0.02)** | n/a |" in md and "| z | **0.70 (0.03)** | 0.10 (0.10) |" in md
    assert "| x | 0.50 (0.01) | **0.20 (0.00)** |" in md
    low = tables.render(means, None, digits=2, lower_is_better=["b"], style="latex")
    assert "\\textbf{0.10}" in low and "\\textbf{0.70}" in low


def test_table_bolds_the_cell_that_prints_best_where_np_round_and_the_format_disagree() -> None:
    """Pitfall: the best was found with np.round (0.6375 -> 0.638) but cells printed with the format
    (0.637), so no cell matched and none was bold."""
    md = tables.render(pd.DataFrame({"spearman": [0.6375, 0.5]}, index=["A", "B"]))
    assert "| A | **0.637** |" in md and "| B | 0.500 |" in md


def test_table_with_negative_digits_raises_naming_the_valid_range() -> None:
    with pytest.raises(HarnessError, match="digits .* must be an integer >= 0, got -1"):
        tables.render(pd.DataFrame({"a": [0.5]}), digits=-1)


@pytest.mark.parametrize("flags,fragment", [(["--seed", "-1"], "seed"), (["--bootstrap", "-3"], "--bootstrap"),
                                            (["--bootstrap", "0"], "--bootstrap"),
                                            # once "only 500 archs have every value", blaming the table
                                            (["--benchmark", "nb301", "--k", "501"], "top-k needs 1 <= k <= number of archs (500), got k=501")])
def test_cli_compare_negative_seed_or_no_bootstrap_draws_exit_2_with_the_fault(
        flags: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Pitfall: these ended in a numpy traceback, or (--bootstrap 0) exited 0 with NaN CIs."""
    assert main(["compare", "--out", str(tmp_path), "--no-plot", *flags]) == 2
    assert fragment in capsys.readouterr().err


# ---------------------------------------------------------------------- what compare tells a reader

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "results" / "compare-nb201"
# NAS-Bench-Suite-Zero, Fig. 6 (Krishnakumar et al. 2022): Spearman rho on NB201, as the issue and README quote them.
NBSZ_FIG6 = {  # estimator: (cifar10, cifar100, ImageNet16-120)
    "nwot": (0.77, 0.80, 0.77), "jacov": (0.75, 0.71, 0.71), "Params": (0.72, 0.73, 0.69), "synflow": (0.73, 0.76, 0.75),
    "l2_norm": (0.68, 0.72, 0.69), "FLOPs": (0.69, 0.71, 0.67), "epe_nas": (0.70, 0.60, 0.33), "snip": (0.58, 0.63, 0.57),
    "grad_norm": (0.58, 0.63, 0.57), "grasp": (0.51, 0.54, 0.55), "fisher": (0.50, 0.54, 0.48),
    "plain": (-0.26, -0.21, -0.22), "zen": (0.35, 0.35, 0.39),
}
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _lacking_values() -> pd.DataFrame:
    """The embedded NB201 rows that lack some estimator's value, found here from the raw table."""
    raw = embedded_table("nb201")
    scores = [c for c in raw.columns if c not in ("dataset", "arch", "index", "arch_str", "naslib_idx", "val_accuracy")]
    return raw[raw[scores].isna().any(axis=1)]


def test_compare_names_each_dropped_arch_and_the_estimator_it_lacks() -> None:
    """Pitfall: the cifar10 rows said "1 dropped" but not which arch or which estimator."""
    lacking = _lacking_values()
    assert len(lacking) == 1 and lacking["synflow"].isna().all()  # the README's one cifar10 arch without synflow
    dropped = compare_zero_cost("nb201", n_boot=20).dropped
    assert dropped.to_dict("records") == [{
        "benchmark": "nb201", "dataset": "cifar10", "index": int(lacking["index"].iloc[0]), "arch_str": lacking["arch_str"].iloc[0],
        "arch": lacking["arch"].iloc[0], "missing": "synflow"}]
    assert space.arch_to_ops(dropped["arch_str"].iloc[0])  # the official arch string of that index
    assert compare_zero_cost("nb301", n_boot=20).dropped.empty


def test_compare_rows_are_sorted_by_spearman_within_each_dataset() -> None:
    scores = compare_zero_cost("nb201", n_boot=20).scores
    assert list(dict.fromkeys(scores["dataset"])) == list(NB201_DATASETS)  # datasets stay in the table's order
    for _, part in scores.groupby("dataset", sort=False):
        assert part["spearman"].is_monotonic_decreasing and len(part) == 12
    assert scores.groupby("dataset", sort=False)["estimator"].first().eq("nwot").all()


def test_published_nbsz_figures_are_the_papers_and_only_for_nb201() -> None:
    reference = compare.published_spearman("nb201")
    got = {(row.estimator, row.dataset): row.nbsz_spearman for row in reference.itertuples()}
    want = {(est, d): v for est, values in NBSZ_FIG6.items() for d, v in zip(NB201_DATASETS, values)}
    assert got == want
    assert compare.published_spearman("nb101") is None and compare.published_spearman("nb301") is None
    with pytest.raises(HarnessError, match="unknown zero-cost benchmark 'nb999'; valid: 'nb101', 'nb201', 'nb301'"):
        compare.published_spearman("nb999")
    for bench_name in ("nb101", "nb301"):  # nothing published: no reference columns, not NaN ones
        assert not {"nbsz_spearman", "spearman_minus_nbsz"} & set(compare_zero_cost(bench_name, n_boot=20).scores)


def test_compare_sets_nbsz_beside_ours_with_the_difference() -> None:
    scores = compare_zero_cost("nb201", n_boot=20).scores
    for row in scores.itertuples():
        assert row.nbsz_spearman == NBSZ_FIG6[row.estimator][NB201_DATASETS.index(row.dataset)]
        assert row.spearman_minus_nbsz == pytest.approx(row.spearman - row.nbsz_spearman, abs=1e-15)


def test_cli_compare_prints_the_reference_the_dropped_arch_and_sorted_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--out", str(tmp_path), "--bootstrap", "20", "--no-plot"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "compare-nb201"
    markdown = (out / "compare.md").read_text()
    assert printed.startswith(markdown)
    lacking = _lacking_values().iloc[0]
    assert (f"Dropped, not imputed: NB201 index {lacking['index']} `{lacking['arch_str']}` (NASLib key {lacking['arch']}): "
            "no synflow.") in markdown.split("### nb201 cifar100")[0]
    assert markdown.count("Dropped, not imputed") == 1
    assert pd.read_csv(out / "dropped.csv").to_dict("records") == [{
        "benchmark": "nb201", "dataset": "cifar10", "index": lacking["index"], "arch_str": lacking["arch_str"],
        "arch": lacking["arch"], "missing": "synflow"}]
    assert markdown.count("| estimator | Spearman | NBSZ | ours - NBSZ | Kendall | top-10 acc | precision@10 |") == 3
    cifar10 = markdown.split("### nb201 cifar100")[0]
    rows = [line for line in cifar10.splitlines() if line.startswith("| ") and not line.startswith("| estimator")]
    assert rows[0] == "| nwot | **0.787** | 0.77 | 0.017 | **0.593** | 89.510 | 0.000 |"  # reference cells never bold
    assert [row.split(" | ")[0].strip("| ") for row in rows] == \
        compare_zero_cost("nb201", ["cifar10"], n_boot=20).scores["estimator"].tolist()
    assert "NBSZ also reports zen 0.35: not in the released table" in cifar10
    assert "NBSZ also reports zen 0.39" in markdown.split("### nb201 ImageNet16-120")[1]
    assert "(Krishnakumar et al. 2022), Fig. 6" in markdown
    latex = (out / "compare.tex").read_text()
    assert latex.count("estimator & Spearman & NBSZ & ours - NBSZ & Kendall") == 3 and "\\par\\smallskip NBSZ:" in latex
    csv = pd.read_csv(out / "compare.csv")
    assert {"nbsz_spearman", "spearman_minus_nbsz"} <= set(csv.columns)
    assert main(["compare", "--benchmark", "nb301", "--out", str(tmp_path), "--bootstrap", "20", "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "No published per-estimator figures are embedded for nb301: no reference column." in printed
    assert "| estimator | Spearman | Kendall | top-10 acc | precision@10 |" in printed and "NBSZ |" not in printed
    assert pd.read_csv(tmp_path / "compare-nb301" / "dropped.csv").empty  # written, with its header, when none is dropped


def test_cli_compare_default_folders_say_where_results_go(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Pitfall: --benchmark nb101/nb301 wrote into results/, which is committed, and nothing said so."""
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--benchmark", "nb101", "--bootstrap", "20", "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "runs" / "compare-nb101" / "compare.csv").is_file() and not (tmp_path / "results").exists()
    assert "results: runs/compare-nb101/compare.{parquet,csv,md,tex}, dropped archs: runs/compare-nb101/dropped.csv" in printed
    assert "(runs/ is ignored by git: only results/compare-nb201/ is committed" in printed
    assert "/runs/" in (REPO / ".gitignore").read_text().splitlines()  # the folder it names is the one git ignores
    assert main(["compare", "--bootstrap", "20", "--no-plot", "--dataset", "cifar100"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "results" / "compare-nb201" / "compare.csv").is_file() and "ignored by git" not in printed


@pytest.mark.parametrize("command,listed", [
    ("compare", ["--benchmark {nb101,nb201,nb301}", "--dataset {cifar10,cifar100,ImageNet16-120}",
                 "results/ for nb201, runs/ for nb101, runs/ for nb301"]),
    ("plot", ["--metric {spearman,kendall,sparse_kendall,top_k,precision_at_k}"]),
    ("table", ["--metric {spearman,kendall,sparse_kendall,top_k,precision_at_k}"]),
])
def test_help_lists_the_valid_values_of_every_fixed_choice_option(command: str, listed: list[str],
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one option per line, unwrapped
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for fragment in listed:
        assert fragment in text


def test_committed_results_are_what_compare_writes_today(tmp_path: Path) -> None:
    """results/compare-nb201/ (the README's table) regenerated with the defaults: same files, same figures."""
    assert main(["compare", "--out", str(tmp_path), "--no-plot"]) == 0
    ours = tmp_path / "compare-nb201"
    for name in ("compare.md", "compare.tex", "dropped.csv"):
        assert (ours / name).read_text() == (COMMITTED / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_csv(ours / "compare.csv"), pd.read_csv(COMMITTED / "compare.csv"), rtol=1e-12)
    pd.testing.assert_frame_equal(pd.read_parquet(ours / "compare.parquet"), pd.read_parquet(COMMITTED / "compare.parquet"))


def test_the_readme_table_quotes_the_committed_results_and_the_reference_file() -> None:
    """The README's main-job table: our Spearman from results/compare-nb201/compare.csv (3 decimals,
    "–" where we have no row) beside NBSZ's from the embedded reference file, rows in cifar10 order."""
    section = (REPO / "README.md").read_text().split("## The main job", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if re.match(r"^\| [A-Za-z_0-9]+ \|", line)]
    rows = [[cell.strip().strip("*") for cell in row] for row in rows if row[0].strip() != "estimator"]
    committed = pd.read_csv(COMMITTED / "compare.csv").set_index(["dataset", "estimator"])["spearman"]
    reference = compare.published_spearman("nb201").set_index(["dataset", "estimator"])["nbsz_spearman"]
    assert [row[0] for row in rows] == list(committed.loc["cifar10"].index) + ["zen"]  # compare's order, then NBSZ's extra
    for estimator, *cells in rows:
        for dataset, ours, theirs in zip(NB201_DATASETS, cells[0::2], cells[1::2]):
            want = f"{committed[(dataset, estimator)]:.3f}" if (dataset, estimator) in committed else "–"
            assert (ours, theirs) == (want, f"{reference[(dataset, estimator)]:.2f}"), (estimator, dataset)
