"""The allow-list unpickler's numpy handling: what real files hold loads exactly, forged numpy state is refused.

numpy's own ``dtype.__setstate__`` accepts any fields, flags and sizes a file names, so a crafted
dtype can make numpy read file bytes as object pointers (a crash, or worse). These tests write such
files with ``__reduce__`` tricks, exactly as an attacker would, and check that the harness refuses
them before numpy builds anything. Loads that could crash run in a subprocess, so a regression fails
the test instead of killing the test run.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.safe_pickle import load_pickle, load_torch_file

_RECONSTRUCT = "numpy._core.multiarray._reconstruct" if hasattr(np, "_core") else "numpy.core.multiarray._reconstruct"

# Builds pickles whose dtype/array state is whatever the test says (the objects' __reduce__ lies).
_FORGE = textwrap.dedent(
    f"""
    import pickle, sys
    import numpy as np
    from {_RECONSTRUCT.rsplit(".", 1)[0]} import _reconstruct

    class Dtype:
        def __init__(self, descr, state):
            self.descr, self.state = descr, state
        def __reduce__(self):
            return (np.dtype, (self.descr, False, True), self.state)

    class Call:
        def __init__(self, function, args):
            self.function, self.args = function, args
        def __reduce__(self):
            return (self.function, self.args)

    class Array:
        def __init__(self, dtype, shape, data):
            self.dtype, self.shape, self.data = dtype, shape, data
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data))
    """
)


def _load_forged(tmp_path, build: str) -> subprocess.CompletedProcess[str]:
    """Write ``{{"x": <build>}}`` as a pickle and load it with load_pickle in a fresh interpreter."""
    script = _FORGE + textwrap.dedent(
        f"""
        path = sys.argv[1]
        with open(path, "wb") as fh:
            pickle.dump({{"x": {build}}}, fh, protocol=2)
        from harness.safe_pickle import load_pickle
        from harness.errors import HarnessError
        try:
            value = load_pickle(path)["x"]
            print("LOADED", repr(value))
        except HarnessError as err:
            print("REFUSED", err)
        """
    )
    return subprocess.run([sys.executable, "-c", script, str(tmp_path / "forged.pkl")], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "build, what",
    [
        # The reviewer's exploit: a void dtype with an object field, flags cleared, 8 file bytes as the pointer.
        (
            "Array(Dtype('V8', (3, '|', None, ('a',), {'a': (Dtype('O8', (3, '|', None, None, None, -1, -1, 0x3f)), 0)}, 8, 1, 0)), (1,), b'AAAAAAAA')",
            "numpy.dtype('V8')",
        ),
        # A str dtype whose state adds fields (numpy accepts this and turns it into a structured dtype).
        ("Array(Dtype('U1', (3, '<', None, ('a',), {'a': (Dtype('f8', (3, '<', None, None, None, -1, -1, 0)), 0)}, 8, 1, 0)), (1,), b'A' * 8)", "numpy dtype state"),
        # A float dtype whose state claims the object flags.
        ("Array(Dtype('f8', (3, '<', None, None, None, -1, -1, 0x3f)), (1,), b'A' * 8)", "numpy dtype state"),
        # A bytes dtype whose state changes its size.
        ("Array(Dtype('S2', (3, '|', None, None, None, -1, -1, 0x3f)), (1,), b'A' * 2)", "numpy dtype state"),
        # An object dtype on its own.
        ("Dtype('O8', (3, '|', None, None, None, -1, -1, 0x3f))", "numpy.dtype('O8')"),
        # numpy.ndarray called directly: it takes any dtype and a buffer, so 8 file bytes became a pointer.
        ("Call(np.ndarray, ((1,), 'O', b'A' * 8))", "a direct call of numpy.ndarray"),
        ("Call(np.ndarray, ((4,), 'f8'))", "a direct call of numpy.ndarray"),  # uninitialised memory
    ],
    ids=["object-field-in-void", "fields-added-to-str", "object-flags-on-float", "size-change-on-bytes", "object-dtype",
         "ndarray-called-with-object-dtype", "ndarray-called-uninitialised"],
)
def test_forged_numpy_state_is_refused_before_numpy_builds_it(tmp_path, build, what):
    result = _load_forged(tmp_path, build)
    assert result.returncode == 0, f"the loader crashed (rc {result.returncode}): {result.stderr[-500:]}"
    assert result.stdout.startswith("REFUSED refusing to unpickle"), result.stdout
    assert what in result.stdout
    assert "forged.pkl" in result.stdout


def test_array_data_that_does_not_fit_its_shape_is_reported_as_corrupt(tmp_path):
    result = _load_forged(tmp_path, "Array(Dtype('f8', (3, '<', None, None, None, -1, -1, 0)), (4,), b'A' * 8)")
    assert "forged.pkl is corrupt: a numpy array of shape (4,) and dtype float64 has 8 data bytes, not 32" in result.stdout


def test_the_unforged_version_of_the_same_recipe_loads(tmp_path):
    """The forging helper writes what numpy writes when the state is honest (guards the tests above)."""
    result = _load_forged(tmp_path, "Array(Dtype('f8', (3, '<', None, None, None, -1, -1, 0)), (1,), np.float64(2.5).tobytes())")
    assert result.stdout.strip() == "LOADED array([2.5])", result.stdout + result.stderr


SIMPLE_VALUES = {
    "float64": np.linspace(0, 1, 7),
    "float32-2d": np.arange(12, dtype=np.float32).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "big-endian": np.arange(5, dtype=">i4"),
    "uint8-images": np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    "bool": np.array([True, False, True]),
    "complex": np.array([1 + 2j, -3j]),
    "float16": np.array([0.5, 2.0], dtype=np.float16),
    "str": np.array(["nor_conv_3x3", "none"]),
    "bytes": np.array([b"ab", b"c"]),
    "0-d": np.array(3.25),
    "empty": np.zeros((0, 3)),
    "scalar-f64": np.float64(91.25),
    "scalar-i64": np.int64(-7),
    "scalar-bool": np.bool_(True),
    "scalar-str": np.str_("skip_connect"),
    "dtype": np.dtype(">f4"),
    "dtype-str": np.dtype("U7"),
}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_simple_numpy_values_load_exactly_under_every_protocol(protocol):
    shared = np.arange(3.0)
    recursive: list[object] = [shared]
    recursive.append(recursive)
    data = pickle.dumps({"values": SIMPLE_VALUES, "shared": (shared, shared), "recursive": recursive}, protocol=protocol)
    loaded = load_pickle(io.BytesIO(data), "values")
    for key, expected in SIMPLE_VALUES.items():
        got = loaded["values"][key]
        assert type(got) is type(expected), key
        if isinstance(expected, np.ndarray):
            assert got.dtype == expected.dtype and got.shape == expected.shape, key
            assert got.flags.f_contiguous == expected.flags.f_contiguous, key
            assert got.flags.writeable, key
            np.testing.assert_array_equal(got, expected)
        else:
            assert got == expected, key
    first, second = loaded["shared"]
    assert first is second  # a value the file shares stays one object
    assert loaded["recursive"][1] is loaded["recursive"]
    np.testing.assert_array_equal(loaded["recursive"][0], shared)


def test_numpy_values_as_dict_keys_and_in_sets_are_rebuilt_too():
    data = pickle.dumps({"by_dtype": {np.dtype("<f4"): "float32"}, "set": {np.float64(0.5)}}, protocol=2)
    loaded = load_pickle(io.BytesIO(data), "keys")
    assert loaded["by_dtype"] == {np.dtype("<f4"): "float32"} and type(next(iter(loaded["by_dtype"]))) is type(np.dtype("<f4"))
    assert loaded["set"] == {0.5} and type(next(iter(loaded["set"]))) is np.float64


def test_object_arrays_are_refused():
    data = pickle.dumps(np.array([1, "a"], dtype=object), protocol=2)
    with pytest.raises(HarnessError, match=r"refusing to unpickle numpy.dtype\('O8'\).* from objects: not on the allow-list"):
        load_pickle(io.BytesIO(data), "objects")


def test_a_numpy_subclass_is_refused():
    data = pickle.dumps(np.ma.masked_array([1.0, 2.0], mask=[0, 1]), protocol=2)
    with pytest.raises(HarnessError, match="refusing to unpickle numpy.ma.core"):
        load_pickle(io.BytesIO(data), "masked")


def test_torch_files_with_tensors_get_the_same_numpy_checks(tmp_path):
    torch = pytest.importorskip("torch")
    good = tmp_path / "good.pth"
    torch.save({"weights": torch.arange(3.0), "accuracy": np.float64(93.5), "curve": np.arange(4.0)}, good)
    loaded = load_torch_file(good)
    assert torch.equal(loaded["weights"], torch.arange(3.0))
    assert type(loaded["accuracy"]) is np.float64 and loaded["accuracy"] == 93.5
    np.testing.assert_array_equal(loaded["curve"], np.arange(4.0))
    bad = tmp_path / "bad.pth"
    torch.save({"weights": torch.arange(3.0), "x": np.array([1, "a"], dtype=object)}, bad)
    with pytest.raises(HarnessError, match=r"refusing to unpickle numpy.dtype\('O8'\).* from .*bad\.pth"):
        load_torch_file(bad)


class _HidesInAttributes:
    """Pickles as an OrderedDict whose BUILD state goes to its __dict__, where the numpy values hide."""

    def __reduce__(self):
        import collections

        return (collections.OrderedDict, (), {"hidden": np.dtype("f8"), "array": np.arange(3.0)})


def test_numpy_values_hidden_in_object_attributes_are_refused_not_returned_as_recipes(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "hidden.pth"
    torch.save({"weights": torch.ones(2), "x": _HidesInAttributes()}, path)
    with pytest.raises(HarnessError, match=r"refusing to unpickle attributes on a collections.OrderedDict \(hidden, array\)"):
        load_torch_file(path)


def test_the_ndarray_class_itself_as_a_value_loads_as_the_class():
    assert load_pickle(io.BytesIO(pickle.dumps({"kind": np.ndarray}, protocol=2)), "cls") == {"kind": np.ndarray}


def test_allow_listed_callables_as_values_come_back_as_the_real_objects():
    """They once came back as the harness's internal stand-ins (a silently wrong type)."""
    import codecs

    from numpy._core import multiarray

    data = pickle.dumps({"dtype": np.dtype, "scalar": multiarray.scalar, "encode": codecs.encode, "array": np.ndarray}, protocol=2)
    assert load_pickle(io.BytesIO(data), "callables") == {
        "dtype": np.dtype, "scalar": multiarray.scalar, "encode": codecs.encode, "array": np.ndarray,
    }


def test_a_top_level_array_loads_on_both_paths(tmp_path):
    np.testing.assert_array_equal(load_pickle(io.BytesIO(pickle.dumps(np.arange(3.0), protocol=4)), "top"), np.arange(3.0))
    torch = pytest.importorskip("torch")
    torch.save(np.arange(3.0), tmp_path / "top.pth")
    np.testing.assert_array_equal(load_torch_file(tmp_path / "top.pth"), np.arange(3.0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # READONLY_BUFFER (protocol 5) wraps the bytearray on the stack in a memoryview
        (b"\x80\x05\x96\x03\x00\x00\x00\x00\x00\x00\x00abc\x98.", "refusing to unpickle a value of type builtins.memoryview"),
        # bytes(10**9) from a 30-byte file: a gigabyte of zeros
        (b"\x80\x02cbuiltins\nbytes\nJ\x00\xca\x9a;\x85R.", r"refusing to unpickle bytes\(\) of a int"),
        (b"\x80\x02cbuiltins\nbytearray\nJ\x00\xca\x9a;\x85R.", r"refusing to unpickle bytes\(\) of a int"),
    ],
    ids=["memoryview", "bytes-of-n", "bytearray-of-n"],
)
def test_wrong_types_and_memory_bombs_are_refused(data, message):
    with pytest.raises(HarnessError, match=message):
        load_pickle(io.BytesIO(data), "crafted")


@pytest.mark.parametrize(
    ("dtype", "raw", "message"),
    [("<U1", b"\xff\xff\xff\xff", r"code points past U\+10FFFF"), ("|b1", b"\x02", "bytes other than 0 and 1")],
)
def test_array_bytes_that_are_no_value_of_their_dtype_are_reported_as_corrupt(tmp_path, dtype, raw, message):
    state = "(3, '<', None, None, None, 4, 4, 8)" if dtype == "<U1" else "(3, '|', None, None, None, -1, -1, 0)"
    result = _load_forged(tmp_path, f"Array(Dtype({dtype[1:]!r}, {state}), (1,), {raw!r})")
    assert "forged.pkl is corrupt" in result.stdout and re.search(message, result.stdout), result.stdout + result.stderr


def test_allow_listed_classes_as_values_load_as_themselves():
    """The result walk once refused them ('a value of type builtins.type')."""
    data = pickle.dumps({"set": set, "ordered": collections.OrderedDict, "complex": complex}, protocol=2)
    assert load_pickle(io.BytesIO(data), "classes") == {"set": set, "ordered": collections.OrderedDict, "complex": complex}


_SCALAR = _RECONSTRUCT.rsplit(".", 1)[0] + ".scalar"
_F8 = "Dtype('f8', (3, '<', None, None, None, -1, -1, 0))"  # the state numpy writes for float64


def test_array_data_longer_than_its_shape_is_reported_as_corrupt_not_truncated(tmp_path):
    """Pitfall: a length check of "at least shape x itemsize" bytes silently dropped the surplus (a
    damaged or spliced file read as a shorter, plausible array); the data must fit exactly."""
    result = _load_forged(tmp_path, f"Array({_F8}, (1,), np.float64(2.5).tobytes() + np.float64(7.0).tobytes())")
    assert "forged.pkl is corrupt: a numpy array of shape (1,) and dtype float64 has 16 data bytes, not 8" in result.stdout, (
        result.stdout + result.stderr)
    result = _load_forged(tmp_path, f"Array({_F8}, (0,), b'A')")  # an empty array with one stray byte
    assert "forged.pkl is corrupt: a numpy array of shape (0,) and dtype float64 has 1 data bytes, not 0" in result.stdout, (
        result.stdout + result.stderr)


def test_scalar_data_longer_than_its_itemsize_is_refused_as_corrupt_not_truncated(tmp_path):
    """Pitfall: the scalar path read the first itemsize bytes of any longer buffer (np.frombuffer takes
    them all, [0] the first); 16 bytes for a float64 scalar must be refused, and reported as a corrupt
    file like an array whose data does not fit (it once said "not on the allow-list")."""
    scalar = f"__import__({_SCALAR.rsplit('.', 1)[0]!r}, fromlist=['scalar']).scalar"
    honest = _load_forged(tmp_path, f"Call({scalar}, (np.dtype('f8'), np.float64(2.5).tobytes()))")
    assert honest.stdout.strip() == "LOADED np.float64(2.5)", honest.stdout + honest.stderr  # guards the recipe
    result = _load_forged(tmp_path, f"Call({scalar}, (np.dtype('f8'), np.float64(2.5).tobytes() * 2))")
    assert result.returncode == 0, result.stderr[-500:]
    assert "forged.pkl is corrupt: a numpy float64 scalar has 16 data bytes, not 8" in result.stdout, result.stdout + result.stderr
    result = _load_forged(tmp_path, f"Call({scalar}, (np.dtype('f8'), b'A' * 7))")  # and shorter
    assert "forged.pkl is corrupt: a numpy float64 scalar has 7 data bytes, not 8" in result.stdout, result.stdout + result.stderr
