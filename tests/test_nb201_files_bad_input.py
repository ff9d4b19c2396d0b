"""Bad input to the NB201 readers and converter: named errors, nothing executed, no half-written store."""

from __future__ import annotations

import bz2
import io
import os
import pickle
import shutil

import numpy as np
import pytest

from harness import HarnessError
from harness.adapters import nb201_files
from harness.adapters.nb201_convert import convert_nb201
from harness.adapters.nb201_files import open_source
from harness.safe_pickle import load_pickle, load_torch_file
from nb201_fixtures import FIXTURE_DIR, make_arch_file, official_meta_archs, write_simple_dir

HP12 = {"12": {"cifar10": [111]}}


class RunsShellCommand:
    """Unpickling this calls os.system(...) under plain pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def sample_copy(tmp_path):
    dest = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    shutil.copytree(FIXTURE_DIR, dest)
    return dest


def test_pickle_that_runs_code_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "000000.pickle.pbz2"
    payload.write_bytes(bz2.compress(pickle.dumps({"12": RunsShellCommand(marker)}, protocol=4)))
    with pytest.raises(HarnessError, match=r"refusing to unpickle posix\.system from .*000000\.pickle\.pbz2: not on the allow-list"):
        load_pickle(payload)
    assert not marker.exists()


def test_malicious_arch_file_in_a_directory_stops_the_conversion(sample_copy, tmp_path):
    marker = tmp_path / "pwned"
    (sample_copy / "000000.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps(RunsShellCommand(marker), protocol=2)))
    with pytest.raises(HarnessError, match="000000.pickle.pbz2: not on the allow-list"):
        convert_nb201(sample_copy, tmp_path / "store", progress=False)
    assert not marker.exists()
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("legacy", [True, False])
def test_malicious_pth_is_refused_and_not_executed(tmp_path, legacy):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save({"meta_archs": RunsShellCommand(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(HarnessError, match="system"):
        load_torch_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["builtins.eval", "builtins.getattr", "numpy.load", "subprocess.Popen"])
def test_other_dangerous_globals_are_refused(name):
    module, attr = name.rsplit(".", 1)
    payload = f"c{module}\n{attr}\n(S'1'\ntR.".encode()  # protocol-0 GLOBAL + REDUCE
    with pytest.raises(HarnessError, match=f"refusing to unpickle {name} from crafted"):
        load_pickle(io.BytesIO(payload), "crafted")


def test_codecs_encode_is_allowed_only_for_latin1():
    ok = b"c_codecs\nencode\n(Vab\nVlatin1\ntR."
    assert load_pickle(io.BytesIO(ok), "x") == b"ab"
    bad = b"c_codecs\nencode\n(Vab\nVrot13\ntR."
    with pytest.raises(HarnessError, match="rot13"):
        load_pickle(io.BytesIO(bad), "x")


def test_numpy_1_and_2_module_names_both_load():
    """numpy 1.x writes numpy.core.multiarray, 2.x numpy._core.multiarray; both map to this numpy."""
    array = np.arange(3.0)
    for protocol in (2, 4, 5):
        data = pickle.dumps({"a": array, "s": np.float64(1.5), "d": np.dtype("f4")}, protocol=protocol)
        for package in (b"numpy.core", b"numpy._core"):
            if protocol == 2:  # GLOBAL text opcodes: renaming changes no length fields
                data = data.replace(b"numpy._core", package).replace(b"numpy.core", package)
            loaded = load_pickle(io.BytesIO(data), "np")
            np.testing.assert_array_equal(loaded["a"], array)
            assert loaded["s"] == 1.5 and loaded["d"] == np.dtype("f4")


def test_truncated_pbz2_is_reported_by_name(sample_copy, tmp_path):
    file = sample_copy / "000000.pickle.pbz2"  # the first arch read: fails before any array is written
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(HarnessError, match=r"000000\.pickle\.pbz2 is (truncated|corrupt)"):
        convert_nb201(sample_copy, tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".store")]


def test_corrupt_bz2_stream_is_reported_by_name(sample_copy):
    file = sample_copy / "000000.pickle.pbz2"
    data = bytearray(file.read_bytes())
    data[1000:1100] = bytes(100)
    file.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match=r"000000\.pickle\.pbz2"):
        open_source(sample_copy).read(0)


def test_valid_bz2_of_garbage_is_not_a_pickle(sample_copy):
    (sample_copy / "000011.pickle.pbz2").write_bytes(bz2.compress(b"\x80\x04this is not a pickle"))
    with pytest.raises(HarnessError, match=r"000011\.pickle\.pbz2 is not a readable pickle"):
        open_source(sample_copy).read(11)


def test_truncated_pth_is_reported_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": ["a"] * 10, "arch2infos": {}}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(HarnessError, match="NAS-Bench-201-v1_1-096897.pth"):
        open_source(path)


def test_wrong_directory_says_what_was_expected(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("hello")
    with pytest.raises(HarnessError, match="expected meta.pickle.pbz2 and one NNNNNN.pickle.pbz2"):
        convert_nb201(tmp_path / "notes", tmp_path / "store", progress=False)


def test_a_file_that_is_not_a_pth(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(HarnessError, match="table.csv is not a torch.save file"):
        open_source(path)


def test_missing_source_path(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        open_source(tmp_path / "nowhere")


def test_meta_with_the_wrong_number_of_archs(tmp_path):
    meta = official_meta_archs()[:100]
    (tmp_path / "meta.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps({"meta_archs": meta})))
    (tmp_path / "000000.pickle.pbz2").write_bytes(b"")
    with pytest.raises(HarnessError, match="has 100 archs; NB201 has 15625"):
        open_source(tmp_path)


def test_arch_file_under_the_wrong_index_is_detected(tmp_path):
    meta = official_meta_archs()
    src = write_simple_dir(tmp_path / "src", [5], meta, HP12)
    os.replace(src / "000005.pickle.pbz2", src / "000006.pickle.pbz2")
    with pytest.raises(HarnessError, match="index 6 is"):
        open_source(src).read(6)


def test_interrupted_conversion_leaves_no_store(tmp_path, monkeypatch):
    meta = official_meta_archs()
    src = write_simple_dir(tmp_path / "src", [0, 1, 2], meta, HP12)
    calls = []
    original = nb201_files.NatsSimpleDir.read

    def read_then_interrupt(self, index):
        calls.append(index)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(nb201_files.NatsSimpleDir, "read", read_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert_nb201(src, tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_existing_destination_needs_overwrite(tmp_path):
    meta = official_meta_archs()
    src = write_simple_dir(tmp_path / "src", [0], meta, HP12)
    dest = convert_nb201(src, tmp_path / "store", progress=False)
    with pytest.raises(HarnessError, match="already exists"):
        convert_nb201(src, dest, progress=False)
    assert convert_nb201(src, dest, overwrite=True, progress=False) == dest


def test_overwrite_never_deletes_a_directory_that_is_not_a_store(tmp_path):
    src = write_simple_dir(tmp_path / "src", [0], official_meta_archs(), HP12)
    thesis = tmp_path / "important" / "thesis.tex"
    thesis.parent.mkdir()
    thesis.write_text("x")
    with pytest.raises(HarnessError, match="important already exists and is not a harness store"):
        convert_nb201(src, thesis.parent, overwrite=True, progress=False)
    assert thesis.read_text() == "x"


@pytest.mark.parametrize("layout", ["same", "dest inside src", "src inside dest"])
def test_destination_overlapping_the_source_is_refused_and_the_source_kept(tmp_path, layout):
    meta = official_meta_archs()
    if layout == "src inside dest":
        dest = convert_nb201(write_simple_dir(tmp_path / "first", [0], meta, HP12), tmp_path / "store", progress=False)
        src = write_simple_dir(dest / "nats", [0], meta, HP12)
    else:
        src = write_simple_dir(tmp_path / "src", [0], meta, HP12)
        dest = src if layout == "same" else src / "store"
    files = sorted(src.iterdir())
    with pytest.raises(HarnessError, match="overlaps the source"):
        convert_nb201(src, dest, overwrite=True, progress=False)
    assert sorted(src.iterdir()) == files


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("dataset_seed", None, "'dataset_seed' should be a dict"),
        ("arch_str", 5, "'arch_str' should be an arch string, found int"),
        ("all_results", [], "'all_results' should be a dict"),
        ("dataset_seed", {"cifar10": None}, "'dataset_seed' of cifar10 should be a list of int seeds"),
    ],
)
def test_arch_file_with_a_field_of_the_wrong_type_names_the_file_and_field(tmp_path, field, value, named):
    meta = official_meta_archs()
    src = write_simple_dir(tmp_path / "src", [0], meta, HP12)
    content = make_arch_file(0, meta[0], HP12)
    content["12"][field] = value
    (src / "000000.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps(content, protocol=4)))
    with pytest.raises(HarnessError, match=rf"000000\.pickle\.pbz2 hp=12: {named}"):
        open_source(src).read(0)
