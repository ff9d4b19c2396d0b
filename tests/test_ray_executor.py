"""The executors (issue 18): the weight-sharing run and correlation sweeps on a Ray cluster give
the local executor's results bit for bit; a worker killed mid-task is retried and resumes without
losing or repeating an arch; a user error in a task reads as one line, unretried; Ctrl-C stops the
cluster's tasks and leaves a run that the local executor completes.

The Ray tests share one local cluster of 2 CPUs, started here; the CLI reuses it (an initialised
Ray is used as it is). They are skipped only where ray is not installed.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.experiments.config import to_toml
from harness.experiments.executors import LocalExecutor, Progress, RayExecutor, Task, TaskResources
from harness.supernet.config import LOGISTICS, load_config
from correlation_fixtures import run_config, write_curve_store
from image_fixtures import write_cifar10

_REPO = Path(__file__).resolve().parents[1]


def _subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment as it is now (Ray's auth settings, set by ray.init, included),
    with this checkout first on the path: a driver in a subprocess imports this harness whatever an
    editable install points to."""
    path = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}

# The toy pipeline of tests/test_ws_pipeline.py, with enough finetuning steps per arch (a few
# tenths of a second) that a worker can be killed between two archs of a shard.
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
steps = 12
batch_size = 16
eval_every = 6
eval_batch_size = 64
val_mini_batch_size = 16
[device]
device = "cpu"
[executor]
shards = 2
[report]
sum_step = 2
top_k = 2
bootstrap = 100
"""


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray cluster of 2 CPUs for this module; its address."""
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray: pip install -e '.[ray]' (the test extra has it)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", _subprocess_env()["PYTHONPATH"])  # the workers import this checkout's harness
        patch.setenv("RAY_worker_niceness", "0")  # Ray's default 15 starves the workers on a busy machine
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the tasks defined here, for the workers
        yield ray.get_runtime_context().gcs_address
        ray.shutdown()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ray-ws")
    write_cifar10(base / "data", n_train=160)
    config = base / "toy.toml"
    config.write_text(CONFIG.format(root=base / "data"))
    return config


@pytest.fixture(scope="module")
def local_run(toy: Path) -> Path:
    """The reference: the local executor, in this process, one finetuning task per seed."""
    out = toy.parent / "local"
    assert main(["ws", "run", "--config", str(toy), "--out", str(out), "--shards", "1", "--no-progress"]) == 0
    return out


def _run(toy: Path, out: Path, *flags: str) -> int:
    return main(["ws", "run", "--config", str(toy), "--out", str(out), "--no-progress", *flags])


def assert_same_results(expected: Path, got: Path) -> None:
    """Table, correlations, quality gate, supernet weights and every arch's log (less its wall-clock
    ``seconds``) equal bit for bit; every arch logged once per seed."""
    import torch

    for name in ("table.md", "correlations.csv", "quality.csv"):
        assert (got / name).read_text() == (expected / name).read_text(), name
    archs = ws._read_arch_set(expected)
    for seed in load_config(got / "config.json").supernet.seeds:
        names = sorted(p.name for p in ws.log_dir(expected, seed).glob("arch-*.parquet"))
        assert sorted(p.name for p in ws.log_dir(got, seed).glob("arch-*.parquet")) == names
        assert names == [f"arch-{i:05d}.parquet" for i in sorted(archs.indices)]
        for name in names:
            pd.testing.assert_frame_equal(pd.read_parquet(ws.log_dir(got, seed) / name).drop(columns="seconds"),
                                          pd.read_parquet(ws.log_dir(expected, seed) / name).drop(columns="seconds"),
                                          check_exact=True)
        merged = pd.read_parquet(got / f"logs-seed{seed}.parquet")
        assert merged.groupby("arch_index").size().to_dict() == {int(i): 13 for i in archs.indices}  # steps 0..12, once
        ours = torch.load(got / f"supernet-seed{seed}.pt", weights_only=True)["model"]
        theirs = torch.load(expected / f"supernet-seed{seed}.pt", weights_only=True)["model"]
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def _task_pids(prefix: str) -> list[int]:
    """Processes whose title starts with ``ray::<prefix>`` (a Ray worker names itself after its task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and title.startswith(f"ray::{prefix}"):
            pids.append(int(entry.name))
    return pids


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("arch-*.parquet")}


# --------------------------------------------------------------------------- weight sharing on Ray


def test_a_ray_run_equals_the_local_run_bit_for_bit(cluster: str, toy: Path, local_run: Path, tmp_path: Path) -> None:
    """Two finetuning shards per seed on 2 workers, in whatever order they finish, against one task
    per seed in this process; the executor settings are recorded; the cluster of the caller stays."""
    import ray

    out = tmp_path / "ray"
    assert _run(toy, out, "--executor", "ray") == 0
    assert_same_results(local_run, out)
    assert json.loads((out / "config.json").read_text())["executor"] == {"num_cpus": None, "num_gpus": None,
                                                                       "max_retries": 3, "shards": 2}
    assert ray.is_initialized()


def test_a_worker_killed_in_a_finetuning_shard_is_retried_and_skips_the_archs_it_logged(
        cluster: str, toy: Path, local_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    logs = ws.log_dir(out, 0)
    seen: dict[str, object] = {}

    def kill_mid_shard() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "pid" not in seen:
            pids = _task_pids("ws finetune seed 0 shard 0/1")
            if pids and _stamps(logs):  # the shard of seed 0 runs and has logged an arch
                seen["logged"] = _stamps(logs)
                os.kill(pids[0], signal.SIGKILL)
                seen["pid"] = pids[0]
            time.sleep(0.01)

    killer = threading.Thread(target=kill_mid_shard, daemon=True)
    killer.start()
    assert _run(toy, out, "--executor", "ray", "--shards", "1") == 0
    killer.join()
    assert "pid" in seen, "the shard's worker was found and killed"
    logged = seen["logged"]
    assert 0 < len(logged) < 6, "killed between two archs of its shard"
    assert {name: stamp for name, stamp in _stamps(logs).items() if name in logged} == logged  # not finetuned again
    assert_same_results(local_run, out)


def test_ctrl_c_stops_the_cluster_tasks_and_the_local_executor_resumes_the_run(
        cluster: str, toy: Path, local_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "interrupted"

    def interrupt_once_an_arch_is_logged() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any((out / "logs").glob("seed*/arch-*.parquet")):
                _thread.interrupt_main()  # Ctrl-C
                return
            time.sleep(0.01)

    threading.Thread(target=interrupt_once_an_arch_is_logged, daemon=True).start()
    assert _run(toy, out, "--executor", "ray") == 130
    assert capsys.readouterr().err.strip().endswith("harness: interrupted; the tasks were stopped; what they finished "
                                                    "is kept: the same command (with either executor) goes on from there")
    left = {seed: _stamps(ws.log_dir(out, seed)) for seed in (0, 1)}
    assert sum(map(len, left.values())) < 12
    time.sleep(2)
    assert {seed: _stamps(ws.log_dir(out, seed)) for seed in (0, 1)} == left  # nothing runs on
    assert not _task_pids("ws ")
    assert _run(toy, out, "--shards", "1") == 0  # the local executor, another shard count (a logistics setting)
    assert_same_results(local_run, out)


def test_a_user_error_in_a_task_prints_the_local_executors_one_line(
        cluster: str, toy: Path, local_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The finetuning task of seed 0 refuses logs made from a supernet of other epochs (a HarnessError
    raised on the worker, not in this process)."""
    out = tmp_path / "run"
    shutil.copytree(local_run, out)
    summary = out / "supernet-seed0.json"
    summary.write_text(summary.read_text().replace('"epochs_done": 1', '"epochs_done": 7'))
    assert _run(toy, out) == 2
    local = capsys.readouterr().err
    assert _run(toy, out, "--executor", "ray") == 2
    remote = capsys.readouterr().err
    assert remote == local and len(local.strip().splitlines()) == 1
    assert local.startswith(f"harness: error: the logs in {ws.log_dir(out, 0)} were finetuned from the supernet after 7 epochs")


# --------------------------------------------------------------------------- the executor itself


def _fail(report, marker: Path) -> None:
    with marker.open("a") as f:
        f.write(f"{os.getpid()}\n")
    raise HarnessError("bad input; valid: good input")


def _die(report, marker: Path, deaths: int) -> str:
    """Appends its pid to ``marker``; its first ``deaths`` attempts kill their own worker mid-task."""
    with marker.open("a") as f:
        f.write(f"{os.getpid()}\n")
    if len(marker.read_text().splitlines()) <= deaths:
        os.kill(os.getpid(), signal.SIGKILL)
    report("arch", 2)
    return "done"


def _after(report, marker: Path, result_of: Path) -> int:
    report("arch", 1)
    report("supernet", 1)
    return len(result_of.read_text().splitlines()) if result_of.is_file() else 0


def _threads(report, threads: int) -> tuple[str | None, int]:
    from harness.supernet.config import WSConfig
    from harness.supernet.train import cpu_threads
    import torch

    with cpu_threads(WSConfig().with_overrides(device={"threads": threads})):
        return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()


class _Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[str, int]] = []

    def __call__(self, kind: str, n: int) -> None:
        self.reports.append((kind, n))


def test_the_ray_executor_retries_a_dead_worker_never_a_raising_task(cluster: str, tmp_path: Path) -> None:
    with RayExecutor() as executor:
        failing = tmp_path / "failing"
        with pytest.raises(HarnessError) as raised:
            executor.run([Task(_fail, (failing,))], TaskResources(max_retries=3))
        assert type(raised.value) is HarnessError and str(raised.value) == "bad input; valid: good input"
        assert len(failing.read_text().splitlines()) == 1  # raised once, not retried

        dying, recorder = tmp_path / "dying", _Recorder()
        results = executor.run([Task(_die, (dying, 1)), Task(_after, (tmp_path / "x", dying), after=(0,))],
                               TaskResources(max_retries=1), recorder)
        assert results == ["done", 2]  # the second attempt finished, then the task after it ran
        assert len(set(dying.read_text().split())) == 2  # two worker processes
        assert sorted(recorder.reports) == [("arch", 1), ("arch", 2), ("supernet", 1)]

        always = tmp_path / "always"
        with pytest.raises(HarnessError, match=r"a task was lost on the cluster \(.*\) and retried up to max_retries = 1"):
            executor.run([Task(_die, (always, 10))], TaskResources(max_retries=1))
        assert len(always.read_text().splitlines()) == 2  # the first attempt and one retry
        with pytest.raises(HarnessError, match=r"task 0 \(_after\) must come after the tasks it needs, \[0\]"):
            executor.run([Task(_after, (always, always), after=(0,))], TaskResources())


def test_device_threads_hold_inside_a_ray_task_whatever_ray_sets_omp_num_threads_to(cluster: str) -> None:
    """Ray starts a 1-CPU task with OMP_NUM_THREADS=1; the run's device.threads (the CPU rounding)
    must hold inside it, as the train and finetune tasks set it with ``cpu_threads``."""
    with RayExecutor() as executor:
        (omp, threads), = executor.run([Task(_threads, (2,))], TaskResources(num_cpus=1))
    assert omp == "1" and threads == 2


def test_the_local_executor_runs_tasks_in_order_in_this_process(tmp_path: Path) -> None:
    recorder = _Recorder()
    marker = tmp_path / "marker"
    marker.write_text("1\n2\n")
    results = LocalExecutor().run([Task(_after, (marker, marker)), Task(_threads, (3,), after=(0,))], TaskResources(), recorder)
    assert results[0] == 2 and results[1][1] == 3 and recorder.reports == [("arch", 1), ("supernet", 1)]


def test_progress_counts_its_first_kind_and_names_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress("run", {"arch": 10, "supernet": 2}, {"arch": 3})
    bar("arch", 4)
    bar("supernet", 1)
    bar.close()
    assert bar.done == {"arch": 7, "supernet": 1} and bar.bar.n == 7
    last = capsys.readouterr().err.rstrip().split("\r")[-1]
    assert last.startswith("run:  70%") and " 7/10 [" in last and last.endswith("arch/s, supernet 1/2]")
    with pytest.raises(HarnessError, match="unknown kind 'epoch'; this run counts \\['arch', 'supernet'\\]"):
        bar("epoch", 1)


# --------------------------------------------------------------------------- correlation sweeps


def test_a_correlation_sweep_on_ray_equals_the_local_one(cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Each config one task. The Ray sweep is a second driver that joins this module's cluster by
    its address, from another working directory, with relative paths: the tasks run in the
    directory of the driver (the cluster's workers started in this process's)."""
    write_curve_store(tmp_path / "store", n_epochs=6)
    configs = []
    for name, estimators in (("sweep-a", ["SoTL", "ValAcc"]), ("sweep-b", ["SoTL-all", "Params"])):
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(run_config(name=name, estimators=estimators, sampling={"n_archs": 40, "repetitions": 2})))
        configs += ["--config", path.name]
    args = ["correlate", *configs, "--root", "store", "--no-progress"]
    remote = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--out", "ray", "--executor", "ray",
                             "--ray-address", cluster], cwd=tmp_path, env=_subprocess_env(), capture_output=True,
                            text=True, timeout=300)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.count("sweep-a: ") == 1 and remote.stdout.count("sweep-b: ") == 1
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--out", "local"]) == 0
    for name in ("sweep-a", "sweep-b"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / name / "results.parquet"),
                                      pd.read_parquet(tmp_path / "local" / name / "results.parquet"), check_exact=True)
    capsys.readouterr()
    assert main(["correlate", "--config", str(tmp_path / "sweep-a.toml"), "--config", str(tmp_path / "sweep-b.toml"),
                 "--run-id", "one", "--out", str(tmp_path)]) == 2
    assert "--run-id names one run folder, but 2 configs were given" in capsys.readouterr().err
    twice = ["--config", str(tmp_path / "sweep-a.toml")] * 2
    assert main(["correlate", *twice, "--out", str(tmp_path)]) == 2
    assert "would both write" in capsys.readouterr().err


# --------------------------------------------------------------------------- settings and bad input


def test_executor_settings_are_logistics_and_bad_values_name_what_is_valid(tmp_path: Path) -> None:
    assert {"executor.num_cpus", "executor.num_gpus", "executor.max_retries", "executor.shards"} <= LOGISTICS
    config = tmp_path / "c.toml"
    for line, message in (("num_cpus = 0", "executor.num_cpus must be > 0"),
                          ("num_gpus = 1.5", "executor.num_gpus must be a fraction 0..1 or a whole number"),
                          ("num_gpus = -1", "executor.num_gpus must be a fraction 0..1"),
                          ("max_retries = -1", "executor.max_retries must be >= 0"),
                          ("shards = 201", r"executor.shards must be 1..200 \(finetune.n_archs\)"),
                          ("workers = 2", "unknown key in \\[executor\\] 'workers'; valid: 'num_cpus'")):
        config.write_text(f"[executor]\n{line}\n")
        with pytest.raises(HarnessError, match=message):
            load_config(config)
    config.write_text("[executor]\nnum_gpus = 0.25\nnum_cpus = 2\n")
    cfg = load_config(config)
    assert ws.task_resources(cfg) == TaskResources(num_cpus=2.0, num_gpus=0.25, max_retries=3)
    cpu = cfg.with_overrides(executor={"num_gpus": None, "num_cpus": None}, device={"device": "cpu", "threads": 3})
    assert ws.task_resources(cpu) == TaskResources(num_cpus=3.0, num_gpus=0.0, max_retries=3)
    assert ws.task_resources(cpu.with_overrides(device={"device": "cuda"})).num_gpus == 1.0
    assert ws.task_resources(cpu.with_overrides(device={"device": "auto"})).num_gpus is None  # the cluster decides
    with pytest.raises(HarnessError, match="a task on a cluster sees only the GPUs it reserved .*use device = 'cuda' or 'auto'"):
        ws.run_all(cpu.with_overrides(device={"device": "cuda:1"}), tmp_path / "run", executor=RayExecutor())
    assert not (tmp_path / "run").exists()


def test_without_ray_the_ray_executor_says_how_to_install_it(toy: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert _run(toy, tmp_path / "run", "--executor", "ray") == 2
    assert capsys.readouterr().err.strip() == 'harness: error: the Ray executor needs ray, which is not installed: pip install -e ".[ray]"'
    assert not (tmp_path / "run").exists()
    assert _run(toy, tmp_path / "run", "--ray-address", "127.0.0.1:1") == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


def test_an_address_where_no_cluster_listens_is_refused_at_once(toy: Path, tmp_path: Path) -> None:
    """By --ray-address or RAY_ADDRESS (Ray itself would retry for minutes); nothing is written."""
    pytest.importorskip("ray", reason="the Ray executor needs ray: pip install -e '.[ray]' (the test extra has it)")
    command = [sys.executable, "-m", "harness.cli", "ws", "run", "--config", str(toy), "--out", str(tmp_path / "run"),
               "--executor", "ray", "--no-progress"]
    expected = "harness: error: no Ray cluster at 127.0.0.1:1 ("
    for flags, env in ((["--ray-address", "127.0.0.1:1"], {}), ([], {"RAY_ADDRESS": "127.0.0.1:1"})):
        done = subprocess.run(command + flags, env=_subprocess_env(**env), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stderr.startswith(expected), done.stderr
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- differentiable search


def test_a_search_on_ray_equals_the_local_one_seed_by_seed(cluster: str, tmp_path: Path) -> None:
    """One task per seed, the two seeds side by side on 2 workers, against one seed after the
    other in this process: the same architecture weights, network weights and per-epoch logs."""
    import torch

    write_cifar10(tmp_path / "data", n_train=512, n_test=8)
    toy = _REPO / "configs" / "search-toy-cpu.toml"
    common = ["search", "run", "--config", str(toy), "--data-root", str(tmp_path / "data"), "--algorithm", "sotl-darts",
              "--seed", "0", "--seed", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    for seed in (0, 1):
        ours = torch.load(tmp_path / "ray" / f"search-seed{seed}.pt", weights_only=True)
        theirs = torch.load(tmp_path / "local" / f"search-seed{seed}.pt", weights_only=True)
        assert torch.equal(ours["alpha"], theirs["alpha"])
        assert all(torch.equal(ours["model"][key], theirs["model"][key]) for key in theirs["model"])
        logs = [[{k: v for k, v in epoch.items() if k != "seconds"}
                 for epoch in json.loads((tmp_path / run / f"search-seed{seed}.json").read_text())] for run in ("ray", "local")]
        assert logs[0] == logs[1] and len(logs[0]) == 2
    alphas = [torch.load(tmp_path / "ray" / f"search-seed{seed}.pt", weights_only=True)["alpha"] for seed in (0, 1)]
    assert not torch.equal(*alphas)  # the seeds are two searches, not one run twice


def test_a_local_cluster_started_by_the_executor_runs_its_workers_at_the_callers_priority(tmp_path: Path) -> None:
    """Pitfall: Ray starts workers at niceness 15, so beside any other load a Ray run was 10x slower
    than the local executor (benchmarks/ray_executor.py measured 257 s against 21 s). A cluster the
    executor starts runs them at the caller's niceness (Ray adds RAY_worker_niceness to it, 0 unless
    the caller sets it), and the caller's environment is left as it was. (A separate process: this module's cluster is running.)"""
    pytest.importorskip("ray", reason="the Ray executor needs ray: pip install -e '.[ray]' (the test extra has it)")
    code = (
        "import os\n"
        "from harness.experiments.executors import RayExecutor, Task, TaskResources\n"
        "def nice(report): return os.nice(0)\n"
        "with RayExecutor(local_cpus=1) as executor:\n"
        "    worker = executor.run([Task(nice)], TaskResources(num_cpus=1))[0]\n"
        "print(worker, os.nice(0), os.environ.get('RAY_worker_niceness'))\n"
    )
    script = tmp_path / "nice.py"
    script.write_text(code)
    for extra, added in (({}, 0), ({"RAY_worker_niceness": "7"}, 7)):
        env = _subprocess_env(**extra)
        if not extra:
            env.pop("RAY_worker_niceness", None)  # this module's cluster fixture sets it
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        worker, caller, variable = done.stdout.strip().splitlines()[-1].split()
        # Ray adds its worker niceness to the caller's, capped at the system's 19 (a niced test run)
        assert int(worker) == min(19, int(caller) + added)
        assert variable == (extra.get("RAY_worker_niceness") or "None")  # the caller's environment as it was
