"""Reading official pickled files without ever running code from them.

Benchmark authors publish results as pickles: NATS-Bench ``*.pickle.pbz2`` (bz2-compressed pickles),
NAS-Bench-201 ``.pth`` (torch-pickled dicts), the ImageNet16-120 batches. A pickle is a small program:
its ``GLOBAL``/``STACK_GLOBAL`` opcodes import any callable and ``REDUCE`` calls it, so a malicious or
corrupt file could run arbitrary code on ``pickle.load``. This module unpickles through an allow-list:

* plain containers (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, None, complex,
  bytearray) and ``collections.OrderedDict``;
* numpy arrays, dtypes and scalars of simple dtypes (bool, integer, float, complex, bytes, str),
  under both the numpy 1.x module names (``numpy.core...``) and the numpy 2.x names
  (``numpy._core...``), so files written by either major version read under either;
* ``_codecs.encode(text, "latin1")``, which protocol-2 pickles use to store bytes.

Any other global is refused *before* it is imported or called: :class:`HarnessError`
``refusing to unpickle <module.name> from <file>: not on the allow-list``.

numpy's own unpickling hooks are not safe to hand a file: ``dtype.__setstate__`` turns any dtype
into a structured one with whatever fields the file names, and ``numpy.ndarray(shape, dtype,
buffer)`` takes an object dtype, so a crafted file could make numpy read 8 of its bytes as a
``PyObject*``. So numpy objects are never rebuilt by numpy's hooks here. The pickle's dtype and
array recipes are captured by :class:`_DtypeRecipe` and :class:`_ArrayRecipe`, checked (a simple
dtype whose state is exactly the one numpy writes for it; an array whose buffer is exactly
shape x itemsize bytes of valid values) and only then built with ordinary constructors;
``numpy.ndarray`` itself cannot be called. Every result is walked (:func:`_finished`): recipes
become what they built, this module's stand-ins (``{"kind": numpy.dtype}``) what they stand for,
and anything else that is not plain data (a memoryview, attributes on a container) is refused. ``bytes(n)``/``bytearray(n)`` are refused too (a few
file bytes must not allocate gigabytes).

Entry points: :func:`load_pickle` (plain or bz2 pickle, by path or open file), :func:`load_torch_file`
(a ``torch.save`` file, zip or legacy layout, with or without torch installed).
"""

from __future__ import annotations

import _compat_pickle
import bz2
import codecs
import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.errors import HarnessError

Source = str | Path | IO[bytes]


class _Refused(Exception):
    """Internal: the pickle asks for something the allow-list forbids (message: what it was)."""


class _Damaged(Exception):
    """Internal: a numpy value whose data does not fit its shape (message: what is wrong)."""


def _latin1_encode(text: object, encoding: object = "utf-8") -> bytes:
    """The only use of ``_codecs.encode`` in data pickles: protocol-2 bytes as latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Refused(f"_codecs.encode of a {type(text).__name__} with encoding {encoding!r} (only text, latin-1)")
    return text.encode("latin1")


def _bytes(data: object = b"", encoding: object = None) -> bytes:
    """``bytes()`` as pickles use it (``bytes()`` for b"", or text with latin-1); never ``bytes(n)``,
    which would let a few file bytes allocate n zeroed bytes."""
    if isinstance(data, bytes) and encoding is None:
        return data
    if isinstance(data, str) and encoding is not None:
        return _latin1_encode(data, encoding)
    raise _Refused(f"bytes() of a {type(data).__name__} (only b'' or latin-1 text)")


def _bytearray(data: object = b"", encoding: object = None) -> bytearray:
    """``bytearray()`` as pickles use it, with :func:`_bytes`'s limits."""
    return bytearray(_bytes(data, encoding))


_SIMPLE_KINDS = "biufcSU"  # numpy dtype kinds allowed: bool, int, uint, float, complex, bytes, str


class _DtypeRecipe:
    """``numpy.dtype(descr, align, copy)`` plus its BUILD state, as a pickle writes a dtype.

    The descriptor must name a simple dtype (see ``_SIMPLE_KINDS``) and the state must equal the
    state numpy itself writes for that dtype (byte order, size, flags): no fields, no subarray,
    no object flags. ``dtype`` is the checked numpy dtype.
    """

    def __init__(self, descr: object, align: object = False, copy: object = True) -> None:
        if isinstance(descr, bytes):
            descr = descr.decode("ascii", "replace")
        if not isinstance(descr, str):
            raise _Refused(f"numpy.dtype({descr!r})")
        try:
            dtype = np.dtype(descr)
        except TypeError:
            raise _Refused(f"numpy.dtype({descr!r})") from None
        if dtype.kind not in _SIMPLE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise _Refused(f"numpy.dtype({descr!r}) (only bool, integer, float, complex, bytes and str dtypes)")
        self.dtype = dtype

    def __setstate__(self, state: object) -> None:
        # numpy's state: (version, byte order, subarray, names, fields, itemsize, alignment, flags).
        if not isinstance(state, tuple) or len(state) != 8 or state[1] not in ("<", ">", "|", "="):
            raise _Refused(f"numpy dtype state {state!r}")
        dtype = self.dtype
        if dtype.itemsize == 0 and isinstance(state[5], int) and 0 < state[5] < 2**31:  # 'S0'/'U0': size in the state
            unit = 4 if dtype.kind == "U" else 1
            dtype = np.dtype(f"{dtype.kind}{state[5] // unit}")
        if state[1] in "<>":
            dtype = dtype.newbyteorder(state[1])
        if state != dtype.__reduce__()[2]:
            raise _Refused(f"numpy dtype state {state!r} (numpy writes {dtype.__reduce__()[2]!r} for {dtype})")
        self.dtype = dtype


def _checked_dtype(dtype: object) -> np.dtype:
    if not isinstance(dtype, _DtypeRecipe):
        raise _Refused(f"a numpy value with dtype {dtype!r}")
    return dtype.dtype


def _checked_array(raw: object, dtype: np.dtype, shape: object, fortran: bool) -> np.ndarray:
    """A new array of ``shape`` from exactly ``prod(shape) * itemsize`` bytes of ``raw``."""
    if isinstance(raw, str):  # Python 2 pickles read with encoding="latin1" hold bytes as text
        raw = raw.encode("latin1")
    if isinstance(raw, pickle.PickleBuffer):
        raw = raw.raw()
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise _Refused(f"a numpy array whose data is a {type(raw).__name__}")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Refused(f"a numpy array of shape {shape!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise _Damaged(f"a numpy array of shape {shape} and dtype {dtype} has {len(raw)} data bytes, not {expected}")
    # one copy, into memory the array owns (writable), in the layout the file gives
    array = np.frombuffer(raw, dtype, count=expected // max(dtype.itemsize, 1)).reshape(shape, order="F" if fortran else "C").copy(order="K")
    _check_values(array)
    return array


def _check_values(array: np.ndarray) -> None:
    """Bytes that are no value of the dtype: str code points past U+10FFFF (numpy raises SystemError
    on access), bools other than 0 and 1."""
    if array.size and array.dtype.kind == "U" and int(array.view(np.uint32).max()) > 0x10FFFF:
        raise _Damaged(f"a numpy {array.dtype} array holds code points past U+10FFFF")
    if array.size and array.dtype.kind == "b" and int(array.view(np.uint8).max()) > 1:
        raise _Damaged("a numpy bool array holds bytes other than 0 and 1")


class _NdarrayToken:
    """``numpy.ndarray`` as a pickle names it, for the one use data files make of it: the first
    argument of ``_reconstruct``. Calling it is refused: ``numpy.ndarray(shape, dtype, buffer)``
    takes any dtype (object included, so file bytes would become pointers) and can hand out
    uninitialised memory. Left in a result, it becomes ``numpy.ndarray`` again."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _Refused("a direct call of numpy.ndarray(...)")

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayToken()


class _ArrayRecipe:
    """``numpy.core.multiarray._reconstruct(ndarray, ...)`` plus its BUILD state, as a pickle writes an array.

    The state ``(version, shape, dtype, is_fortran, raw bytes)`` is checked and the array built from
    a copy of the bytes; object arrays (whose state holds a list) are refused. ``array`` is the result.
    """

    def __init__(self, cls: object, shape: object = (0,), typecode: object = b"b") -> None:
        if cls is not _NDARRAY:
            raise _Refused(f"_reconstruct of {cls!r} (only numpy.ndarray)")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _Refused(f"numpy array state of type {type(state).__name__}")
        _, shape, dtype, fortran, raw = state
        self.array = _checked_array(raw, _checked_dtype(dtype), shape, bool(fortran))


def _scalar(dtype: object, data: object = None) -> Any:
    """``numpy.core.multiarray.scalar(dtype, bytes)``: a numpy scalar from exactly itemsize bytes."""
    checked = _checked_dtype(dtype)
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(data, bytes):
        raise _Refused(f"a numpy {checked} scalar from {type(data).__name__} data")
    if len(data) != checked.itemsize:
        raise _Damaged(f"a numpy {checked} scalar has {len(data)} data bytes, not {checked.itemsize}")
    value = np.frombuffer(data, checked)
    _check_values(value)
    return value[0]


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    """``numpy.core.numeric._frombuffer``, which protocol-5 pickles use for arrays."""
    if order not in ("C", "F"):
        raise _Refused(f"a numpy array in order {order!r}")
    return _checked_array(buffer, _checked_dtype(dtype), shape, order == "F")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) as written in a pickle -> the object it stands for."""
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): _bytearray,
        ("builtins", "bytes"): _bytes,  # protocol 2 writes b"" as bytes()
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DtypeRecipe,
    }
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = _ArrayRecipe
        table[(f"{package}.multiarray", "scalar")] = _scalar
        table[(f"{package}.numeric", "_frombuffer")] = _frombuffer
    return table


ALLOWED_GLOBALS = _allowed_globals()


def _stand_ins() -> dict[int, Any]:
    """id of each object the allow-list hands a pickle -> what it stands for, for a result that holds
    one as a value (``{"kind": numpy.dtype}``)."""
    core = np.core if not hasattr(np, "_core") else np._core  # numpy 2.x: _core
    return {
        id(_DtypeRecipe): np.dtype,
        id(_ArrayRecipe): core.multiarray._reconstruct,
        id(_NDARRAY): np.ndarray,
        id(_scalar): core.multiarray.scalar,
        id(_frombuffer): core.numeric._frombuffer,
        id(_latin1_encode): codecs.encode,
        id(_bytes): bytes,
        id(_bytearray): bytearray,
    }


_STAND_INS = _stand_ins()
_LEAVES = (str, bytes, bytearray, int, float, bool, complex, type(None), np.generic, np.dtype)
_LEAF_TYPES = frozenset({str, bytes, bytearray, int, float, bool, complex, type(None)})
# types a result may hold besides containers and leaves: the classes of allow-listed globals
_CLASSES = frozenset({set, frozenset, complex, collections.OrderedDict, bytes, bytearray})


def _finished(obj: Any, done: dict[int, Any], torch_types: bool = False) -> Any:
    """``obj`` with every recipe replaced by what it built and every stand-in by what it stands for
    (containers rebuilt, or updated in place where they may be shared or recursive); anything else
    that is not plain data is refused: a result holds only containers, str/bytes/numbers/None,
    numpy arrays, scalars and dtypes (and, from :func:`load_torch_file`, torch's own objects)."""
    key = id(obj)
    if key in done:
        return done[key]
    kind = type(obj)
    if kind in _LEAF_TYPES:
        return obj
    if key in _STAND_INS:
        return _STAND_INS[key]
    if isinstance(obj, _DtypeRecipe):
        if not hasattr(obj, "dtype"):
            raise _Refused("a numpy dtype that was never given a descriptor")
        result: Any = obj.dtype
    elif isinstance(obj, _ArrayRecipe):
        if getattr(obj, "array", None) is None:
            raise _Refused("a numpy array without its data")
        result = obj.array
    elif kind is np.ndarray or isinstance(obj, _LEAVES):
        return obj  # built by this module (arrays, scalars, dtypes) or plain values
    elif isinstance(obj, dict):  # dict and OrderedDict
        done[key] = obj
        if not set(map(type, obj)) <= _LEAF_TYPES:  # keys that may need rebuilding (rare): rebuild the dict
            items = [(_finished(name, done, torch_types), value) for name, value in obj.items()]
            obj.clear()
            obj.update(items)
        if not set(map(type, obj.values())) <= _LEAF_TYPES:
            for name, value in obj.items():
                if type(value) not in _LEAF_TYPES:
                    obj[name] = _finished(value, done, torch_types)
        if getattr(obj, "__dict__", None):  # a BUILD can give an OrderedDict attributes; data never has them
            raise _Refused(f"attributes on a {kind.__module__}.{kind.__qualname__} ({', '.join(map(str, vars(obj)))})")
        return obj
    elif kind is list:
        done[key] = obj
        if not set(map(type, obj)) <= _LEAF_TYPES:  # lists of plain numbers (NATS curves) need no walk
            obj[:] = [_finished(value, done, torch_types) for value in obj]
        return obj
    elif kind in (tuple, set, frozenset):
        if set(map(type, obj)) <= _LEAF_TYPES:
            return obj
        result = kind(_finished(value, done, torch_types) for value in obj)
    elif isinstance(obj, type) and obj in _CLASSES:
        return obj  # set, OrderedDict, ... as values
    elif torch_types and kind.__module__.split(".")[0] == "torch":
        done[key] = obj
        for name, value in list(getattr(obj, "__dict__", {}).items()):  # a BUILD can put anything there
            obj.__dict__[name] = _finished(value, done, torch_types)
        return obj
    else:
        raise _Refused(f"a value of type {kind.__module__}.{kind.__qualname__}")
    done[key] = result
    return result


class _TorchTensorFound(Exception):
    """Internal: a torch file holds tensors, which only torch itself can rebuild."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`; anything else raises HarnessError."""

    def __init__(self, file: IO[bytes], source_name: str, encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self.source_name = source_name

    def load_built(self) -> Any:
        """Load, then swap the recipes for what they built and refuse anything not plain data (:func:`_finished`)."""
        return _finished(self.load(), {})

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles name builtins '__builtin__' etc.; map them as pickle's own find_class does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            if module.split(".")[0] == "torch":
                raise _TorchTensorFound(f"{module}.{name}")
            raise HarnessError(f"refusing to unpickle {module}.{name} from {self.source_name}: not on the allow-list")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        # torch files reference tensor storages by persistent id.
        raise _TorchTensorFound(f"persistent id {pid!r}")


def _name_of(source: Source, source_name: str | None) -> str:
    if source_name is not None:
        return source_name
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", "<file object>"))


def _unpickle(stream: IO[bytes], name: str, encoding: str) -> Any:
    """One pickle from ``stream``; every failure becomes a HarnessError naming ``name``."""
    try:
        return SafeUnpickler(stream, name, encoding=encoding).load_built()
    except (HarnessError, _TorchTensorFound):
        raise
    except _Refused as err:
        raise HarnessError(f"refusing to unpickle {err} from {name}: not on the allow-list") from None
    except _Damaged as err:
        raise HarnessError(f"{name} is corrupt: {err}") from None
    except RecursionError:
        raise HarnessError(f"{name} is nested too deeply to read") from None
    except EOFError:
        raise HarnessError(f"{name} is truncated: the pickle ends early") from None
    except (OSError, ValueError) as err:  # bz2 reports truncation/corruption as OSError/EOFError/ValueError
        raise HarnessError(f"{name} is corrupt or truncated: {err}") from None
    except Exception as err:  # UnpicklingError, KeyError, IndexError, ... from a damaged stream
        raise HarnessError(f"{name} is not a readable pickle: {type(err).__name__}: {err}") from None


def load_pickle(source: Source, source_name: str | None = None, encoding: str = "ASCII") -> Any:
    """Unpickle ``source`` through the allow-list; bz2 is detected from the magic bytes ``BZh``.

    ``source`` is a path or a binary file object; ``source_name`` names it in errors (default: the
    path). ``encoding`` is passed to the unpickler (use ``"latin1"`` for Python 2 pickles of numpy
    arrays, such as the ImageNet16 batches). Raises HarnessError for a missing, truncated or corrupt
    file and for any global that is not on the allow-list.
    """
    name = _name_of(source, source_name)
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as fh:
                return load_pickle(fh, name, encoding)
        except FileNotFoundError:
            raise HarnessError(f"{name} does not exist") from None
        except IsADirectoryError:
            raise HarnessError(f"{name} is a directory, expected a pickle file") from None
    head = source.read(3)
    if not head:
        raise HarnessError(f"{name} is empty")
    if head == b"BZh":
        stream: IO[bytes] = bz2.BZ2File(_Prepend(head, source))
    else:
        stream = _Prepend(head, source)
    try:
        result = _unpickle(stream, name, encoding)
    except _TorchTensorFound as err:
        raise HarnessError(f"refusing to unpickle {err} from {name}: not on the allow-list") from None
    return result


class _Prepend(io.RawIOBase):
    """A read-only stream that yields ``head`` and then the rest of ``rest`` (to sniff magic bytes)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
_TORCH_LEGACY_PROTOCOL = 1001  # torch/serialization.py PROTOCOL_VERSION


def load_torch_file(path: str | Path, source_name: str | None = None) -> Any:
    """Read a ``torch.save`` file of plain containers and numpy values without executing code.

    Both layouts are read by this module's allow-list unpickler, so torch is not needed:
    the zip layout (torch >= 1.6: ``<prefix>/data.pkl`` in a zip) and the legacy layout used by the
    official NAS-Bench-201 files (``NAS-Bench-201-v1_0-e61699.pth``, ``-v1_1-096897.pth``, written by
    torch 1.4): pickled magic number 0x1950a86a20f9469cfc6c, protocol 1001, system info, then the
    data pickle. A file that holds tensors is read with ``torch.load(weights_only=True)``, with the
    numpy entries of the allow-list added to torch's own safe globals; without torch installed that
    case raises HarnessError saying torch is needed.
    """
    path = Path(path)
    name = source_name or str(path)
    if not path.is_file():
        raise HarnessError(f"{name} does not exist or is not a file")
    try:
        if zipfile.is_zipfile(path):
            return _load_torch_zip(path, name)
        return _load_torch_legacy(path, name)
    except _TorchTensorFound:
        return _torch_load_weights_only(path, name)


def _load_torch_zip(path: Path, name: str) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            records = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(records) != 1:
                raise HarnessError(f"{name} is a zip file but not a torch.save file (no single data.pkl)")
            with archive.open(records[0]) as fh:
                return _unpickle(fh, name, "ASCII")
    except zipfile.BadZipFile as err:
        raise HarnessError(f"{name} is corrupt or truncated: {err}") from None


def _load_torch_legacy(path: Path, name: str) -> Any:
    with path.open("rb") as fh:
        try:
            magic = _unpickle(fh, name, "ASCII")
        except HarnessError:
            raise HarnessError(f"{name} is not a torch.save file (neither zip nor legacy layout)") from None
        if magic != _TORCH_LEGACY_MAGIC:
            raise HarnessError(f"{name} is not a torch.save file (wrong magic number)")
        protocol = _unpickle(fh, name, "ASCII")
        if protocol != _TORCH_LEGACY_PROTOCOL:
            raise HarnessError(f"{name}: unsupported torch legacy protocol {protocol!r}")
        _unpickle(fh, name, "ASCII")  # system info: endianness, type sizes
        result = _unpickle(fh, name, "ASCII")
        storage_keys = _unpickle(fh, name, "ASCII")
        if storage_keys:
            raise _TorchTensorFound("tensor storages")
        return result


def _torch_load_weights_only(path: Path, name: str) -> Any:
    try:
        import torch
    except ImportError:
        raise HarnessError(
            f"{name} holds torch tensors; reading it needs torch (pip install torch), which is not installed"
        ) from None
    # torch's own weights-only unpickler, given this module's numpy recipes under the names pickles use
    # (its BUILD accepts only registered types, so the recipe classes are registered under their own names too).
    numpy_globals: list[Any] = [(obj, f"{module}.{attr}") for (module, attr), obj in ALLOWED_GLOBALS.items() if module != "builtins"]
    numpy_globals += [(cls, f"harness.safe_pickle.{cls.__name__}") for cls in (_DtypeRecipe, _ArrayRecipe)]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return _finished(torch.load(path, map_location="cpu", weights_only=True), {}, torch_types=True)
    except _Refused as err:
        raise HarnessError(f"refusing to unpickle {err} from {name}: not on the allow-list") from None
    except _Damaged as err:
        raise HarnessError(f"{name} is corrupt: {err}") from None
    except Exception as err:  # torch raises UnpicklingError/RuntimeError for refused globals and damage
        raise HarnessError(f"torch.load(weights_only=True) refused or failed on {name}: {str(err)[:500]}") from None
