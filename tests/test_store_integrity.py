"""A damaged store: opening it checks every array's size and .npy header; ``harness data verify`` its sha256.

Opening must stay cheap (no hashing), so it refuses what sizes and headers show: a truncated or
extended array, a header of another shape, dtype or order, a file that is no .npy. A changed value
keeps both, and only ``harness data verify`` (sha256 of every file) finds it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness import HarnessError, load_benchmark
from harness.adapters.nb201_convert import convert_nb201
from harness.cli import main
from harness.store import ColumnarStore
from nb201_fixtures import official_meta_archs, write_simple_dir

HP12 = {"12": {"cifar10-valid": [111, 777], "cifar10": [111]}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("integrity")
    src = write_simple_dir(root / "NATS-tss-v1_0-3ffb9-simple", [0, 1, 2], official_meta_archs(), HP12)
    return convert_nb201(src, root / "store", progress=False, workers=1)


def _copy_with_first_array(store: Path, tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A copy of the store, the path of its first multi-seed array and that array's values."""
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    entry = next(c for c in json.loads((copy / "manifest.json").read_text())["columns"] if c["shape"][1] > 1)
    victim = copy / entry["file"]
    return copy, victim, np.load(victim)


def _rewrite(victim: Path, values: np.ndarray) -> None:
    with victim.open("wb") as fh:
        np.save(fh, values, allow_pickle=True)


DAMAGE: dict[str, tuple[Callable[[Path, np.ndarray], None], str]] = {
    "truncated": (lambda f, a: f.write_bytes(f.read_bytes()[:-4]), r"is truncated: \d+ bytes, expected \d+"),
    "extended": (lambda f, a: f.write_bytes(f.read_bytes() + b"\0" * 4), r"is longer than its array: \d+ bytes, expected"),
    # the same number of values, so the same size: only the header shows it
    "wrong shape": (lambda f, a: _rewrite(f, a.reshape(a.shape[0], a.shape[2], a.shape[1])), r"holds float32 \[3, 12, 2\]"),
    "wrong dtype": (lambda f, a: _rewrite(f, a.view(np.int32)), r"holds int32 \[3, 2, 12\]"),
    "fortran order": (lambda f, a: _rewrite(f, np.asfortranarray(a)), r"holds float32 \[3, 2, 12\] \(Fortran order\)"),
    "pickled objects": (lambda f, a: _rewrite(f, a.astype(object)), r"holds object \[3, 2, 12\]"),
    "not a .npy": (lambda f, a: f.write_bytes(b"\0" * len(f.read_bytes())), r"has no valid \.npy header"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_array_of_the_wrong_size_or_header_is_refused_on_open(store: Path, tmp_path: Path, damage: str) -> None:
    copy, victim, values = _copy_with_first_array(store, tmp_path)
    assert values.shape == (3, 2, 12)
    damage_file, problem = DAMAGE[damage]
    damage_file(victim, values)
    where = re.escape(f"store {copy} is damaged: arrays/{victim.name}")
    verify = re.escape(f"run 'harness data verify {copy}'")
    with pytest.raises(HarnessError, match=rf"{where} {problem}.*{verify}.*convert the official files again"):
        load_benchmark("nb201", root=copy)


def test_a_changed_value_opens_and_is_caught_by_verify(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy, victim, _ = _copy_with_first_array(store, tmp_path)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x40  # a flipped bit in the last value: same size, same header
    victim.write_bytes(bytes(data))
    ColumnarStore(copy)  # opening checks only sizes and headers
    assert main(["data", "verify", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err == f"harness: error: store {copy} is damaged: arrays/{victim.name} fails its sha256 checksum" \
        f" (its bytes changed since it was written); run 'harness data verify {copy}' to check every file," \
        " and convert the official files again (harness data convert) to replace the store\n"


def test_an_intact_store_opens_and_verifies(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", str(store)]) == 0
    assert "checksums OK" in capsys.readouterr().out
