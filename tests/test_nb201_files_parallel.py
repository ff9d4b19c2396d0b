"""Converting a NATS directory with reading processes: same store as one process, clean failures.

Sources here have more than one chunk of arch files (``CHUNK_ARCHS``), so ``workers=2`` really
starts a process pool; each test checks that no worker outlives the conversion.
"""

from __future__ import annotations

import json
import multiprocessing

import pytest

from harness import HarnessError
from harness.adapters import nb201_convert
from harness.adapters.nb201_convert import convert_nb201
from harness.adapters.nb201_files import CHUNK_ARCHS, open_source
from nb201_fixtures import official_meta_archs, write_simple_dir

N_ARCHS = 2 * CHUNK_ARCHS + 3
HP12 = {"12": {"cifar10-valid": [777], "cifar10": [111]}}
# a seed first seen in the last chunk that sorts first, and an arch lacking a seed
RAGGED = {N_ARCHS - 1: {"12": {"cifar10-valid": [111, 777], "cifar10": [111]}}, 3: {"12": {"cifar10": [111]}}}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    seeds = {i: RAGGED.get(i, HP12) for i in range(N_ARCHS)}
    return write_simple_dir(tmp_path_factory.mktemp("src") / "NATS-tss-v1_0-3ffb9-simple", range(N_ARCHS), official_meta_archs(), seeds)


def _store_bytes(store):
    """Manifest (without its timestamp and source path) and every file's bytes."""
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest["created"], manifest["source"]
    files = [c["file"] for c in manifest["columns"]] + [t["file"] for t in manifest["tables"].values()]
    return manifest, {name: (store / name).read_bytes() for name in files}


def test_pooled_reading_yields_the_records_in_index_order(source):
    indices = [record.index for record in open_source(source).records(workers=2)]
    assert indices == list(range(N_ARCHS))
    assert not multiprocessing.active_children()


def test_store_is_byte_identical_for_any_worker_count(source, tmp_path):
    one = _store_bytes(convert_nb201(source, tmp_path / "one", progress=False, workers=1))
    two = _store_bytes(convert_nb201(source, tmp_path / "two", progress=False, workers=2))
    three = _store_bytes(convert_nb201(source, tmp_path / "three", progress=False, workers=3))
    assert one == two == three
    seeds = {(c["dataset"], c["split"]): c["seeds"] for c in one[0]["columns"] if c["metric"] == "loss"}
    assert seeds[("cifar10-valid", "train")] == [111, 777]  # the late seed 111 got its sorted place
    assert not multiprocessing.active_children()


def test_corrupt_file_read_in_a_worker_is_named_and_leaves_nothing(source, tmp_path):
    src = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    src.mkdir()
    for file in source.iterdir():
        (src / file.name).symlink_to(file)
    bad = src / f"{N_ARCHS - 2:06d}.pickle.pbz2"  # in the last chunk, decoded by a worker
    bad.unlink()
    bad.write_bytes((source / bad.name).read_bytes()[:500])
    with pytest.raises(HarnessError, match=rf"{bad.name} is (truncated|corrupt)") as error:
        convert_nb201(src, tmp_path / "store", progress=False, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no store, no temp dir
    assert not multiprocessing.active_children(), error  # stopped even while the traceback holds the reader


def test_interrupt_while_workers_are_reading_stops_them_and_leaves_nothing(source, tmp_path, monkeypatch):
    writes = []
    original = nb201_convert._Group.write

    def write_then_interrupt(self, row, run):
        writes.append(row)
        if len(writes) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the writing process while chunks are queued
        original(self, row, run)

    monkeypatch.setattr(nb201_convert._Group, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt) as interrupt:
        convert_nb201(source, tmp_path / "store", progress=False, workers=2)
    assert not list(tmp_path.iterdir())
    assert not multiprocessing.active_children(), interrupt  # stopped even while the traceback holds the reader
