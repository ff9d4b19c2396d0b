"""The committed weight-sharing results recompute from the logs committed beside them.

``results/ws-cifar10-gpu/`` (the H100 run), ``results/ws-toy-cpu*/`` and the mini protocol's
``results/ws-mini-cpu/<algorithm>/`` hold no checkpoints and no
per-arch log files, only the merged ``logs-seed<s>.parquet`` that ``harness ws report`` writes. Reporting
such a folder again must give its committed table and correlations: this pins the numbers quoted in
the READMEs to the logs, and the merged-log path of the report to the per-arch one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.supernet.config import load_config

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN_FILES = ("config.json", "archs.csv", "truth.json", "supernet-seed*.json", "logs-seed*.parquet")
MINI = [f"ws-mini-cpu/{run}" for run in ("spos", "fairnas", "multipath", "reptile", "metaprox", "spos-lr0.001", "spos-batch128",
                                          "spos-batch256")]
# Table 4.2's mini runs, results/ws-mini-cpu-table42/<space>/<algorithm>/, as results/ws-mini-cpu-table42/run.sh globs them
TABLE42 = sorted(str(path.parent.relative_to(RESULTS)) for path in (RESULTS / "ws-mini-cpu-table42").glob("*/*/table.md"))


def _results_copy(name: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for pattern in RUN_FILES:
        for file in (RESULTS / name).glob(pattern):
            shutil.copy(file, dest / file.name)
    return dest


@pytest.mark.parametrize("name", ["ws-cifar10-gpu", "ws-toy-cpu", "ws-toy-cpu-fairnas", *MINI, *TABLE42])
def test_committed_ws_results_recompute_from_their_merged_logs(tmp_path: Path, name: str) -> None:
    """On the seeds the committed table reports (the mini runs publish the seeds finished so far)."""
    out = _results_copy(name, tmp_path / name)
    cfg = load_config(out / "config.json")
    seeds = sorted(int(seed) for seed in pd.read_csv(RESULTS / name / "correlations.csv").seed.unique())
    assert sorted(int(p.stem.removeprefix("logs-seed")) for p in out.glob("logs-seed*.parquet")) == seeds
    files = ws.report(cfg, out, seeds=seeds, plot=False)
    assert (out / "table.md").read_text() == (RESULTS / name / "table.md").read_text()
    ours, committed = pd.read_csv(files["correlations"]), pd.read_csv(RESULTS / name / "correlations.csv")
    pd.testing.assert_frame_equal(ours, committed, rtol=1e-12)
    assert not any(key.startswith("logs_seed") for key in files)  # a results folder's logs are read, not rewritten


def test_gpu_run_table_matches_an_independent_spearman_of_sotl_at_step_100() -> None:
    """SoTL@100 in the GPU table = scipy's Spearman of the summed losses of steps 1..100, per seed."""
    from scipy.stats import spearmanr

    folder = RESULTS / "ws-cifar10-gpu"
    archs = pd.read_csv(folder / "archs.csv")
    rhos = []
    for seed in (0, 1):
        logs = pd.read_parquet(folder / f"logs-seed{seed}.parquet")
        sotl = logs[(logs.step >= 1) & (logs.step <= 100)].groupby("arch_index").train_loss.sum()
        rhos.append(spearmanr(-sotl.loc[archs.arch_index].to_numpy(), archs.truth).statistic)
    table = pd.read_csv(folder / "table.csv").set_index("estimator")
    assert table.loc["SoTL", "step"] == 100
    assert np.isclose(table.loc["SoTL", "spearman_mean"], np.mean(rhos), atol=1e-12)
    assert len(archs) == 200 and archs.arch_index.is_unique


def test_a_results_folder_missing_an_arch_says_which_and_partial_reports_the_rest(tmp_path: Path) -> None:
    out = _results_copy("ws-toy-cpu", tmp_path / "toy")
    cfg = load_config(out / "config.json")
    logs = pd.read_parquet(out / "logs-seed1.parquet")
    dropped = int(logs.arch_index.iloc[-1])
    logs[logs.arch_index != dropped].to_parquet(out / "logs-seed1.parquet", index=False)
    with pytest.raises(HarnessError, match=f"no finetuning log for arch {dropped} of supernet seed 1"):
        ws.report(cfg, out, plot=False)
    ws.report(cfg, out, plot=False, partial=True)
    table = (out / "table.md").read_text()
    n = len(pd.read_csv(out / "archs.csv"))
    assert f"Partial run: {n - 1} of {n} archs finished for every seed." in table
    # the merged logs of a results folder are its data: a partial report rewrites none of them
    assert dropped in set(pd.read_parquet(out / "logs-seed0.parquet").arch_index)
    assert dropped not in set(pd.read_parquet(out / "logs-seed1.parquet").arch_index)


# --------------------------------------------------------------------------- published numbers beside ours


def _with_reference(tmp_path: Path, csv: str, **report: object):
    out = _results_copy("ws-toy-cpu", tmp_path / "toy")
    (tmp_path / "ref.csv").write_text(csv)
    cfg = load_config(out / "config.json").with_overrides(report={"reference": str(tmp_path / "ref.csv"), **report})
    return cfg, out


def test_reference_numbers_appear_beside_ours_with_their_std_and_na_where_missing(tmp_path: Path) -> None:
    csv = "estimator,spearman,top_k,spearman_std,step\nSoTL,0.71,93.1,0.02,10\nValAcc,-0.05,,,0\n"
    cfg, out = _with_reference(tmp_path, csv, reference_label="Table 4.1")
    ws.report(cfg, out, plot=False)
    table = pd.read_csv(out / "table.csv").set_index("estimator")
    assert table.loc["SoTL", ["reference_spearman", "reference_spearman_std", "reference_top_k"]].tolist() == [0.71, 0.02, 93.1]
    assert np.isnan(table.loc["SoTL", "reference_top_k_std"]) and np.isnan(table.loc["ValAcc", "reference_top_k"])
    assert table.loc[["TLMini", "SoG"], "reference_spearman"].isna().all()  # estimators the CSV leaves out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in (out / "table.md").read_text().splitlines()
            if line.startswith("| ")}
    reference_columns = [1, 2, 4, 5]  # Spearman (ref), Spearman diff, top-3 (ref), top-3 diff; never bold
    assert [rows["estimator"][i] for i in reference_columns] == ["Spearman (Table 4.1)", "Spearman diff", "top-3 (Table 4.1)", "top-3 diff"]
    sotl = table.loc["SoTL"]
    assert [rows["SoTL @ step 10"][i] for i in reference_columns] == [
        "0.710 (0.020)", f"{sotl.spearman_mean - 0.71:.3f}", "93.10", f"{sotl.top_k_mean - 93.1:.2f}"]
    assert [rows["ValAcc @ step 0"][i] for i in reference_columns] == ["-0.050", f"{table.loc['ValAcc', 'spearman_mean'] + 0.05:.3f}", "n/a", "n/a"]
    assert [rows["TLMini @ step 0"][i] for i in reference_columns] == ["n/a"] * 4
    assert "Columns '(Table 4.1)': from ref.csv" in (out / "table.md").read_text()
    # our own columns do not move
    committed = pd.read_csv(RESULTS / "ws-toy-cpu" / "table.csv").set_index("estimator")
    ours = ["step", "n_seeds", "spearman_mean", "spearman_std", "spearman_ci_low", "spearman_ci_high", "top_k_mean", "top_k_std"]
    pd.testing.assert_frame_equal(table[ours], committed[ours])


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("estimator,spearman\nSoTL,0.5\n", "needs estimator, spearman and top_k"),
        ("estimator,spearman,top_k,kendall\nSoTL,0.5,90\n", r"unknown: \['kendall'\]"),
        ("estimator,spearman,top_k\nSoTl,0.5,90\n", "distinct names among .*'SoTL'"),
        ("estimator,spearman,top_k\nSoTL,0.5,90\nSoTL,0.6,91\n", "distinct names"),
        ("estimator,spearman,top_k\nSoTL,high,90\n", "must hold numbers"),
        ("estimator,spearman,top_k\nSoTL,71,90\n", "Spearman 71 \\(valid -1..1\\)"),
        ("estimator,spearman,top_k\nSoTL,0.7,0.93\nValAcc,0.1,930\n", "ValAcc has top-k 930 \\(valid 0..100 %"),
        ("estimator,spearman,top_k,step\nSoTL,0.5,90,300\n", "SoTL is at step 300 there but at step 10 in this table"),
    ],
)
def test_a_reference_table_that_does_not_fit_is_refused_with_what_is_valid(tmp_path: Path, csv: str, message: str) -> None:
    cfg, out = _with_reference(tmp_path, csv)
    with pytest.raises(HarnessError, match=message):
        ws.report(cfg, out, plot=False)
    assert (out / "table.md").exists() is False  # nothing half-written


def test_ws_report_reference_flag_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    cfg, out = _with_reference(tmp_path, "estimator,spearman,top_k\nSoGN,0.9,93.0\n")
    args = ["ws", "report", "--config", str(out / "config.json"), "--out", str(out)]
    assert main([*args, "--reference", str(tmp_path / "ref.csv")]) == 0
    committed = pd.read_csv(RESULTS / "ws-toy-cpu" / "table.csv").set_index("estimator").loc["SoGN"]
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| SoGN @ step 10 |"))
    cells = [cell.strip() for cell in row.split("|")[2:-1]]
    assert cells[1:3] == ["0.900", f"{committed.spearman_mean - 0.9:.3f}"] and cells[4:] == ["93.00", f"{committed.top_k_mean - 93:.2f}"]
    assert main([*args, "--reference", str(tmp_path / "missing.csv")]) == 2
    captured = capsys.readouterr()
    assert "cannot read the reference table report.reference" in captured.err and "missing.csv" in captured.err
    assert "Traceback" not in captured.err


def test_the_truths_split_comes_from_truth_json_and_from_its_source_in_folders_written_before_it(tmp_path: Path) -> None:
    """truth.json names the split of the truth ("test" or "val": the table's "test acc" or "val acc");
    one written before it did is read from its source text, as the report then did."""
    from harness.supernet.spaces.base import ArchSet

    out = _results_copy("ws-toy-cpu", tmp_path / "toy")
    source = json.loads((out / "truth.json").read_text())["source"]
    assert ArchSet.read(out).truth_split == "test"
    (out / "truth.json").write_text(json.dumps({"source": "NASLib zero-cost table val_accuracy, cifar100, 200 epochs"}))
    assert ArchSet.read(out).truth_split == "val"
    (out / "truth.json").write_text(json.dumps({"source": source, "split": "val"}))  # the field, not the text, decides
    ws.report(load_config(out / "config.json"), out, plot=False)
    assert "top-3 val acc % (ours)" in (out / "table.md").read_text()
    (out / "truth.json").write_text(json.dumps({"source": source, "split": "validation"}))
    with pytest.raises(HarnessError, match="truth_split must be one of test, val, got 'validation'"):
        ArchSet.read(out)


@pytest.mark.parametrize("folder, names", [("ws-mini-cpu", MINI), ("ws-mini-cpu-table42", TABLE42)])
def test_the_committed_mini_protocol_tables_recompute_from_the_committed_runs(tmp_path: Path, folder: str, names: list[str]) -> None:
    """results/<folder>/tables/tables.md is `harness ws tables` of the committed run folders."""
    from harness.experiments.ws_tables import write_tables

    assert names, f"results/{folder} holds no reported run"
    runs = []
    for name in names:
        runs.append(tmp_path / name)
        shutil.copytree(RESULTS / name, runs[-1], ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    committed = (RESULTS / folder / "tables" / "tables.md").read_text()
    label = committed.splitlines()[0].removeprefix("# Weight-sharing tables: ")
    files = write_tables(runs, tmp_path / "tables", label)
    assert files["tables"].read_text() == committed
