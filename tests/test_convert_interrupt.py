"""Ctrl-C during ``harness data convert``: one line on stderr, status 130, no store, no temporary folder.

Each test runs the real command in a process of its own group and sends SIGINT to the whole group,
as a terminal does on Ctrl-C (the NB201 reading workers get it too). The signal is sent only once
the conversion is certainly still running, never after a fixed sleep: a worker is blocked reading an
arch file that is a FIFO, or a hook in the child waits at the named step until the signal comes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from harness.adapters.nb201_files import CHUNK_ARCHS
from harness.cli import main
from harness.commands import data
from nb101_fixtures import write_fixture
from nb201_fixtures import official_meta_archs, write_simple_dir

N_ARCHS = 2 * CHUNK_ARCHS + 3  # three chunks: the pool really starts, and the last chunk comes after others
HP12 = {"12": {"cifar10-valid": [777], "cifar10": [111]}}
TIMEOUT_S = 300  # only a bound on a hang: a loaded 2-core machine may be slow to import and fork
T = TypeVar("T")

# Run in the child before the command: each worker waits before its initializer makes it ignore
# SIGINT, so Ctrl-C lands exactly in that gap (where Python's own handler would raise
# KeyboardInterrupt in the worker and print a traceback) ...
WORKERS_WAIT_BEFORE_THEIR_INITIALIZER = """
import os, time
from pathlib import Path
from harness.adapters import nb201_files
marks = Path(os.environ["MARKS"])
ignore_sigint = nb201_files._ignore_sigint
def start_slowly():
    (marks / f"worker-{os.getpid()}").touch()
    while not (marks / "go").exists():
        time.sleep(0.01)
    ignore_sigint()
nb201_files._ignore_sigint = start_slowly
"""
# ... or the store's first array is created (the temporary folder exists), and the writer waits.
WRITER_WAITS_AFTER_ITS_FIRST_ARRAY = """
import os, time
from pathlib import Path
from harness.store.columnar import StoreWriter
add_column = StoreWriter.add_column
def add_column_and_wait(self, column, n_rows):
    array = add_column(self, column, n_rows)
    Path(os.environ["MARKS"], "writing").touch()
    time.sleep(3600)  # until Ctrl-C
    return array
StoreWriter.add_column = add_column_and_wait
"""
RUN_CLI = "\nimport sys\nfrom harness.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _nats_source(tmp_path: Path) -> Path:
    return write_simple_dir(tmp_path / "NATS-tss-v1_0-3ffb9-simple", range(N_ARCHS), official_meta_archs(), HP12)


def _start(tmp_path: Path, argv: list[str], hook: str = "") -> subprocess.Popen[bytes]:
    """``harness ARGV`` (after ``hook``) in a new process group; its stderr goes to tmp_path/stderr."""
    marks = tmp_path / "marks"
    marks.mkdir()
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", hook + RUN_CLI, *argv], stdout=out, stderr=err, start_new_session=True,
            env={**os.environ, "MARKS": str(marks)},
        )


def _wait_for(ready: Callable[[], T], process: subprocess.Popen[bytes], what: str, tmp_path: Path) -> T:
    """Poll ``ready()`` until it returns something true; fail if the command ends first."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (result := ready()):
        stderr = (tmp_path / "stderr").read_text(errors="replace")
        assert process.poll() is None, f"the command ended (status {process.returncode}) before {what}:\n{stderr}"
        assert time.monotonic() < deadline, f"no sign of {what} after {TIMEOUT_S} s:\n{stderr}"
        time.sleep(0.02)
    return result


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group


def _assert_interrupted(process: subprocess.Popen[bytes], tmp_path: Path, dest: Path) -> None:
    try:
        status = process.wait(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stderr = (tmp_path / "stderr").read_bytes().decode()  # keeping the carriage returns
    # the progress bar redraws itself after a carriage return; every other line is a message
    messages = [line for line in stderr.split("\n") if line and not line.startswith("\r")]
    assert messages == [f"harness: interrupted; no store was written at {dest}"], stderr
    assert status == 130
    assert not dest.exists()
    assert not list(dest.parent.glob(f".{dest.name}.*")), "a temporary folder was left behind"


def _open_for_writing(fifo: Path) -> int | None:
    """A write end of ``fifo`` once a reader has opened it (None before: ENXIO)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ENXIO:
            return None
        raise


def test_ctrl_c_while_workers_read_nb201_files(tmp_path: Path) -> None:
    src = _nats_source(tmp_path)
    last = src / f"{N_ARCHS - 1:06d}.pickle.pbz2"
    content = last.read_bytes()
    last.unlink()
    os.mkfifo(last)  # the worker that reads it waits until it is fed: the conversion is still running
    dest = tmp_path / "store"
    process = _start(tmp_path, ["data", "convert", "nb201", str(src), str(dest)])
    fd = _wait_for(lambda: _open_for_writing(last), process, "a worker reading the last arch file", tmp_path)
    _interrupt(process)
    os.set_blocking(fd, True)
    # the worker finishes its chunk, so the converting process can stop the pool (on a one-core
    # machine the converting process reads the file itself, and Ctrl-C ends that read: no reader)
    with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as fifo:
        fifo.write(content)
    _assert_interrupted(process, tmp_path, dest)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the conversion starts reading processes only on more than one core")
def test_ctrl_c_while_the_workers_start_prints_no_worker_traceback(tmp_path: Path) -> None:
    src = _nats_source(tmp_path)
    dest = tmp_path / "store"
    process = _start(tmp_path, ["data", "convert", "nb201", str(src), str(dest)], WORKERS_WAIT_BEFORE_THEIR_INITIALIZER)
    marks = tmp_path / "marks"
    _wait_for(lambda: list(marks.glob("worker-*")), process, "a worker starting", tmp_path)
    _interrupt(process)
    (marks / "go").touch()
    _assert_interrupted(process, tmp_path, dest)


@pytest.mark.parametrize("bench", ["nb201", "nb101"])  # not "benchmark": pytest-benchmark owns that fixture name
def test_ctrl_c_while_the_store_is_written(tmp_path: Path, bench: str) -> None:
    if bench == "nb201":
        src = _nats_source(tmp_path)
    else:
        src = tmp_path / "nasbench_only108.tfrecord"
        write_fixture(src, n_cells=3, budgets=(108,))
    dest = tmp_path / "store"
    process = _start(tmp_path, ["data", "convert", bench, str(src), str(dest)], WRITER_WAITS_AFTER_ITS_FIRST_ARRAY)
    _wait_for(lambda: (tmp_path / "marks" / "writing").exists(), process, "the store being written", tmp_path)
    assert list(tmp_path.glob(".store.tmp-*")), "the half-written store should be in its temporary folder"
    _interrupt(process)
    _assert_interrupted(process, tmp_path, dest)


def test_ctrl_c_in_any_command_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "run_verify", interrupted)
    try:
        status = main(["data", "verify", "somewhere"])
    except KeyboardInterrupt:  # let it not stop the test session
        pytest.fail("KeyboardInterrupt escaped harness.cli.main")
    assert status == 130
    assert capsys.readouterr().err == "harness: interrupted\n"
