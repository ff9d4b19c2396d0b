"""Reading official pickled files without ever running code from them.

Benchmark authors publish results as pickles: NATS-Bench ``*.pickle.pbz2`` (bz2-compressed pickles),
NAS-Bench-201 ``.pth`` (torch-pickled dicts), the ImageNet16-120 batches. A pickle is a small program:
its ``GLOBAL``/``STACK_GLOBAL`` opcodes import any callable and ``REDUCE`` calls it, so a malicious or
corrupt file could run arbitrary code on ``pickle.load``. This module unpickles through an allow-list:

* plain containers (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, None, complex,
  bytearray) and ``collections.OrderedDict``;
* numpy arrays, dtypes and scalars, under both the numpy 1.x module names (``numpy.core...``) and the
  numpy 2.x names (``numpy._core...``), each resolved to the installed numpy, so files written by
  either major version read under either;
* ``_codecs.encode(text, "latin1")``, which protocol-2 pickles use to store bytes.

Any other global is refused *before* it is imported or called: :class:`HarnessError`
``refusing to unpickle <module.name> from <file>: not on the allow-list``.

Entry points: :func:`load_pickle` (plain or bz2 pickle, by path or open file), :func:`load_torch_file`
(a ``torch.save`` file, zip or legacy layout, with or without torch installed).
"""

from __future__ import annotations

import _compat_pickle
import bz2
import collections
import importlib
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.errors import HarnessError

Source = str | Path | IO[bytes]


def _numpy_attr(module_suffix: str, name: str) -> Any:
    """``numpy.<_core|core>.<suffix>.<name>`` of the installed numpy (2.x: _core, 1.x: core)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{module_suffix}"), name)
        except (ImportError, AttributeError):
            continue
    raise HarnessError(f"this numpy ({np.__version__}) has no {module_suffix}.{name}")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """The only use of ``_codecs.encode`` in data pickles: protocol-2 bytes as latin-1 text."""
    if encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not on the allow-list")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    """(module, name) as written in a pickle -> factory of the object it stands for."""
    table: dict[tuple[str, str], Callable[[], Any]] = {
        ("collections", "OrderedDict"): lambda: collections.OrderedDict,
        ("builtins", "set"): lambda: set,
        ("builtins", "frozenset"): lambda: frozenset,
        ("builtins", "complex"): lambda: complex,
        ("builtins", "bytearray"): lambda: bytearray,
        ("_codecs", "encode"): lambda: _latin1_encode,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = lambda: _numpy_attr("multiarray", "_reconstruct")
        table[(f"{package}.multiarray", "scalar")] = lambda: _numpy_attr("multiarray", "scalar")
        table[(f"{package}.numeric", "_frombuffer")] = lambda: _numpy_attr("numeric", "_frombuffer")
    return table


ALLOWED_GLOBALS = _allowed_globals()


class _TorchTensorFound(Exception):
    """Internal: a torch file holds tensors, which only torch itself can rebuild."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`; anything else raises HarnessError."""

    def __init__(self, file: IO[bytes], source_name: str, encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self.source_name = source_name

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles name builtins '__builtin__' etc.; map them as pickle's own find_class does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        factory = ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            if module.split(".")[0] == "torch":
                raise _TorchTensorFound(f"{module}.{name}")
            raise HarnessError(f"refusing to unpickle {module}.{name} from {self.source_name}: not on the allow-list")
        return factory()

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
        return SafeUnpickler(stream, name, encoding=encoding).load()
    except (HarnessError, _TorchTensorFound):
        raise
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
    numpy_globals = [factory() for factory in ALLOWED_GLOBALS.values() if factory() not in (set, frozenset, complex, bytearray)]
    numpy_globals.extend(type(np.dtype(code)) for code in "?bhilqBHILQefdgFDGSUO")
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError/RuntimeError for refused globals and damage
        raise HarnessError(f"torch.load(weights_only=True) refused or failed on {name}: {str(err)[:500]}") from None
