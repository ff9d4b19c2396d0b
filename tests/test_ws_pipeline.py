"""The weight-sharing experiment end to end on the CPU at toy scale, and its bookkeeping."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
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
    for name in ("table.md", "table.csv", "correlations.csv", "curves.png", "archs.csv", "config.json"):
        assert (out / name).is_file(), name
    corr = pd.read_csv(out / "correlations.csv")
    assert set(corr.estimator) == set(cfg.report.estimators) and set(corr.seed) == {0, 1}
    assert sorted(corr[corr.estimator == "ValAcc"].step.unique()) == [0, 2, 4]
    assert sorted(corr[corr.estimator == "SoTL"].step.unique()) == [1, 2, 3, 4]
    table = pd.read_csv(out / "table.csv")
    assert dict(zip(table.estimator, table.step)) == {"SoTL": 2, "TLMini": 0, "ValAccMini": 0, "ValAcc": 0, "SoG": 2, "SoGN": 2}
    assert "n/a" in (out / "table.md").read_text()


def test_log_columns_are_consistent(run) -> None:
    cfg, _, out = run
    archs = ws._read_arch_set(out)
    logs = ws.read_logs(out, 0, archs)
    for _, log in logs.groupby("arch_index"):
        log = log.sort_values("step")
        assert len(log) == cfg.finetune.steps + 1
        # tl_mini[t] is the loss of update t+1's minibatch, i.e. train_loss[t+1]
        np.testing.assert_allclose(log.tl_mini.to_numpy()[:-1], log.train_loss.to_numpy()[1:])
        assert np.isnan(log.train_loss.iloc[0]) and np.isnan(log.grad_l1.iloc[0])
        # after one step the summed gradient is the gradient itself
        assert log.grad_sum_l1.iloc[1] == pytest.approx(log.grad_l1.iloc[1], rel=1e-5)
        assert (log.grad_sum_l1.iloc[1:] <= log.grad_l1.iloc[1:].cumsum() * (1 + 1e-5)).all()  # triangle inequality
        assert log.val_acc.notna().tolist() == [s % 2 == 0 for s in log.step]


def test_estimators_read_the_logs_as_documented(run) -> None:
    _, _, out = run
    archs = ws._read_arch_set(out)
    logs = ws.read_logs(out, 1, archs)
    steps, scores, higher = ws.estimator_scores(logs, archs, "SoTL")
    first = logs[logs.arch_index == archs.indices[0]].sort_values("step")
    assert not higher and steps.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], first.train_loss.to_numpy()[1:].cumsum())
    steps, scores, higher = ws.estimator_scores(logs, archs, "SoGN")
    np.testing.assert_allclose(scores[:, 0], first.grad_l1.to_numpy()[1:].cumsum())
    steps, scores, _ = ws.estimator_scores(logs, archs, "ValAcc")
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
                          "top_k_mean": [70.0], "top_k_std": [0.0], "thesis_spearman": [np.nan], "thesis_top_k": [np.nan]})
    header = ws.render_table(cfg, table, archs).splitlines()[0]
    assert "top-10 val acc % (ours)" in header and "test acc" not in header  # the truth is NASLib's validation accuracy
    with pytest.raises(HarnessError, match="cannot sample"):
        ws.arch_set(cfg.with_overrides(finetune={"n_archs": 800}))
