"""The GPU pipelines (benchmarks/gpu/table42.sh, which runs benchmarks/gpu/table41.sh, and search.sh) end to end
on the CPU: each shipped GPU config with its device settings turned to the CPU and its sizes to a toy (search.sh:
configs/search-toy-cpu.toml), on the fake CIFAR-10 fixture. What is checked is the scripts' own logic (the space set
in the run's config, the units in order, prepare, train, finetune, report, the snapshot that comes back from the
device); the CUDA paths themselves are tested on a GPU by tests/test_supernet_dense.py."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from image_fixtures import write_cifar10

REPO = Path(__file__).resolve().parents[1]
TOY = [  # (pattern, replacement) applied once each to a shipped GPU config
    (r'^device = "cuda"', 'device = "cpu"'), (r"^amp = true", "amp = false"),
    (r"^channels_last = true", "channels_last = false"), (r"^cuda_graphs = true", "cuda_graphs = false"),
    (r"^cudnn_benchmark = true", "cudnn_benchmark = false"), (r"^archs_in_flight = 4", "archs_in_flight = 2"),
    (r"^channels = 16", "channels = 2"), (r"^cells_per_stage = \d", "cells_per_stage = 1"),
    (r"^epochs = \d+", "epochs = 1"), (r"^batch_size = 64", "batch_size = 16"),
    (r"^steps = 300", "steps = 4"), (r"^n_archs = \d+", "n_archs = 3"), (r"^eval_every = 100", "eval_every = 2"),
    (r"^sum_step = 100", "sum_step = 2"), (r"^top_k = 10", "top_k = 2"),
    (r'^root = "/tmp/data"', 'root = "/tmp/data"\nimage_size = 8'),
]


def _toy_config(shipped: str, path: Path) -> Path:
    text = (REPO / "configs" / shipped).read_text()
    for pattern, replacement in TOY:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        assert count >= 1, (shipped, pattern)
    path.write_text(text)
    return path


def _run_pipeline(script: str, tmp_path: Path, n_train: int, **variables: str) -> str:
    """`start`, then `wait 0` (a snapshot before any unit has finished), then `wait` until done, with the fixture
    data and RUN and OUT under tmp_path; returns the pipeline log."""
    write_cifar10(tmp_path / "data", n_train=n_train)
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "RUN": str(run), "OUT": str(out), "DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           **variables}
    command = ["bash", f"benchmarks/gpu/{script}"]
    subprocess.run([*command, "start"], cwd=REPO, env=env, check=True, capture_output=True, timeout=60)
    # Pitfall pinned: before any report or search log existed, the snapshot's summary stayed summary.txt.tmp (a
    # failed `[ -e ] && ...` ended its command group, so the rename never ran).
    subprocess.run([*command, "wait", "0"], cwd=REPO, env=env, check=True, capture_output=True, timeout=60)
    assert (out / "summary.txt").exists() and not (out / "summary.txt.tmp").exists()
    waited = subprocess.run([*command, "wait", "240"], cwd=REPO, env=env, check=True, capture_output=True, text=True,
                            timeout=300)
    assert "pipeline done" in waited.stdout, waited.stdout
    log = (run / "pipeline.log").read_text()
    assert "FAILED" not in log, log
    return log


@pytest.mark.parametrize(("space", "shipped", "other"), [("nb1shot1-2", "ws-nb1shot1-gpu.toml", "multipath"),
                                                         ("darts", "ws-darts-gpu.toml", "fairnas")])
def test_table42_sh_runs_its_units_and_snapshots_them_on_a_toy_cpu_config(tmp_path: Path, space: str, shipped: str,
                                                                          other: str) -> None:
    run, out = tmp_path / "run", tmp_path / "out"
    log = _run_pipeline("table42.sh", tmp_path, 96, SPACE=space, CFG=str(_toy_config(shipped, tmp_path / "toy.toml")),
                        UNITS=f"spos:0 {other}:0")
    assert re.search(rf'^space = "{space}"$', (run / "config.toml").read_text(), flags=re.M)
    assert re.findall(r"\] (.+): start$", log, flags=re.M) == [
        "train spos seed 0", "finetune spos seed 0", f"train {other} seed 0", f"finetune {other} seed 0"], log
    for algorithm in ("spos", other):
        assert (run / algorithm / "done-seed0").exists()
        report = (run / f"report-{algorithm}.txt").read_text()
        assert "SoTL" in report, report
    summary = (out / "summary.txt").read_text()
    assert "===== report-spos.txt" in summary and f"===== report-{other}.txt" in summary
    with tarfile.open(out / "run.tgz") as archive:
        names = archive.getnames()
    assert f"run/{other}/config.json" in names and not any(name.endswith(".pt") for name in names)
    assert not list(out.glob("*.pt"))  # every trained supernet was finetuned: no checkpoint to bring back


def test_search_sh_runs_its_units_and_snapshots_them_on_the_toy_cpu_config(tmp_path: Path) -> None:
    """benchmarks/gpu/search.sh with NB201's unit config set to configs/search-toy-cpu.toml: two searches side by side,
    each marked done, the snapshot's summary (renamed even before any search log exists) and its report."""
    run, out = tmp_path / "run", tmp_path / "out"
    log = _run_pipeline("search.sh", tmp_path, 512, PARALLEL="2", NB201_CONFIG="configs/search-toy-cpu.toml",
                        UNITS="nb201:darts-1:0 nb201:sotl-darts:0")
    assert "search nb201 darts-1 seed 0: done" in log and "search nb201 sotl-darts seed 0: done" in log, log
    assert (run / "nb201.darts-1" / "done-seed0").exists() and (run / "nb201.sotl-darts" / "done-seed0").exists()
    assert "search-nb201.sotl-darts-0.log" in (out / "summary.txt").read_text()
    assert any((out / "report" / "nb201").iterdir())
    with tarfile.open(out / "run.tgz") as archive:
        assert "run/nb201.darts-1/config.json" in archive.getnames()
