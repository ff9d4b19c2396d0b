"""harness.atomic.write_atomic: a failed write leaves the old file whole and no temp file behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.atomic import write_atomic


def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(b"old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise KeyboardInterrupt  # an interrupted run

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.bin"]


def test_a_completed_write_replaces_the_file_and_keeps_dots_in_its_name(tmp_path: Path) -> None:
    path = tmp_path / "cache.v2.npz"
    path.write_bytes(b"old")
    assert write_atomic(path, lambda tmp: np.savez(tmp, a=np.arange(3)), tmp_suffix=".tmp.npz") == path
    assert np.load(path)["a"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.v2.npz"]
