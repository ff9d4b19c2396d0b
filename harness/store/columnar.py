"""The converted columnar store: dense float32 ``.npy`` arrays plus small parquet index tables.

Layout of a store directory::

    manifest.json          format, benchmark, source, columns, tables, sha256 of every file
    arrays/c0000.npy ...   one float32 array [rows, seeds, epochs] per Column, NaN = absent
    tables/<name>.parquet  small index tables (e.g. ``archs``: row -> arch string)

Arrays are plain ``.npy`` (no pickle) so a store opens by memory-mapping: opening costs
milliseconds and a query touches only the pages it reads. The design follows syne-tune's
blackbox repository: convert once into dense arrays, then memory-map.

Writing goes to a hidden temporary directory beside the destination that is renamed into place
only after every array is flushed and checksummed, so an interrupted conversion leaves no
half-written store; an error writing it names the destination, not that directory.

Opening a store checks, without hashing, that every file is there and that every array's ``.npy``
header (float32, C order, the manifest's shape) and exact size are right; a damaged file is refused
by name. A changed value keeps both, so the integrity check is ``harness data verify`` (or
``ColumnarStore(path, verify=True)``): the sha256 of every file against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from harness.benchmark import Column
from harness.errors import HarnessError

FORMAT = "harness-columnar"
# 2: a column lists only the epochs at which it was evaluated (v1 NB201 stores declared epochs
# 1..200 for splits evaluated once, NaN before the last, and are refused: convert again).
VERSION = 2
# Older versions still read, with the benchmarks whose stores they left unchanged.
STILL_READ: dict[int, tuple[str, ...]] = {1: ("nb101",)}
# manifest key -> the JSON type its value must have
_MANIFEST_TYPES: dict[str, type] = {"benchmark": str, "source": str, "columns": list, "tables": dict, "extra": dict}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _column_to_json(column: Column) -> dict[str, Any]:
    out = asdict(column)
    out["seeds"] = list(column.seeds)
    out["epochs"] = list(column.epochs)
    return out


def _column_from_json(data: dict[str, Any]) -> Column:
    return Column(
        dataset=data["dataset"],
        schedule=data["schedule"],
        split=data["split"],
        metric=data["metric"],
        seeds=tuple(data["seeds"]),
        epochs=tuple(int(e) for e in data["epochs"]),
        minimize=bool(data["minimize"]),
        description=data.get("description", ""),
    )


def _is_store(path: Path) -> bool:
    """Whether ``path`` is a directory whose ``manifest.json`` says it is a harness store."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def check_destination(src: Path, dest: Path, overwrite: bool) -> None:
    """Raise HarnessError unless a store converted from ``src`` may be written at ``dest``.

    ``dest`` may not be ``src``, lie inside it or contain it (writing it would replace or mix with
    the source); an existing ``dest`` is replaced only with ``overwrite`` and only if it is a store.
    """
    src_path, dest_path = src.resolve(), dest.resolve()
    if src_path == dest_path or src_path in dest_path.parents or dest_path in src_path.parents:
        raise HarnessError(
            f"destination {dest} overlaps the source {src} (the same path, or one inside the other); "
            "write the store to a directory outside the source"
        )
    _check_replaceable(dest, overwrite)
    _check_writable(dest)


def _cannot_write(dest: Path, reason: str | OSError) -> HarnessError:
    """The error for a store that cannot be written at ``dest``: it names ``dest`` as the user gave it,
    never the temporary folder beside it that the writer actually creates."""
    if isinstance(reason, OSError):
        reason = reason.strerror or str(reason)
    return HarnessError(f"cannot write the store {dest}: {reason}; choose a destination in a directory you can write to")


def _check_writable(dest: Path) -> None:
    """Raise HarnessError naming ``dest`` unless a store can be written there.

    The nearest existing ancestor of ``dest`` must be a directory in which a folder can be created
    (tried with an empty folder that is removed again), so an unwritable destination is refused
    before the source is read, and no error names the temporary folder the writer uses.
    """
    try:
        ancestor = next(parent for parent in dest.absolute().parents if parent.exists())
        if not ancestor.is_dir():
            raise _cannot_write(dest, f"{ancestor} is not a directory")
        os.rmdir(tempfile.mkdtemp(prefix=f".{dest.name}.probe-", dir=ancestor))
    except OSError as err:
        raise _cannot_write(dest, err) from None


def _check_replaceable(dest: Path, overwrite: bool) -> None:
    if not dest.exists():
        return
    if not overwrite:
        raise HarnessError(f"{dest} already exists; choose another destination or pass overwrite=True (CLI: --overwrite)")
    if not _is_store(dest):
        raise HarnessError(
            f"{dest} already exists and is not a harness store (no manifest.json of format {FORMAT!r}); "
            "overwrite replaces only a store: choose another destination"
        )


def array_shape(column: Column, n_rows: int) -> tuple[int, int, int]:
    """Shape of a column's array: axes of length 1 where the column has no seeds/epochs."""
    return (n_rows, max(1, len(column.seeds)), max(1, len(column.epochs)))


class StoreWriter:
    """Write a store atomically. Use as a context manager::

        with StoreWriter(dest, benchmark="nb201", source=str(src)) as writer:
            arr = writer.add_column(column, n_rows)   # writable memmap, filled with NaN
            arr[i] = ...
            writer.add_table("archs", frame)
    """

    def __init__(self, dest: str | Path, benchmark: str, source: str, overwrite: bool = False) -> None:
        self.dest = Path(dest)
        _check_replaceable(self.dest, overwrite)
        self.benchmark = benchmark
        self.source = source
        self.overwrite = overwrite
        self.tmp = self.dest.parent / f".{self.dest.name}.tmp-{os.getpid()}"
        self._columns: list[tuple[Column, str, np.memmap]] = []
        self._tables: dict[str, str] = {}
        self.extra: dict[str, Any] = {}

    def __enter__(self) -> StoreWriter:
        _check_writable(self.dest)
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            (self.tmp / "arrays").mkdir(parents=True)
            (self.tmp / "tables").mkdir()
        except OSError as err:
            raise _cannot_write(self.dest, err) from None
        return self

    def add_column(self, column: Column, n_rows: int) -> np.memmap:
        """A writable float32 memmap for ``column``, pre-filled with NaN (= absent)."""
        if any(c.key == column.key for c, _, _ in self._columns):
            raise HarnessError(f"column {column} added twice")
        rel = f"arrays/c{len(self._columns):04d}.npy"
        array = np.lib.format.open_memmap(
            self.tmp / rel, mode="w+", dtype=np.float32, shape=array_shape(column, n_rows)
        )
        array[...] = np.nan
        self._columns.append((column, rel, array))
        return array

    def add_table(self, name: str, frame: pd.DataFrame) -> None:
        rel = f"tables/{name}.parquet"
        frame.to_parquet(self.tmp / rel, index=False)
        self._tables[name] = rel

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._columns.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            self._finish()
        except BaseException as err:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(err, OSError):
                raise _cannot_write(self.dest, err) from None
            raise

    def _finish(self) -> None:
        columns = []
        for column, rel, array in self._columns:
            array.flush()
            entry = _column_to_json(column)
            entry.update(file=rel, shape=list(array.shape), sha256=_sha256(self.tmp / rel))
            columns.append(entry)
        self._columns.clear()
        tables = {name: {"file": rel, "sha256": _sha256(self.tmp / rel)} for name, rel in self._tables.items()}
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "benchmark": self.benchmark,
            "source": self.source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "columns": columns,
            "tables": tables,
            "extra": self.extra,
        }
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if self.dest.exists():
            backup = self.dest.parent / f".{self.dest.name}.old-{os.getpid()}"
            os.replace(self.dest, backup)
            try:
                os.replace(self.tmp, self.dest)
            except BaseException:
                os.replace(backup, self.dest)  # the old store stays where it was
                raise
            shutil.rmtree(backup)
        else:
            os.replace(self.tmp, self.dest)


class ColumnarStore:
    """A converted store opened read-only; arrays are memory-mapped on first use.

    Opening checks each file's presence and each array's size and header; ``verify=True`` (or
    :meth:`verify`) also recomputes the sha256 of every file.
    """

    def __init__(self, path: str | Path, verify: bool = False) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not self.path.is_dir():
            raise HarnessError(f"{self.path} is not a directory; expected a store written by 'harness data convert'")
        if not manifest_path.is_file():
            raise HarnessError(f"{self.path} is not a harness store: it has no manifest.json")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise HarnessError(f"{manifest_path} is corrupt: {err}") from None
        if not isinstance(self.manifest, dict):
            raise HarnessError(f"{manifest_path} is corrupt: it holds a JSON {type(self.manifest).__name__}, not an object")
        version, benchmark = self.manifest.get("version"), self.manifest.get("benchmark")
        readable = version == VERSION or (type(version) is int and benchmark in STILL_READ.get(version, ()))
        if self.manifest.get("format") != FORMAT or not readable:
            raise HarnessError(
                f"{manifest_path}: format {self.manifest.get('format')!r} v{version!r} ({benchmark!r}); "
                f"this harness reads {FORMAT!r} v{VERSION}; convert the official files again (harness data convert)"
            )
        for key, kind in _MANIFEST_TYPES.items():
            if not isinstance(self.manifest.get(key), kind):
                raise HarnessError(
                    f"{manifest_path} is corrupt: {key!r} should be a JSON {kind.__name__}, found {self.manifest.get(key)!r:.80}; "
                    f"a store manifest has {', '.join(_MANIFEST_TYPES)}"
                )
        self.benchmark: str = self.manifest["benchmark"]
        try:
            self.columns: tuple[Column, ...] = tuple(_column_from_json(e) for e in self.manifest["columns"])
            self._entries = {column.key: entry for column, entry in zip(self.columns, self.manifest["columns"])}
            for entry in [*self.manifest["columns"], *self.manifest["tables"].values()]:
                self._check_file(entry, verify)
        except HarnessError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise HarnessError(f"{manifest_path} is corrupt: a column or table entry is malformed ({type(err).__name__}: {err})") from None
        self._arrays: dict[tuple[str, str, str, str], np.ndarray] = {}

    def _check_file(self, entry: dict[str, Any], verify: bool) -> None:
        file = self.path / entry["file"]
        if not file.is_file():
            raise HarnessError(f"store {self.path} is incomplete: {entry['file']} is missing")
        if "shape" in entry:
            problem = _array_file_problem(file, tuple(int(n) for n in entry["shape"]))
            if problem is not None:
                raise self._damaged(entry["file"], problem)
        if verify and _sha256(file) != entry["sha256"]:
            raise self._damaged(entry["file"], "fails its sha256 checksum (its bytes changed since it was written)")

    def _damaged(self, file: str, problem: str) -> HarnessError:
        return HarnessError(
            f"store {self.path} is damaged: {file} {problem}; run 'harness data verify {self.path}' to check "
            "every file, and convert the official files again (harness data convert) to replace the store"
        )

    @property
    def extra(self) -> dict[str, Any]:
        return self.manifest["extra"]

    def array(self, column: Column) -> np.ndarray:
        """The memory-mapped float32 array of ``column``."""
        if column.key not in self._arrays:
            entry = self._entries.get(column.key)
            if entry is None:
                raise HarnessError(f"store {self.path} has no column {column}")
            try:
                self._arrays[column.key] = np.load(self.path / entry["file"], mmap_mode="r", allow_pickle=False)
            except ValueError as err:
                raise HarnessError(f"store {self.path}: {entry['file']} is corrupt: {err}") from None
        return self._arrays[column.key]

    def table(self, name: str) -> pd.DataFrame:
        entry = self.manifest["tables"].get(name)
        if entry is None:
            raise HarnessError(f"store {self.path} has no table {name!r}; tables: {sorted(self.manifest['tables'])}")
        try:
            return pd.read_parquet(self.path / entry["file"])
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise HarnessError(f"store {self.path}: {entry['file']} is not a readable parquet table: {err}") from None

    def verify(self) -> None:
        """Recompute every checksum; raises HarnessError naming the first file that differs."""
        for entry in list(self.manifest["columns"]) + list(self.manifest["tables"].values()):
            self._check_file(entry, verify=True)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _array_file_problem(file: Path, shape: tuple[int, ...]) -> str | None:
    """What is wrong with the ``.npy`` file of a column of ``shape``, or None; no hashing.

    Reads only the header (a Python literal, parsed without pickle) and the file's size: float32
    in C order, exactly ``shape``, and exactly as many bytes as header + data. A changed value inside
    the data keeps size and header; only the sha256 (``harness data verify``) finds that.
    """
    with file.open("rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = _NPY_HEADER_READERS.get(version)
            if read_header is None:
                return f"is a .npy file of format version {version[0]}.{version[1]}; the store writes 1.0 or 2.0"
            found_shape, fortran_order, dtype = read_header(fh)
        except ValueError as err:
            return f"has no valid .npy header ({err})"
        data_start = fh.tell()
    if dtype != np.float32 or fortran_order or found_shape != shape:
        order = " (Fortran order)" if fortran_order else ""
        return (f"holds {dtype} {list(found_shape)}{order}, but the manifest says float32 {list(shape)} "
                "in C order")
    size, expected = file.stat().st_size, data_start + 4 * math.prod(shape)
    if size != expected:
        what = "truncated" if size < expected else "longer than its array"
        return f"is {what}: {size:,} bytes, expected {expected:,} (a {data_start}-byte header + float32 {list(shape)})"
    return None


def read_rows(array: np.ndarray, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
    """Gather ``array[rows][:, seed_pos][:, :, epoch_pos]`` in one vectorised read."""
    block = array[np.asarray(rows, dtype=np.int64)]
    return block[:, seed_pos][:, :, epoch_pos]
