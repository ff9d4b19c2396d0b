"""``harness data convert`` / ``verify`` from the command line: destinations, help and what it prints."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import HarnessError
from harness.benchmark import Column
from harness.cli import main
from harness.store import ColumnarStore, StoreWriter
from nb101_fixtures import write_fixture
from nb201_fixtures import official_meta_archs, write_simple_dir

PARAMS = Column("cifar10", "200", "cost", "params", (), (), minimize=True)


def _source(bench: str, tmp_path: Path) -> Path:
    if bench == "nb201":
        return write_simple_dir(tmp_path / "NATS-tss-v1_0-3ffb9-simple", [0], official_meta_archs(), {"12": {"cifar10": [111]}})
    write_fixture(tmp_path / "nasbench_only108.tfrecord", n_cells=3, budgets=(108,))
    return tmp_path / "nasbench_only108.tfrecord"


def _read_only_directory(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root may write into a read-only directory")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder / "store"


UNWRITABLE = {
    "under a file": (lambda tmp_path: Path("/dev/null/store"), "/dev/null is not a directory"),
    "two levels under a file": (lambda tmp_path: Path("/dev/null/sub/store"), "/dev/null is not a directory"),
    "under a read-only directory": (_read_only_directory, "Permission denied"),
    # no one, root included, creates a folder at the top of sysfs
    "in /sys": (lambda tmp_path: Path("/sys/harness-store"), "(Operation not permitted|Permission denied|Read-only file system)"),
}


@pytest.mark.skipif(sys.platform != "linux", reason="the unwritable places are Linux paths")
@pytest.mark.parametrize("bench", ["nb201", "nb101"])  # not "benchmark": pytest-benchmark owns that fixture name
@pytest.mark.parametrize("place", UNWRITABLE)
def test_an_unwritable_destination_is_named_as_given_not_the_temporary_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bench: str, place: str
) -> None:
    destination, reason = UNWRITABLE[place]
    dest = destination(tmp_path)
    assert main(["data", "convert", bench, str(_source(bench, tmp_path)), str(dest)]) == 2
    err = capsys.readouterr().err
    assert ".tmp-" not in err and ".probe-" not in err, err
    expected = rf"harness: error: cannot write the store {re.escape(str(dest))}: {reason}; choose a destination in a directory"
    assert re.fullmatch(expected + " you can write to\n", err), err
    assert not dest.exists()


def test_the_writer_itself_names_an_unwritable_destination(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="cannot write the store /dev/null/store: /dev/null is not a directory"):
        with StoreWriter("/dev/null/store", benchmark="nb201", source="x"):
            pass


def test_a_failed_swap_keeps_the_store_that_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "store"
    with StoreWriter(dest, benchmark="nb201", source="old") as writer:
        writer.add_column(PARAMS, 4)[:, 0, 0] = [1, 2, 3, 4]
    replace = os.replace

    def refuse_the_new_store(src: str | Path, target: str | Path) -> None:
        if Path(src).name.startswith(".store.tmp-"):
            raise PermissionError(13, "Permission denied", str(src))
        replace(src, target)

    monkeypatch.setattr(os, "replace", refuse_the_new_store)
    with pytest.raises(HarnessError, match=f"cannot write the store {dest}: Permission denied"):
        with StoreWriter(dest, benchmark="nb201", source="new", overwrite=True) as writer:
            writer.add_column(PARAMS, 4)[:, 0, 0] = [5, 6, 7, 8]
    monkeypatch.undo()
    old = ColumnarStore(dest, verify=True)
    assert old.manifest["source"] == "old" and np.array_equal(old.array(PARAMS)[:, 0, 0], [1, 2, 3, 4])
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_convert_help_lists_the_benchmarks_and_refuses_others(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as help_exit:
        main(["data", "convert", "--help"])
    assert help_exit.value.code == 0 and "{nb101,nb201}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage_exit:
        main(["data", "convert", "nb301", "src", "dest"])
    assert usage_exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument benchmark: invalid choice: 'nb301'" in err and "nb101" in err and "nb201" in err


def test_verify_help_and_convert_say_which_check_is_the_integrity_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["data", "verify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "sha256 of every file of a store" in text and "the integrity check" in text
    assert "Opening a store (queries, load_benchmark) checks only each array's size and .npy header" in text
    dest = tmp_path / "store"
    assert main(["data", "convert", "nb101", str(_source("nb101", tmp_path)), str(dest)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {dest} in ")
    assert printed[1] == (f"integrity check: harness data verify {dest} (sha256 of every file); "
                          "opening the store checks only each array's size and header")
