"""The zero-cost tables (real NASLib records) and the `harness compare` main job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import tables
from harness.cli import main
from harness.errors import HarnessError
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
    frame = compare_zero_cost("nb201", n_boot=50)
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
    assert main(["compare", "--dataset", "cifar-10", "--out", str(tmp_path)]) == 2


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
