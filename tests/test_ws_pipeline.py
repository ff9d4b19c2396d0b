"""The weight-sharing experiment end to end on the CPU at toy scale, and its bookkeeping."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.supernet.estimators import estimator_scores
from harness.supernet.spaces.nb201 import NB201Space
from harness.supernet.config import WSConfig, load_config
from image_fixtures import write_cifar10

CONFIG = """
name = "toy"
[data]
dataset = "cifar10-valid"
root = "{root}"
[network]
channels = 2
cells_per_stage = 1
[supernet]
seeds = [0, 1]
epochs = 1
batch_size = 16
[finetune]
n_archs = 6
steps = 4
batch_size = 16
eval_every = 2
eval_batch_size = 64
val_mini_batch_size = 16
[device]
device = "cpu"
[report]
sum_step = 2
top_k = 2
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[WSConfig, Path, Path]:
    base = tmp_path_factory.mktemp("ws")
    write_cifar10(base / "data", n_train=160)
    config = base / "toy.toml"
    config.write_text(CONFIG.format(root=base / "data"))
    out = base / "run"
    assert main(["ws", "run", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    return load_config(config), config, out


def test_pipeline_writes_table_curves_and_logs(run) -> None:
    cfg, _, out = run
    for name in ("table.md", "table.csv", "correlations.csv", "curves.png", "archs.csv", "config.json", "quality.csv"):
        assert (out / name).is_file(), name
    corr = pd.read_csv(out / "correlations.csv")
    assert set(corr.estimator) == set(cfg.report.estimators) and set(corr.seed) == {0, 1}
    assert sorted(corr[corr.estimator == "ValAcc"].step.unique()) == [0, 2, 4]
    assert sorted(corr[corr.estimator == "SoTL"].step.unique()) == [1, 2, 3, 4]
    table = pd.read_csv(out / "table.csv")
    assert dict(zip(table.estimator, table.step)) == {"SoTL": 2, "TLMini": 0, "ValAccMini": 1, "ValAcc": 0, "SoG": 2, "SoGN": 2}
    text = (out / "table.md").read_text()
    assert "n/a" in text and "Supernet quality: seed 0: 1 epochs, final training loss" in text
    assert "Table 4.1 (CIFAR10, SPOS)" in text  # the thesis's numbers beside ours by default
    assert "(200 archs, 3 supernets of 100 epochs, full-size network)" in text  # Table 4.1's protocol
    truth = {"source": "nb201 cifar10/200/ori-test/accuracy (seed mean)", "split": "test"}
    assert json.loads((out / "truth.json").read_text()) == truth and "top-2 test acc % (ours)" in text
    quality = pd.read_csv(out / "quality.csv")
    logs = ws.read_logs(out, 0, ws._read_arch_set(out))
    inherited = logs[logs.step == 0].val_acc
    assert quality.loc[0, "inherited_val_acc_mean"] == pytest.approx(inherited.mean())
    assert quality.loc[0, "inherited_val_acc_max"] == pytest.approx(inherited.max())
    # the inherited weights' first-minibatch loss (train mode) is the first update's loss, read at step 1
    assert quality.loc[0, "inherited_train_loss_mean"] == pytest.approx(logs[logs.step == 1].train_loss.mean())
    history = json.loads((out / "supernet-seed0.json").read_text())["history"]
    assert quality.loc[0, "final_train_loss"] == pytest.approx(history[-1]["train_loss"])


def test_log_columns_are_consistent(run) -> None:
    cfg, _, out = run
    archs = ws._read_arch_set(out)
    logs = ws.read_logs(out, 0, archs)
    for _, log in logs.groupby("arch_index"):
        log = log.sort_values("step")
        assert len(log) == cfg.finetune.steps + 1
        # the values themselves (train_loss, tl_mini, grad norms, accuracies) are pinned by the replay in
        # test_finetuning_log_equals_an_independent_replay_of_its_first_steps
        assert np.isnan(log.train_loss.iloc[0]) and np.isnan(log.grad_l1.iloc[0])
        # after one step the summed gradient is the gradient itself
        assert log.grad_sum_l1.iloc[1] == pytest.approx(log.grad_l1.iloc[1], rel=1e-5)
        assert (log.grad_sum_l1.iloc[1:] <= log.grad_l1.iloc[1:].cumsum() * (1 + 1e-5)).all()  # triangle inequality
        assert log.val_acc.notna().tolist() == [s % 2 == 0 for s in log.step]


def test_estimators_read_the_logs_as_documented(run) -> None:
    _, _, out = run
    archs = ws._read_arch_set(out)
    logs = ws.read_logs(out, 1, archs)
    steps, scores, higher = estimator_scores(logs, archs.indices, "SoTL")
    first = logs[logs.arch_index == archs.indices[0]].sort_values("step")
    assert not higher and steps.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], first.train_loss.to_numpy()[1:].cumsum())
    steps, scores, higher = estimator_scores(logs, archs.indices, "SoGN")
    np.testing.assert_allclose(scores[:, 0], first.grad_l1.to_numpy()[1:].cumsum())
    steps, scores, _ = estimator_scores(logs, archs.indices, "ValAcc")
    assert steps.tolist() == [0, 2, 4]


def test_arch_set_is_seeded_and_shared_across_supernets(run) -> None:
    cfg, _, out = run
    archs = ws._read_arch_set(out)
    again = ws.arch_set(cfg)
    np.testing.assert_array_equal(archs.indices, again.indices)
    np.testing.assert_allclose(archs.truth, again.truth)
    a = ws.read_logs(out, 0, archs)
    b = ws.read_logs(out, 1, archs)
    assert a.arch_index.tolist() == b.arch_index.tolist()
    assert not np.allclose(a.tl_mini, b.tl_mini)  # different supernets, same archs and batches


def test_a_fairnas_run_ranks_the_same_archs_on_the_same_batches_as_spos(tmp_path: Path, run) -> None:
    """The arch set and every arch's finetuning data depend on finetune.arch_seed only, so two
    algorithms' tables compare like with like; only the inherited weights differ."""
    cfg, config, out = run
    fair_config = tmp_path / "fair.toml"
    fair_config.write_text(config.read_text().replace("seeds = [0, 1]", "seeds = [0]"))
    fair = tmp_path / "fair"
    args = ["--config", str(fair_config), "--out", str(fair)]
    assert main(["ws", "run", *args, "--algorithm", "fairnas", "--no-progress"]) == 0
    assert main(["ws", "report", *args]) == 2  # the folder holds FairNAS results: a SPOS report is refused
    fair_toml = tmp_path / "fair-in-file.toml"  # the algorithm named in the file, no flag: it must hold
    fair_toml.write_text(fair_config.read_text().replace("[supernet]", '[supernet]\nalgorithm = "fairnas"'))
    assert main(["ws", "report", "--config", str(fair_toml), "--out", str(fair)]) == 0
    assert "mean (std over 1 FairNAS supernet seed(s))" in (fair / "table.md").read_text()
    assert "mean (std over 2 SPOS supernet seed(s))" in (out / "table.md").read_text()
    archs = ws._read_arch_set(out)
    np.testing.assert_array_equal(ws._read_arch_set(fair).indices, archs.indices)
    spos_logs, fair_logs = ws.read_logs(out, 0, archs), ws.read_logs(fair, 0, archs)
    assert spos_logs.arch_index.tolist() == fair_logs.arch_index.tolist()
    assert not np.allclose(spos_logs.tl_mini, fair_logs.tl_mini)  # other supernet weights


def test_restart_skips_finished_archs(run) -> None:
    _cfg, config, out = run
    logs = sorted(ws.log_dir(out, 0).glob("arch-*.parquet"))
    stamps = {p: p.stat().st_mtime_ns for p in logs}
    logs[0].unlink()
    assert main(["ws", "finetune", "--config", str(config), "--out", str(out), "--seed", "0", "--no-progress"]) == 0
    assert logs[0].is_file()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in logs[1:])


def test_finetuning_is_deterministic(run) -> None:
    _, config, out = run
    path = sorted(ws.log_dir(out, 1).glob("arch-*.parquet"))[2]
    before = pd.read_parquet(path)
    path.unlink()
    assert main(["ws", "finetune", "--config", str(config), "--out", str(out), "--seed", "1", "--no-progress"]) == 0
    pd.testing.assert_frame_equal(before.drop(columns="seconds"), pd.read_parquet(path).drop(columns="seconds"))


def test_a_run_folder_refuses_settings_that_would_mix_with_its_results(tmp_path: Path, run, capsys) -> None:
    _, config, out = run
    changed = tmp_path / "changed.toml"
    changed.write_text(config.read_text().replace("steps = 4", "steps = 5"))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for verb in (["finetune", "--seed", "0"], ["train", "--seed", "1"], ["prepare"], ["report"]):
        assert main(["ws", *verb, "--config", str(changed), "--out", str(out), "--no-progress"]) == 2
        assert "other settings (finetune.steps: 4 -> 5)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    # the report's own settings may change: re-reporting with another k is what a user does
    reported = tmp_path / "top3.toml"
    reported.write_text(config.read_text().replace("top_k = 2", "top_k = 3"))
    assert main(["ws", "report", "--config", str(reported), "--out", str(out)]) == 0
    assert "top-3" in capsys.readouterr().out
    assert main(["ws", "report", "--config", str(config), "--out", str(out)]) == 0  # as it was


def test_logs_from_a_supernet_of_other_epochs_are_not_mixed(tmp_path: Path, run) -> None:
    cfg, _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    summary = copy / "supernet-seed0.json"
    summary.write_text(summary.read_text().replace('"epochs_done": 1', '"epochs_done": 7'))
    with pytest.raises(HarnessError, match=r"finetuned from the supernet after 7 epochs, but .* now holds epoch 1"):
        ws.finetune(cfg, 0, ws._read_arch_set(copy), copy, progress=False)


def test_bad_config_and_shard_raise(tmp_path: Path, run) -> None:
    _, config, out = run
    bad = tmp_path / "bad.toml"
    bad.write_text('[finetune]\nstepz = 3\n')
    with pytest.raises(HarnessError, match="stepz"):
        load_config(bad)
    bad.write_text('[data]\ndataset = "cifar10"\n')
    with pytest.raises(HarnessError, match="cifar10-valid"):
        load_config(bad)
    assert main(["ws", "finetune", "--config", str(config), "--out", str(out), "--seed", "0", "--shard", "3/2"]) == 2


def test_training_steps_without_torch_say_how_to_install_it_before_writing_anything(tmp_path: Path, run, monkeypatch, capsys) -> None:
    _, config, _ = run
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    for verb in ("run", "train", "finetune"):
        out = tmp_path / verb
        seed = [] if verb == "run" else ["--seed", "0"]
        assert main(["ws", verb, "--config", str(config), "--out", str(out), *seed]) == 2
        assert 'needs torch, which is not installed: pip install -e ".[train]"' in capsys.readouterr().err
        assert not out.exists()
    assert main(["ws", "report", "--config", str(config), "--out", str(run[2]), "--seeds", "0,x"]) == 2
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err
    assert main(["ws", "report", "--config", str(config), "--out", str(run[2]), "--seeds", "-1"]) == 2
    assert "--seeds must be comma-separated integers >= 0" in capsys.readouterr().err


def test_a_run_that_fails_its_early_checks_writes_nothing_so_the_corrected_rerun_is_accepted(tmp_path: Path, run, capsys) -> None:
    """Pitfall pinned (issue 15): a 'ws run' that failed an early check (no CUDA, a data root
    without the images) left config.json, archs.csv and truth.json behind, and the corrected rerun
    was then refused as "a run made under other settings". Everything is checked before writing."""
    import torch

    _, config, _ = run
    out = tmp_path / "run"
    args = ["ws", "run", "--config", str(config), "--out", str(out), "--no-progress"]
    assert main([*args, "--data-root", str(tmp_path / "nowhere"), "--threads", "2"]) == 2
    assert "cifar-10-batches-py" in capsys.readouterr().err and not out.exists()
    if not torch.cuda.is_available():
        assert main([*args, "--device", "cuda"]) == 2
        assert "torch sees no GPU" in capsys.readouterr().err and not out.exists()
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["device"]["device"] == "cpu"


def test_the_thread_count_is_a_recorded_setting_so_a_run_reproduces_on_any_machine(tmp_path: Path, run) -> None:
    """Pitfall pinned (issue 15): torch's default thread count (the machine's cores, and OMP_NUM_THREADS)
    changes the CPU's rounding, and the committed toy table did not reproduce on a busy machine or
    with OMP_NUM_THREADS=1. ``device.threads`` fixes it, config.json records it, a run folder refuses
    another value, and the caller's thread count is restored afterwards."""
    import torch

    cfg, config, out = run
    assert cfg.device.threads == 1 and json.loads((out / "config.json").read_text())["device"]["threads"] == 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what a 2-core machine gives by default
    try:
        again = tmp_path / "again"
        assert main(["ws", "run", "--config", str(config), "--out", str(again), "--no-progress"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    archs = ws._read_arch_set(out)
    for seed in cfg.supernet.seeds:
        pd.testing.assert_frame_equal(ws.read_logs(out, seed, archs).drop(columns="seconds"),
                                      ws.read_logs(again, seed, archs).drop(columns="seconds"))
    assert (again / "table.md").read_text() == (out / "table.md").read_text()
    refused = main(["ws", "finetune", "--config", str(config), "--out", str(out), "--seed", "0", "--threads", "2"])
    assert refused == 2


def test_download_flag_fetches_cifar_into_the_data_root(tmp_path: Path, run, monkeypatch, capsys) -> None:
    import harness.data.formats

    _, config, _ = run
    asked: list[tuple[str, Path]] = []

    def offline(name: str, root: Path) -> Path:
        asked.append((name, Path(root)))
        raise HarnessError("offline in this test")

    monkeypatch.setattr(harness.data.formats, "download_cifar", offline)
    args = ["ws", "train", "--config", str(config), "--out", str(tmp_path / "run"), "--seed", "0", "--data-root", str(tmp_path)]
    assert main([*args, "--download"]) == 2
    assert asked == [("cifar10", tmp_path)] and "offline in this test" in capsys.readouterr().err
    assert main(args) == 2  # without the flag nothing is fetched: the empty root is reported instead
    assert len(asked) == 1


def test_truth_root_help_says_what_it_is_on_each_space(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.supernet.spaces import SPACES

    with pytest.raises(SystemExit):
        main(["ws", "prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for spaces, what in (("nb201", "a converted NB201 store"), ("nb1shot1-1/2/3", "a converted NB101 store"),
                         ("darts", "a folder of the official nasbench301 models")):
        assert f"{spaces}: {what}" in text
    assert {f"nb1shot1-{n}" for n in "123"} | {"nb201", "darts"} == set(SPACES)  # every space is named


def test_shipped_configs_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/ws-*.toml")):
        cfg = load_config(path)
        assert cfg.data.dataset == "cifar10-valid"


def test_cifar100_arch_set_is_drawn_from_the_archs_with_200_epoch_truth() -> None:
    """Pitfall pinned: the embedded NB201 table has only 12-epoch CIFAR-100 finals, so the sample must
    come from the 725 archs of the NASLib table, whose 200-epoch accuracy is the truth."""
    from harness.zerocost import embedded_table

    cfg = WSConfig().with_overrides(data={"dataset": "cifar100"}, finetune={"n_archs": 50, "arch_seed": 3})
    archs = ws.arch_set(cfg)
    table = embedded_table("nb201")
    table = table[table.dataset == "cifar100"].set_index("index")
    assert set(archs.indices) <= set(table.index) and len(set(archs.indices)) == 50
    np.testing.assert_allclose(archs.truth, table.loc[archs.indices, "val_accuracy"].to_numpy())
    assert "NASLib" in archs.truth_source
    table = pd.DataFrame({"estimator": ["SoTL"], "step": [100], "n_seeds": [1], "spearman_mean": [0.5], "spearman_std": [0.0],
                          "spearman_ci_low": [0.4], "spearman_ci_high": [0.6], "top_k_mean": [70.0], "top_k_std": [0.0],
                          "spearman_minus_reference": [np.nan], "top_k_minus_reference": [np.nan],
                          **{f"reference_{c}": [np.nan] for c in ws.REFERENCE_COLUMNS}})
    header = ws.render_table(cfg, table, archs).splitlines()[0]
    assert "top-10 val acc % (ours)" in header and "test acc" not in header  # the truth is NASLib's validation accuracy
    with pytest.raises(HarnessError, match="cannot sample"):
        ws.arch_set(cfg.with_overrides(finetune={"n_archs": 800}))


# --------------------------------------------------------------------------- the report's numbers, recomputed

# Each estimator's log reading and direction, as the thesis defines them (not read from the code):
# cumulative ones sum steps 1..t; losses rank lower-is-better, accuracies and gradient sizes higher.
_SCORE = {
    "SoTL": (lambda log, t: log.train_loss.to_numpy()[1 : t + 1].sum(), False),
    "TLMini": (lambda log, t: log.tl_mini.to_numpy()[t], False),
    "ValAccMini": (lambda log, t: log.val_acc_mini.to_numpy()[t], True),
    "ValAcc": (lambda log, t: log.val_acc.to_numpy()[t], True),
    "SoG": (lambda log, t: log.grad_sum_l1.to_numpy()[t], True),
    "SoGN": (lambda log, t: log.grad_l1.to_numpy()[1 : t + 1].sum(), True),
}


def _top_k_by_hand(score: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean truth of the k best-scored archs; archs tied at the k-th best score share the free slots."""
    kth = np.sort(score)[::-1][k - 1]
    above, tied = score > kth, score == kth
    weights = above + tied * (k - above.sum()) / tied.sum()
    return float((weights * truth).sum() / k)


def test_report_correlations_and_table_recompute_from_logs_and_truth(run) -> None:
    """Pitfall pinned: the report's numbers were only checked for shape, so ranking against the truth
    in the wrong arch order, or summarising the seeds by their best instead of their mean, went unseen.

    Every (estimator, step, seed) row is recomputed with scipy from per-arch scores read off the logs
    and the benchmark's truth (paired by arch index), and Table 4.1 from those rows."""
    from scipy.stats import kendalltau, spearmanr

    from harness.registry import load_benchmark

    cfg, _, out = run
    corr = pd.read_csv(out / "correlations.csv")
    table = pd.read_csv(out / "table.csv").set_index("estimator")
    indices = pd.read_csv(out / "archs.csv").arch_index.to_numpy()
    truth = load_benchmark("nb201").final(indices, "cifar10", "accuracy", "ori-test", "200")
    k = cfg.report.top_k
    ours: dict[tuple[str, int, int], tuple[float, float, float]] = {}
    for seed in (0, 1):
        logs = {i: pd.read_parquet(ws.log_dir(out, seed) / f"arch-{i:05d}.parquet").sort_values("step") for i in indices}
        for name, (read, higher) in _SCORE.items():
            for step in range(1 if name in ("SoTL", "SoG", "SoGN") else 0, cfg.finetune.steps + 1):
                score = np.array([read(logs[i], step) for i in indices]) * (1 if higher else -1)
                if np.isnan(score).any():  # not measured at this step (ValAcc between evaluations)
                    continue
                rho, tau = spearmanr(score, truth)[0], kendalltau(score, truth)[0]  # kendalltau: tau-b
                ours[name, step, seed] = (rho, tau, _top_k_by_hand(score, truth, k))
    assert len(corr) == len(ours) > 40
    for row in corr.itertuples():
        rho, tau, top = ours[row.estimator, row.step, row.seed]
        where = f"{row.estimator} step {row.step} seed {row.seed}"
        np.testing.assert_allclose([row.spearman, row.kendall], [rho, tau], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=where)
        assert row.top_k == pytest.approx(top, rel=1e-12) and row.n_archs == len(indices), where
    spreads = []
    for name in _SCORE:
        step = cfg.report.sum_step if name in ("SoTL", "SoG", "SoGN") else cfg.report.other_step
        step = cfg.report.val_mini_step if name == "ValAccMini" else step
        assert table.loc[name, "step"] == step and table.loc[name, "n_seeds"] == 2
        assert table.loc[name, "spearman_minus_reference"] == pytest.approx(
            table.loc[name, "spearman_mean"] - table.loc[name, "reference_spearman"], nan_ok=True)
        rho = np.array([ours[name, step, seed][0] for seed in (0, 1)])
        top = np.array([ours[name, step, seed][2] for seed in (0, 1)])
        spreads.append(np.ptp(rho))
        for metric, values in (("spearman", rho), ("top_k", top)):
            assert table.loc[name, f"{metric}_mean"] == pytest.approx(values.mean(), rel=1e-9, nan_ok=True), (name, metric)
            assert table.loc[name, f"{metric}_std"] == pytest.approx(np.std(values), rel=1e-9, abs=1e-12, nan_ok=True), (name, metric)
    assert np.nanmax(spreads) > 0.05  # the two supernets disagree, so mean, max and min differ


def test_windowed_sotl_and_validation_loss_are_ranked_from_the_logs(tmp_path: Path, run) -> None:
    """SoTL over the last k finetuning minibatches (``SoTL-E(E=k)``) and the whole-validation loss,
    recomputed by hand from the logs: sum of train_loss over steps max(1, t-k+1)..t, lower is better;
    val_loss at the evaluation steps, lower is better."""
    from scipy.stats import spearmanr

    cfg, _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.pt"))
    cfg = cfg.with_overrides(report={"estimators": ["SoTL-E(E=2)", "ValLoss", "SoTL-EMA"]})
    ws.report(cfg, copy, plot=False)
    corr = pd.read_csv(copy / "correlations.csv").set_index(["estimator", "step", "seed"])
    table = pd.read_csv(copy / "table.csv").set_index("estimator")
    archs = ws._read_arch_set(copy)
    logs = {i: pd.read_parquet(ws.log_dir(copy, 0) / f"arch-{i:05d}.parquet").sort_values("step") for i in archs.indices}
    for t in range(1, cfg.finetune.steps + 1):
        window = np.array([logs[i].train_loss.to_numpy()[max(1, t - 1) : t + 1].sum() for i in archs.indices])
        assert corr.loc[("SoTL-E(E=2)", t, 0), "spearman"] == pytest.approx(spearmanr(-window, archs.truth)[0], rel=1e-9)
    for t in (0, 2, 4):
        loss = np.array([logs[i].val_loss.to_numpy()[t] for i in archs.indices])
        assert corr.loc[("ValLoss", t, 0), "spearman"] == pytest.approx(spearmanr(-loss, archs.truth)[0], rel=1e-9)
    assert sorted(corr.loc["ValLoss"].index.get_level_values("step").unique()) == [0, 2, 4]
    assert dict(table.step) == {"SoTL-E(E=2)": cfg.report.sum_step, "ValLoss": 0, "SoTL-EMA": cfg.report.sum_step}
    assert "Read after t finetuning updates: ValLoss at step 0 (inherited weights); SoTL-E(E=2), SoTL-EMA at step 2." in (copy / "table.md").read_text()


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"estimators": ["SoTL", "SoTLx"]}, r"estimator 'SoTLx' is not computed from finetuning logs; valid: SoTL, SoTL-E"),
        ({"estimators": ["SoVL"]}, r"'SoVL' is not computed from finetuning logs"),
        ({"estimators": ["SoTL-E(E=0)"]}, r"window E must be a positive integer"),
        ({"estimators": ["SoTL", "SoTL"]}, r"report.estimators must be distinct"),
        ({"estimators": ["ValAcc"], "other_step": 3}, r"ValAcc is measured at step 0 and every 2 steps .* not at step 3"),
        ({"top_k": 7}, r"report.top_k must be 1..6 \(finetune.n_archs: .*\), got 7"),
        ({"top_k": 0}, r"report.top_k must be 1..6"),
    ],
)
def test_report_settings_that_cannot_be_reported_are_refused_when_the_config_loads(tmp_path: Path, run, capsys,
                                                                                 report: dict, message: str) -> None:
    """Pitfall pinned: a typo in report.estimators (or ValAcc asked at a step it is not measured at)
    was accepted, and the run failed at its report, after the supernets and all finetuning."""
    cfg, config, _ = run
    with pytest.raises(HarnessError, match=message):
        cfg.with_overrides(report=report)
    bad = tmp_path / "bad.toml"
    kept = [line for line in config.read_text().splitlines() if line.split(" = ")[0] not in report]
    lines = "".join(f"\n{key} = {json.dumps(value)}" for key, value in report.items())
    bad.write_text("\n".join(kept).replace("[report]", "[report]" + lines))
    assert main(["ws", "run", "--config", str(bad), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


# --------------------------------------------------------------------------- finetuning logs, replayed


def _replay_finetuning(cfg: WSConfig, supernet, ops: tuple[str, ...], arch_index: int, train, valid, updates: int) -> dict[str, list[float]]:
    """The first ``updates`` finetuning steps of one arch in plain torch, logged as finetune.py documents.

    Data, per the finetuning contract: the streams (FINETUNE, arch_seed, 0/1/2), the same for every
    arch, give the shuffled training order, the crops/flips of each training minibatch (drawn
    minibatch by minibatch) and the validation-minibatch order; the whole validation split is
    evaluated in consecutive chunks of eval_batch_size. Validation runs in eval mode (the stem's and
    reduction blocks' BN on their running statistics), training in train mode (updating them); SGD
    with Nesterov momentum at the algorithm's finetuning lr, no clipping."""
    import torch

    from harness import rng
    from harness.supernet.model import NB201Network

    ft = cfg.finetune
    state = supernet.state_dict()
    net = NB201Network(supernet.shape, [(op,) for op in ops])
    net.load_state_dict({name: state[name].clone() for name in net.state_dict()})  # the arch's supernet weights
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.finetune_lr, momentum=ft.momentum, weight_decay=ft.weight_decay,
                                nesterov=ft.nesterov)
    assert ft.grad_clip is None
    assert (updates + 1) * ft.batch_size <= len(train) and (updates + 1) * ft.val_mini_batch_size <= len(valid)  # one pass each
    train_order = rng.stream(rng.FINETUNE, ft.arch_seed, 0).permutation(len(train))
    augment = rng.stream(rng.FINETUNE, ft.arch_seed, 1)
    val_order = rng.stream(rng.FINETUNE, ft.arch_seed, 2).permutation(len(valid))
    cross_entropy = torch.nn.functional.cross_entropy
    log: dict[str, list[float]] = {key: [] for key in ("loss", "val_acc_mini", "val_acc", "val_loss", "grad_l1", "grad_l2", "grad_sum_l1")}
    summed: dict[str, torch.Tensor] = {}
    for t in range(updates + 1):
        net.eval()
        with torch.no_grad():
            if t % ft.eval_every == 0:
                correct, total = 0, 0.0
                for start in range(0, len(valid), ft.eval_batch_size):
                    x, y = valid.batch(np.arange(start, min(start + ft.eval_batch_size, len(valid))))
                    logits = net(x)
                    correct += int((logits.argmax(1) == y).sum())
                    total += float(cross_entropy(logits, y, reduction="sum"))
                log["val_acc"].append(100.0 * correct / len(valid))
                log["val_loss"].append(total / len(valid))
            x, y = valid.batch(val_order[t * ft.val_mini_batch_size : (t + 1) * ft.val_mini_batch_size])
            log["val_acc_mini"].append(100.0 * float((net(x).argmax(1) == y).float().mean()))
        net.train()
        x, y = train.batch(train_order[t * ft.batch_size : (t + 1) * ft.batch_size], augment)
        loss = cross_entropy(net(x), y)
        log["loss"].append(float(loss.detach()))
        if t == updates:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in net.named_parameters() if p.grad is not None}
        log["grad_l1"].append(float(sum(g.abs().sum() for g in grads.values())))
        log["grad_l2"].append(float(torch.cat([g.flatten() for g in grads.values()]).norm()))
        summed = {name: summed.get(name, 0) + g for name, g in grads.items()}
        log["grad_sum_l1"].append(float(sum(g.abs().sum() for g in summed.values())))
        optimizer.step()
    return log


def test_finetuning_log_equals_an_independent_replay_of_its_first_steps(run) -> None:
    """Pitfall pinned: the log's columns were only checked against each other (tl_mini against
    train_loss, which is built by shifting it), so a doubled loss, an L2 instead of an L1 gradient norm,
    ValAccMini measured on the training minibatch or ValAcc on the training images all went unseen.

    Replays the first two updates of every arch of supernet seed 0 and compares row by row."""
    import torch

    from harness.supernet.train import checkpoint_path, load_images, load_supernet

    cfg, _, out = run
    device = torch.device("cpu")
    train, valid = load_images(cfg, device)
    supernet = load_supernet(checkpoint_path(out, 0), cfg, device)
    archs = ws._read_arch_set(out)
    updates = 2
    assert updates % cfg.finetune.eval_every == 0 and cfg.finetune.steps > updates
    for arch_index, ops in NB201Space().items(archs):
        log = pd.read_parquet(ws.log_dir(out, 0) / f"arch-{arch_index:05d}.parquet").sort_values("step")
        replay = _replay_finetuning(cfg, supernet, ops, arch_index, train, valid, updates)
        rows = slice(0, updates + 1)
        close = {"rtol": 1e-5, "atol": 1e-6, "err_msg": str(arch_index)}
        np.testing.assert_allclose(log.tl_mini.to_numpy()[rows], replay["loss"], **close)
        np.testing.assert_allclose(log.train_loss.to_numpy()[1 : updates + 1], replay["loss"][:-1], **close)
        np.testing.assert_allclose(log.grad_l1.to_numpy()[1 : updates + 1], replay["grad_l1"], **close)
        np.testing.assert_allclose(log.grad_l2.to_numpy()[1 : updates + 1], replay["grad_l2"], **close)
        np.testing.assert_allclose(log.grad_sum_l1.to_numpy()[1 : updates + 1], replay["grad_sum_l1"], **close)
        np.testing.assert_allclose(log.val_acc_mini.to_numpy()[rows], replay["val_acc_mini"], **close)
        measured = log.step.to_numpy()[rows] % cfg.finetune.eval_every == 0
        np.testing.assert_allclose(log.val_acc.to_numpy()[rows][measured], replay["val_acc"], **close)
        np.testing.assert_allclose(log.val_loss.to_numpy()[rows][measured], replay["val_loss"], **close)


def test_a_copy_without_checkpoints_and_per_arch_logs_reports_like_the_run_folder(tmp_path: Path, run) -> None:
    cfg, _, out = run
    ws.report(cfg, out, plot=False)
    archs = ws._read_arch_set(out)
    results = tmp_path / "results"  # what gets committed under results/: no checkpoints, no logs/ folder
    shutil.copytree(out, results, ignore=shutil.ignore_patterns("logs", "*.pt"))
    for seed in cfg.supernet.seeds:
        pd.testing.assert_frame_equal(pd.read_parquet(results / f"logs-seed{seed}.parquet"), ws.read_logs(out, seed, archs))
    for name in ("table.md", "table.csv", "correlations.csv"):
        (results / name).unlink()
    ws.report(cfg, results, plot=False)
    for name in ("table.md", "table.csv", "correlations.csv"):
        assert (results / name).read_text() == (out / name).read_text(), name


def test_a_partial_report_keeps_every_logged_arch_in_the_merged_logs(tmp_path: Path, run) -> None:
    cfg, _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.pt"))
    missing = sorted(ws.log_dir(copy, 1).glob("arch-*.parquet"))[0]
    missing.unlink()
    ws.report(cfg, copy, plot=False, partial=True)
    index = int(missing.stem.removeprefix("arch-"))
    n = len(ws._read_arch_set(copy).indices)
    assert set(pd.read_parquet(copy / "logs-seed0.parquet").arch_index) == set(ws._read_arch_set(copy).indices)
    assert index not in set(pd.read_parquet(copy / "logs-seed1.parquet").arch_index)
    assert pd.read_parquet(copy / "logs-seed1.parquet").arch_index.nunique() == n - 1
    assert f"Partial run: {n - 1} of {n} archs" in (copy / "table.md").read_text()
    # a full report names the missing arch and leaves every file as it was
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    with pytest.raises(HarnessError, match=f"no finetuning log for arch {index} of supernet seed 1 .*finish finetuning first"):
        ws.report(cfg, copy, plot=False)
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == stamps


@pytest.mark.parametrize("dataset", ["ImageNet16-120", "cifar100"])
def test_pipeline_runs_on_imagenet16_and_cifar100_in_their_own_formats(tmp_path: Path, dataset: str) -> None:
    """ImageNet16-120 (16x16 images, 120 classes, NB201's pickled batches) and CIFAR-100 (100
    classes) end to end: validation is a half of their test/val set, and the truth (200-epoch, from
    NASLib's table) exists only for its archs, so every drawn arch must be one of them."""
    import torch

    from harness.supernet.train import checkpoint_path
    from harness.zerocost import embedded_table
    from image_fixtures import write_cifar100, write_imagenet16

    if dataset == "ImageNet16-120":
        write_imagenet16(tmp_path / "data")
    else:
        write_cifar100(tmp_path / "data", n_train=64, n_test=32)
    config = tmp_path / "toy.toml"
    text = CONFIG.replace('"cifar10-valid"', f'"{dataset}"').replace("seeds = [0, 1]", "seeds = [0]")
    config.write_text(text.replace("n_archs = 6", "n_archs = 4").replace("val_mini_batch_size = 16", "val_mini_batch_size = 8")
                      .format(root=tmp_path / "data"))
    out = tmp_path / "run"
    assert main(["ws", "run", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    weights = torch.load(checkpoint_path(out, 0), weights_only=True)["model"]
    assert weights["classifier.weight"].shape[0] == {"ImageNet16-120": 120, "cifar100": 100}[dataset]
    archs = ws._read_arch_set(out)
    naslib = embedded_table("nb201")
    naslib = naslib[naslib.dataset == dataset].set_index("index")
    np.testing.assert_allclose(archs.truth, naslib.loc[archs.indices, "val_accuracy"].to_numpy())
    logs = ws.read_logs(out, 0, archs)
    assert logs.arch_index.nunique() == 4 and logs.groupby("arch_index").size().eq(5).all()
    measured = logs.val_acc.dropna()
    assert len(measured) == 4 * 3 and measured.between(0, 100).all()
    assert "top-2 val acc % (ours)" in (out / "table.md").read_text()


def test_finetuning_in_arch_groups_logs_what_finetuning_one_at_a_time_logs(tmp_path: Path, run) -> None:
    """The run's logs came one arch at a time; groups of 4 (6 archs: a group of 4, then of 2) must
    give every arch the same log (float32 on the CPU: grouped convolutions only round differently)."""
    import torch

    from harness.supernet.finetune import finetune_archs
    from harness.supernet.train import checkpoint_path, load_images, load_supernet

    cfg, _, out = run
    grouped = cfg.with_overrides(device={"archs_per_group": 4})
    train, valid = load_images(grouped, torch.device("cpu"))
    supernet = load_supernet(checkpoint_path(out, 0), grouped, torch.device("cpu"))
    archs = ws._read_arch_set(out)
    items = NB201Space().items(archs)
    finetune_archs(supernet, items, grouped, train, valid, tmp_path, progress=False)
    columns = ["step", "train_loss", "tl_mini", "val_acc_mini", "val_acc", "val_loss", "grad_l1", "grad_sum_l1"]
    for index, arch in items:
        ours = pd.read_parquet(tmp_path / f"arch-{index:05d}.parquet")
        alone = pd.read_parquet(ws.log_dir(out, 0) / f"arch-{index:05d}.parquet")
        assert ours.arch.iloc[0] == alone.arch.iloc[0]
        np.testing.assert_allclose(ours[columns].to_numpy(), alone[columns].to_numpy(), rtol=1e-4, atol=1e-5, err_msg=str(index))
