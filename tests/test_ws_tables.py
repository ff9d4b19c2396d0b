"""Tables 4.1, 4.4, 4.5 and Figs. 4.6b, 4.8 from several reported run folders, beside the thesis's
numbers: every value recomputed here from the runs' own files, the embedded thesis tables and scipy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from harness import thesis
from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.experiments.ws_tables import load_run, table_4_1, write_tables
from harness.registry import load_benchmark
from harness.supernet.config import load_config

RESULTS = Path(__file__).resolve().parents[1] / "results"
TOY = {"spos": "ws-toy-cpu", "fairnas": "ws-toy-cpu-fairnas"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    base = tmp_path_factory.mktemp("tables")
    runs = {}
    for algorithm, name in TOY.items():
        runs[algorithm] = base / name
        shutil.copytree(RESULTS / name, runs[algorithm], ignore=shutil.ignore_patterns("*.png", "*.pdf", "README.md"))
    out = base / "out"
    assert main(["ws", "tables", *map(str, runs.values()), "--out", str(out), "--label", "toy"]) == 0
    return out, runs


def _markdown_rows(text: str, heading: str) -> dict[str, list[str]]:
    block = text.split(heading, 1)[1].split("####", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("| ")]
    return {line.split("|")[1].strip(): [cell.strip().strip("*") for cell in line.split("|")[2:-1]] for line in lines}


def test_table_4_1_sets_each_runs_numbers_beside_the_thesis_and_the_difference(written) -> None:
    out, runs = written
    text = (out / "tables.md").read_text()
    rows = _markdown_rows(text, "#### CIFAR10: Spearman")
    header = rows["estimator @ step"]
    published = thesis.table("4.1")
    for algorithm, label in (("spos", "SPOS"), ("fairnas", "FairNAS")):
        ours = pd.read_csv(runs[algorithm] / "table.csv").set_index("estimator")
        theirs = published[(published.dataset == "CIFAR10") & (published.algorithm == label) & (published.measure == "spearman")]
        theirs = theirs.set_index("estimator")
        column = header.index(f"{label} ours")
        for estimator in ("SoTL", "TLMini", "ValAcc", "ValAccMini"):
            row = ours.loc[estimator]
            cells = rows[f"{estimator} @ {int(row.step)}"]
            assert cells[column] == (f"{row.spearman_mean:.3f} ({row.spearman_std:.3f}) "
                                     f"[{row.spearman_ci_low:.3f}, {row.spearman_ci_high:.3f}]"), (label, estimator)
            assert cells[column + 1] == f"{theirs.loc[estimator, 'mean']:.3f} ({theirs.loc[estimator, 'std']:.3f})"
            assert cells[column + 2] == f"{row.spearman_mean - theirs.loc[estimator, 'mean']:.3f}"
    assert "#### CIFAR10: top-10 mean true test accuracy (%)" in text


def test_table_4_5_recomputes_params_sotl_p_and_sog_p_with_scipy(written) -> None:
    out, runs = written
    run = load_run(runs["spos"])
    params = load_benchmark("nb201").query(run.archs.indices, "cifar10", "params", "cost", "200").values[:, 0, 0]
    rows = _markdown_rows((out / "tables.md").read_text().split("## Table 4.5", 1)[1], "\n")
    assert rows["NB201 (CIFAR10) Params"][0] == f"{spearmanr(params, run.archs.truth).statistic:.3f} (0.000)"
    step = run.cfg.report.sum_step
    for name, label in (("SoTL", "SoTL-P"), ("SoG", "SoG-P")):
        rhos = []
        for seed in run.cfg.supernet.seeds:
            logs = ws.read_logs(run.path, seed, run.archs)
            if name == "SoTL":  # lower is better: the negated sum of the minibatch losses of steps 1..t
                score = -logs[(logs.step >= 1) & (logs.step <= step)].groupby("arch_index").train_loss.sum()
            else:
                score = logs[logs.step == step].set_index("arch_index").grad_sum_l1
            rhos.append(spearmanr(score.loc[run.archs.indices].to_numpy(), params).statistic)
        assert rows[f"NB201 (CIFAR10) {label} (lr 0.01)"][0] == f"{np.mean(rhos):.3f} ({np.std(rhos):.3f})", label
    sog = pd.read_csv(runs["spos"] / "table.csv").set_index("estimator").loc["SoG"]
    assert rows["NB201 (CIFAR10) SoG (0.01)"][:2] == [f"{sog.spearman_mean:.3f} ({sog.spearman_std:.3f})", "0.860 (0.010)"]


def test_table_4_4_needs_spos_runs_at_both_finetuning_lrs_on_the_same_supernets(written, tmp_path: Path) -> None:
    out, runs = written
    assert "(needs SPOS runs finetuned at lr 0.01 and 0.001 on the same supernets)" in (out / "tables.md").read_text()
    other = tmp_path / "spos-lr0.001"
    shutil.copytree(runs["spos"], other)
    config = json.loads((other / "config.json").read_text())
    config["finetune"]["lr"] = 0.001
    (other / "config.json").write_text(json.dumps(config))
    files = write_tables([runs["spos"], other], tmp_path / "out")
    text = files["tables"].read_text().split("## Table 4.4", 1)[1]
    assert "NB201 (CIFAR10) SoTL @ 10, lr 0.01" in text and "NB201 (CIFAR10) ValAcc @ 10, lr 0.001" in text
    assert "0.780 (0.060)" in text and "0.840 (0.060)" in text  # the thesis's SoTL at lr 0.01 and 0.001
    config["supernet"]["epochs"] = 3  # other supernets: no pair
    (other / "config.json").write_text(json.dumps(config))
    assert "(needs SPOS runs" in write_tables([runs["spos"], other], tmp_path / "out2")["tables"].read_text()


def test_figures_are_written_and_a_second_run_of_one_algorithm_is_refused(written) -> None:
    out, runs = written
    for name in ("fig4.6b-sotl-by-algorithm.png", "fig4.8-finetuning-losses.png"):
        assert (out / name).stat().st_size > 10_000
    same = [load_run(runs["spos"]), load_run(runs["spos"])]
    with pytest.raises(HarnessError, match="two runs of SPOS, SPOS on CIFAR10"):
        table_4_1(same)
    with pytest.raises(HarnessError, match="not a reported weight-sharing run"):
        load_run(out)


def test_figure_4_7_draws_the_finetuning_grid_of_spos_runs_on_the_same_supernets(written, tmp_path: Path) -> None:
    """Runs differing only in finetuning batch size or lr form Fig. 4.7's grid; they stay out of Table 4.1."""
    from harness.experiments.ws_tables import finetuning_grid

    _, runs = written
    variants = []
    for batch, lr in ((128, 0.01), (64, 0.001)):
        other = tmp_path / f"spos-{batch}-{lr}"
        shutil.copytree(runs["spos"], other)
        config = json.loads((other / "config.json").read_text())
        config["finetune"].update(batch_size=batch, lr=lr)
        (other / "config.json").write_text(json.dumps(config))
        variants.append(other)
    loaded = [load_run(p) for p in [runs["spos"], *variants, runs["fairnas"]]]
    grid = finetuning_grid(loaded)
    assert [(run.cfg.finetune.batch_size, run.cfg.finetune_lr) for run in grid] == [(64, 0.001), (64, 0.01), (128, 0.01)]
    files = write_tables([runs["spos"], *variants, runs["fairnas"]], tmp_path / "out")
    assert files["fig4.7"].stat().st_size > 10_000
    table = files["tables"].read_text().split("## Table 4.1", 1)[1].split("## Table 4.4", 1)[0]
    assert table.count("SPOS ours") == 2  # the Spearman and the top-10 tables, from the batch-64 lr-0.01 run only


def test_a_run_on_another_space_is_set_beside_its_own_protocol_truth_and_name(written, tmp_path: Path, monkeypatch) -> None:
    """A run's space (config.json) picks its thesis table, protocol and name, and its truth.json says
    whether top-10 is a test or a validation accuracy; nothing is NB201's unless the run is."""
    from harness import plots
    from harness.experiments.ws_tables import figure_4_7, figure_4_8

    _, runs = written
    darts = tmp_path / "darts-fairnas"
    shutil.copytree(runs["fairnas"], darts)
    config = json.loads((darts / "config.json").read_text())
    (darts / "config.json").write_text(json.dumps({**config, "space": "darts"}))  # the tables decode no arch
    truth = json.loads((darts / "truth.json").read_text())
    (darts / "truth.json").write_text(json.dumps({**truth, "split": "val"}))
    text = write_tables([runs["spos"], darts], tmp_path / "out")["tables"].read_text()
    assert ("its protocol (NB201 (CIFAR10): 200 archs, 3 supernets of 100 epochs, full-size network; "
            "DARTS: 350 archs, 3 supernets of 100 epochs, full-size network)") in text
    assert "#### CIFAR10: top-10 mean true test accuracy (%)" in text.split("## Table 4.2", 1)[0]
    assert "#### DARTS: top-10 mean true val accuracy (%)" in text.split("## Table 4.2", 1)[1]
    titles: list[str] = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, stem: titles.append(fig.get_suptitle()) or save(fig, stem))
    run = load_run(darts)
    figure_4_7([run], tmp_path / "fig4.7")
    figure_4_8(run, tmp_path / "fig4.8")
    assert [" on DARTS" in title and "NB201" not in title for title in titles] == [True, True], titles


def test_a_run_reported_on_fewer_seeds_than_its_config_renders_on_those_seeds(written, tmp_path: Path) -> None:
    """Pitfall: Table 4.5 and Fig. 4.8 read every seed of the config, so a run whose later seeds were
    still training (reported with ``--seeds 0``, their logs absent) could not be tabled."""
    _, runs = written
    partial = tmp_path / "spos-seed0"
    shutil.copytree(runs["spos"], partial)
    (partial / "logs-seed1.parquet").unlink()
    ws.report(load_config(partial / "config.json"), partial, seeds=[0], plot=False)
    run = load_run(partial)
    assert run.seeds == [0] and run.cfg.supernet.seeds == (0, 1)
    text = write_tables([partial], tmp_path / "out")["tables"].read_text()
    logs = ws.read_logs(partial, 0, run.archs)
    sotl = -logs[(logs.step >= 1) & (logs.step <= run.cfg.report.sum_step)].groupby("arch_index").train_loss.sum()
    params = load_benchmark("nb201").query(run.archs.indices, "cifar10", "params", "cost", "200").values[:, 0, 0]
    rows = _markdown_rows(text.split("## Table 4.5", 1)[1], "\n")
    assert rows["NB201 (CIFAR10) SoTL-P (lr 0.01)"][0] == f"{spearmanr(sotl.loc[run.archs.indices].to_numpy(), params).statistic:.3f} (0.000)"
    assert "seeds [0]" in text
