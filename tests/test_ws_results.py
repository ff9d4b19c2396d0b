"""The committed weight-sharing results recompute from the logs committed beside them.

``results/ws-cifar10-gpu/`` (the H100 run) and ``results/ws-toy-cpu/`` hold no checkpoints and no
per-arch log files, only the merged ``logs-seed<s>.parquet`` that ``harness ws report`` writes. Reporting
such a folder again must give its committed table and correlations: this pins the numbers quoted in
the READMEs to the logs, and the merged-log path of the report to the per-arch one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.supernet.config import load_config

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN_FILES = ("config.json", "archs.csv", "truth.json", "supernet-seed0.json", "supernet-seed1.json",
             "logs-seed0.parquet", "logs-seed1.parquet")


def _results_copy(name: str, dest: Path) -> Path:
    dest.mkdir()
    for file in RUN_FILES:
        shutil.copy(RESULTS / name / file, dest / file)
    return dest


@pytest.mark.parametrize("name", ["ws-cifar10-gpu", "ws-toy-cpu"])
def test_committed_ws_results_recompute_from_their_merged_logs(tmp_path: Path, name: str) -> None:
    out = _results_copy(name, tmp_path / name)
    cfg = load_config(out / "config.json")
    files = ws.report(cfg, out, plot=False)
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
