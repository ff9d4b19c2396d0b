"""``harness search report``: run folders of real tiny searches (two algorithms, two seeds each) read
back into per-seed rows equal to the logs' final entries, means and stds recomputed here from the logs,
the published numbers equal to the embedded thesis tables' rows, and the command line's files and
refusals."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import thesis
from harness.cli import main
from harness.errors import HarnessError
from harness.search.config import SearchConfig
from harness.search.report import final_epochs, load_runs, published, summary, trajectories, write_report
from harness.search.run import run_search
from image_fixtures import write_cifar10

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ("darts-1", "sotl-darts")
SEEDS = (0, 1)
TRUTHS = ("cifar10_test_200", "cifar10_test_12", "cifar100_test_12", "imagenet16_test_12")
# our algorithm -> the method of thesis Table 4.6, written out here independently of the report's mapping
THESIS_ROWS = {"darts-1": "DARTS (first-order)", "sotl-darts": "SoTL-DARTS"}


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One folder per algorithm of two seeds of two epochs on NB201, the eigenvalue every second epoch
    (so the first epoch has none)."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    write_cifar10(root / "cifar", n_train=64, n_test=8)
    folders = []
    for algorithm in ALGORITHMS:
        cfg = SearchConfig().with_overrides(
            data={"root": str(root / "cifar"), "image_size": 8},
            network={"channels": 2, "cells_per_stage": 1},
            search={"algorithm": algorithm, "seeds": list(SEEDS), "epochs": 2, "batch_size": 8, "unroll_steps": 2,
                    "eigenvalue_every": 2, "eigenvalue_iterations": 5},
            device={"device": "cpu", "threads": 1},
        )
        folders.append(root / algorithm)
        run_search(cfg, folders[-1], progress=False)
    return folders


def _logs(folder: Path) -> dict[int, list[dict]]:
    return {seed: json.loads((folder / f"search-seed{seed}.json").read_text()) for seed in SEEDS}


def test_per_seed_rows_and_trajectories_are_the_logs_entries(run_dirs: list[Path]) -> None:
    runs = load_runs(run_dirs)
    steps = trajectories(runs)
    final = final_epochs(runs, steps).set_index(["algorithm", "seed"])
    assert len(final) == len(ALGORITHMS) * len(SEEDS) and len(steps) == 2 * len(final)
    for algorithm, folder in zip(ALGORITHMS, run_dirs):
        for seed, log in _logs(folder).items():
            row, last = final.loc[(algorithm, seed)], log[-1]
            assert (row.run, row.epoch, row.epochs, row.arch, row.n_skip, row.depth) == (
                folder.name, 2, 2, last["arch"], last["n_skip"], last["depth"])
            assert [row[column] for column in TRUTHS] == [last[column] for column in TRUTHS]
            assert row.hessian_eigenvalue == last["hessian_eigenvalue"]
            mine = steps[(steps.algorithm == algorithm) & (steps.seed == seed)]
            assert mine.epoch.tolist() == [1, 2] and mine.arch.tolist() == [entry["arch"] for entry in log]
            assert "hessian_eigenvalue" not in log[0] and np.isnan(mine.hessian_eigenvalue.iloc[0])


def test_means_and_population_stds_over_seeds(run_dirs: list[Path]) -> None:
    runs = load_runs(run_dirs)
    table = summary(runs, final_epochs(runs, trajectories(runs)))
    for algorithm, folder in zip(ALGORITHMS, run_dirs):
        finals = [log[-1] for log in _logs(folder).values()]
        for column in (*TRUTHS, "n_skip", "depth", "hessian_eigenvalue"):
            values = [entry[column] for entry in finals]
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5  # ddof=0
            assert table.loc[algorithm, f"{column}_mean"] == pytest.approx(mean, rel=1e-12, abs=1e-12)
            assert table.loc[algorithm, f"{column}_std"] == pytest.approx(std, rel=1e-9, abs=1e-9)
        assert (table.loc[algorithm, "seeds"], table.loc[algorithm, "n_seeds"]) == ("0 1", 2)


def test_the_published_numbers_are_the_thesis_tables_rows(run_dirs: list[Path]) -> None:
    runs = load_runs(run_dirs)
    table = summary(runs, final_epochs(runs, trajectories(runs)))
    reference = thesis.table("4.6")
    for algorithm, method in THESIS_ROWS.items():
        (row,) = reference[(reference.method == method) & (reference.dataset == "CIFAR10")].itertuples()
        got = table.loc[algorithm]
        assert (got.published_source, got.published_method, got.published_mean, got.published_std) == (
            "thesis Table 4.6", method, row.mean, row.std)
        assert got["diff"] == pytest.approx(got.cifar10_test_200_mean - row.mean)


def test_gaea_darts_and_the_darts_space_are_set_beside_their_tables() -> None:
    path = resources.files("harness.embedded") / "reference" / "li-thesis-table-6.4.csv"
    (li,) = [row for row in csv.DictReader(path.read_text().splitlines())
             if row["method"] == "GAEA DARTS (bilevel)" and row["dataset"] == "CIFAR-10"]
    gaea = published(SearchConfig().with_overrides(search={"algorithm": "gaea-darts"}))
    assert gaea is not None
    assert (gaea.source, gaea.mean, gaea.std) == ("Li Table 6.4", float(li["test_acc_mean"]), float(li["test_acc_std"]))
    erm = published(SearchConfig().with_overrides(search={"algorithm": "gaea-erm"}))
    assert erm is not None and (erm.method, erm.mean, erm.std) == ("GAEA DARTS (ERM)", 94.10, 0.29)  # as Li's table prints it
    cases = [  # (space, algorithm, cells_per_stage, epochs) -> (method, NB301 average) as printed in thesis Table 4.8 / 4.6
        (("darts", "sotl-darts", 2, 50), ("SoTL-DARTS", 94.11, 0.24)),
        (("darts", "sotl-darts", 6, 50), ("SoTL-DARTS-20", 94.21, 0.18)),
        (("darts", "darts-2", 2, 50), ("DARTS (2nd)", 93.79, 0.57)),
        (("nb201", "sotl-darts", 5, 150), ("SoTL-DARTS (150 epochs)", 89.89, 2.52)),
    ]
    for (space, algorithm, cells, epochs), expected in cases:
        ref = published(SearchConfig().with_overrides(space=space, network={"cells_per_stage": cells},
                                                      search={"algorithm": algorithm, "epochs": epochs}))
        assert ref is not None and (ref.method, ref.mean, ref.std) == expected
    for space, algorithm in (("darts", "sovl-darts"), ("darts-s2", "sotl-darts")):
        assert published(SearchConfig().with_overrides(space=space, search={"algorithm": algorithm})) is None


def test_cli_writes_the_tables_trajectories_and_figure(run_dirs: list[Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["search", "report", *map(str, run_dirs), "--out", str(out), "--label", "CPU mini protocol"]) == 0
    for name in ("table.md", "table.csv", "trajectories.csv", "trajectories.png", "trajectories.pdf"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "table.md").read_text()
    assert text == capsys.readouterr().out.split("\nwrote ")[0]
    assert text.splitlines()[0] == "# Differentiable search: CPU mini protocol" and "Seeds used: 0, 1." in text
    reference = thesis.table("4.6").set_index(["method", "dataset"])
    table = pd.read_csv(out / "table.csv", index_col="algorithm")
    for algorithm, folder in zip(ALGORITHMS, run_dirs):
        method = THESIS_ROWS[algorithm]
        mean, std = reference.loc[(method, "CIFAR10"), ["mean", "std"]]
        ours = table.loc[algorithm]
        line = next(line for line in text.splitlines() if line.startswith(f"| {algorithm} | 2 | "))
        assert f"| {ours.cifar10_test_200_mean:.2f} ({ours.cifar10_test_200_std:.2f}) | {mean:.2f} ({std:.2f}) " \
               f"| {ours.cifar10_test_200_mean - mean:.2f} | thesis Table 4.6: {method} |" in line
        for seed, log in _logs(folder).items():
            arch = log[-1]["arch"].replace("|", "\\|")
            assert any(line.startswith(f"| {algorithm} | {algorithm} | {seed} | 2/2 | `{arch}` | {log[-1]['cifar10_test_200']:.2f} |")
                       for line in text.splitlines())
    assert "cifar100_test_12 (transfer)" in text
    assert len(pd.read_csv(out / "trajectories.csv")) == len(ALGORITHMS) * len(SEEDS) * 2


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["search", "report", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: error: ") and "Traceback" not in err
    return err


def test_bad_folders_are_refused_in_one_line_and_nothing_is_written(run_dirs: list[Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "report")
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _refused(capsys, str(tmp_path / "empty"), "--out", out)
    no_logs = tmp_path / "no-logs"
    no_logs.mkdir()
    shutil.copy(run_dirs[0] / "config.json", no_logs / "config.json")
    assert "holds no search-seed<seed>.json" in _refused(capsys, str(no_logs), "--out", out)
    assert "given twice" in _refused(capsys, str(run_dirs[0]), str(run_dirs[0]), "--out", out)
    same_name = shutil.copytree(run_dirs[0], tmp_path / "elsewhere" / run_dirs[0].name)
    assert "have one name" in _refused(capsys, str(run_dirs[0]), str(same_name), "--out", out)
    twin = shutil.copytree(run_dirs[0], tmp_path / "twin")
    (twin / "search-seed1.json").write_text("[{\"epoch\": 1}]")
    assert "search-seed1.json, entry 0: no arch, cifar10_test_200" in _refused(capsys, str(twin), "--out", out)
    darts = _darts_space_folder(run_dirs[1], tmp_path / "darts")
    err = _refused(capsys, str(run_dirs[0]), str(darts), "--out", out)
    assert "different spaces (nb201: " in err and "darts: " in err
    assert not (tmp_path / "report").exists()
    with pytest.raises(HarnessError, match="no search run folders"):
        write_report([], tmp_path / "report")


def _darts_space_folder(source: Path, dest: Path) -> Path:
    """``source``'s folder as if it had searched the DARTS space with GAEA DARTS (its config's space and
    algorithm changed, each log entry given NB301's truth column): a folder of another space, and of an
    algorithm that Table 4.8 does not print."""
    shutil.copytree(source, dest)
    config = json.loads((dest / "config.json").read_text())
    config["space"], config["search"]["algorithm"] = "darts", "gaea-darts"
    (dest / "config.json").write_text(json.dumps(config))
    for seed in SEEDS:
        log = json.loads((dest / f"search-seed{seed}.json").read_text())
        (dest / f"search-seed{seed}.json").write_text(json.dumps([{**entry, "cifar10_valid_98": 90.0 + seed} for entry in log]))
    return dest


def test_an_algorithm_without_a_published_number_shows_a_dash(run_dirs: list[Path], tmp_path: Path) -> None:
    darts = _darts_space_folder(run_dirs[1], tmp_path / "darts")
    files = write_report([darts], tmp_path / "report")
    (line,) = [line for line in files["table"].read_text().splitlines() if line.startswith("| gaea-darts | 2 | ")]
    assert line == "| gaea-darts | 2 | 90.50 (0.50) | - | - | - |"


def test_the_report_imports_without_torch() -> None:
    code = "import sys; import harness.search.report, harness.commands.search; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
