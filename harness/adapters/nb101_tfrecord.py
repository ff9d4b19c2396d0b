"""Read and write the official NAS-Bench-101 ``.tfrecord`` files without TensorFlow.

Framing (TFRecord, as TensorFlow's ``tf_record_iterator`` reads it), repeated until the end of file::

    uint64  length                      little endian
    uint32  masked_crc32c(length bytes)
    bytes   data[length]
    uint32  masked_crc32c(data)

``masked_crc32c(x) = ((c >> 15 | c << 17) + 0xA282EAD8) mod 2**32`` with ``c`` the CRC-32C
(Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF) of ``x``. Both CRCs
are verified; CRC-32C is implemented here with numpy (no extra package), vectorised over a batch of
records: one table lookup per byte position for all records of the batch at once.

Each record's data is UTF-8 JSON (nasbench ``api.NASBench.__init__``)::

    [module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]

``raw_adjacency`` is the pruned matrix as a string of ``dim*dim`` digits, ``raw_operations`` the
comma-joined op names, ``raw_metrics`` the base64 of a ``nasbench.ModelMetrics`` protobuf
(``nasbench/lib/model_metrics.proto``, proto2)::

    ModelMetrics   { repeated EvaluationData evaluation_data = 1; int32 trainable_parameters = 2;
                     double total_time = 3; }
    EvaluationData { double current_epoch = 1; double training_time = 2; double train_accuracy = 3;
                     double validation_accuracy = 4; double test_accuracy = 5; string checkpoint_path = 6; }

``evaluation_data`` holds the evaluations at initialisation, halfway and the end of training. The
protobuf wire format is decoded by hand here (varints, fixed64 doubles, length-delimited fields);
the tests check the encoder against the ``protobuf`` package.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

_HEADER = struct.Struct("<QI")
_CRC_MASK_DELTA = 0xA282EAD8
_POLY = 0x82F63B78


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table[byte] = crc
    return table


CRC_TABLE = _crc_table()


def crc32c_batch(buffers: Sequence[bytes]) -> np.ndarray:
    """CRC-32C of every buffer, as uint32 ``[len(buffers)]``.

    Byte-wise table algorithm ``c = T[(c ^ b) & 0xFF] ^ (c >> 8)``, run for all buffers at once:
    buffers are sorted by length (longest first) so that at byte position ``j`` the active buffers
    are a prefix of the batch.
    """
    n = len(buffers)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter((len(b) for b in buffers), dtype=np.int64, count=n)
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    width = int(sorted_lengths[0])
    columns = np.zeros((width, n), dtype=np.uint8)  # columns[j, i] = byte j of sorted buffer i
    for i, src in enumerate(order.tolist()):
        if sorted_lengths[i]:
            columns[: sorted_lengths[i], i] = np.frombuffer(buffers[src], dtype=np.uint8)
    # active[j] = number of buffers longer than j
    active = np.searchsorted(-sorted_lengths, -np.arange(width), side="left")
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    for j in range(width):
        k = int(active[j])
        head = crc[:k]
        crc[:k] = CRC_TABLE[(head ^ columns[j, :k]) & 0xFF] ^ (head >> 8)
    out = np.empty(n, dtype=np.uint32)
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def crc32c(data: bytes) -> int:
    """CRC-32C of one buffer (check value: ``crc32c(b"123456789") == 0xE3069283``)."""
    return int(crc32c_batch([data])[0])


def mask_crc(crc: np.ndarray | int) -> np.ndarray:
    """TFRecord's masked CRC: rotate right by 15 bits and add 0xA282EAD8 (mod 2**32)."""
    c = np.asarray(crc, dtype=np.uint64)
    rotated = ((c >> np.uint64(15)) | (c << np.uint64(17))) & np.uint64(0xFFFFFFFF)
    return ((rotated + np.uint64(_CRC_MASK_DELTA)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# Framing


@dataclass(frozen=True)
class RecordIndex:
    """Where each record's data lies in the file: byte offsets of the record start and its data."""

    record_offsets: np.ndarray  # int64, offset of the 12-byte header
    data_offsets: np.ndarray  # int64
    lengths: np.ndarray  # int64


def index_records(buffer: bytes | memoryview | np.ndarray, name: str = "tfrecord") -> RecordIndex:
    """Walk the framing of a whole file and verify every length CRC; data CRCs are checked by
    :func:`iter_record_batches`. Raises HarnessError naming the byte offset of a bad record."""
    view = memoryview(buffer).cast("B") if not isinstance(buffer, np.ndarray) else memoryview(buffer)
    size = len(view)
    starts: list[int] = []
    lengths: list[int] = []
    stored_crcs: list[int] = []
    pos = 0
    while pos < size:
        if size - pos < _HEADER.size:
            raise HarnessError(
                f"{name} is truncated: record #{len(starts)} at byte offset {pos} has {size - pos} header "
                f"bytes of {_HEADER.size}"
            )
        length, length_crc = _HEADER.unpack_from(view, pos)
        end = pos + _HEADER.size + length + 4
        if end > size:
            raise HarnessError(
                f"{name} is truncated or corrupt: record #{len(starts)} at byte offset {pos} declares "
                f"{length} data bytes but only {max(0, size - pos - _HEADER.size - 4)} remain"
            )
        starts.append(pos)
        lengths.append(length)
        stored_crcs.append(length_crc)
        pos = end
    record_offsets = np.asarray(starts, dtype=np.int64)
    length_array = np.asarray(lengths, dtype=np.int64)
    expected = np.asarray(stored_crcs, dtype=np.uint32)
    actual = mask_crc(crc32c_batch([bytes(view[s : s + 8]) for s in starts])) if starts else expected
    bad = np.flatnonzero(actual != expected)
    if bad.size:
        i = int(bad[0])
        raise HarnessError(
            f"{name} is corrupt: length CRC mismatch in record #{i} at byte offset {int(record_offsets[i])}"
        )
    return RecordIndex(record_offsets, record_offsets + _HEADER.size, length_array)


def iter_record_batches(
    buffer: bytes | memoryview | np.ndarray, index: RecordIndex, batch_size: int = 4096, name: str = "tfrecord"
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(first_record_number, [data, ...])`` batches, verifying each record's data CRC."""
    view = memoryview(buffer).cast("B") if not isinstance(buffer, np.ndarray) else memoryview(buffer)
    for first in range(0, len(index.lengths), batch_size):
        stop = min(first + batch_size, len(index.lengths))
        datas = [
            bytes(view[int(o) : int(o) + int(n)])
            for o, n in zip(index.data_offsets[first:stop], index.lengths[first:stop])
        ]
        crc_pos = index.data_offsets[first:stop] + index.lengths[first:stop]
        stored = np.fromiter(
            (struct.unpack_from("<I", view, int(p))[0] for p in crc_pos), dtype=np.uint32, count=stop - first
        )
        bad = np.flatnonzero(mask_crc(crc32c_batch(datas)) != stored)
        if bad.size:
            i = first + int(bad[0])
            raise HarnessError(
                f"{name} is corrupt: data CRC mismatch in record #{i} at byte offset {int(index.record_offsets[i])}"
            )
        yield first, datas


def frame_records(payloads: Sequence[bytes]) -> bytes:
    """The exact TFRecord bytes of ``payloads`` (lengths, masked CRC-32Cs, data)."""
    if not payloads:
        return b""
    headers = [struct.pack("<Q", len(p)) for p in payloads]
    length_crcs = mask_crc(crc32c_batch(headers))
    data_crcs = mask_crc(crc32c_batch(payloads))
    parts: list[bytes] = []
    for header, lcrc, payload, dcrc in zip(headers, length_crcs.tolist(), payloads, data_crcs.tolist()):
        parts += [header, struct.pack("<I", lcrc), payload, struct.pack("<I", dcrc)]
    return b"".join(parts)


def write_tfrecord(path: str | Path, payloads: Iterable[bytes], batch_size: int = 4096) -> int:
    """Write ``payloads`` as a TFRecord file (temp file then rename); returns the record count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    batch: list[bytes] = []
    try:
        with tmp.open("wb") as fh:
            for payload in payloads:
                batch.append(payload)
                if len(batch) == batch_size:
                    fh.write(frame_records(batch))
                    count += len(batch)
                    batch = []
            fh.write(frame_records(batch))
            count += len(batch)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


# ----------------------------------------------------------------------------------------------
# ModelMetrics protobuf


@dataclass(frozen=True)
class EvaluationData:
    """One evaluation during training; None marks a field absent from the message."""

    current_epoch: float | None = None
    training_time: float | None = None
    train_accuracy: float | None = None
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    checkpoint_path: str | None = None


@dataclass(frozen=True)
class ModelMetrics:
    evaluation_data: tuple[EvaluationData, ...]
    trainable_parameters: int | None = None
    total_time: float | None = None


_EVAL_DOUBLES = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
_DOUBLE = struct.Struct("<d")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)``: int for varints, bytes for fixed and delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("fixed64 field runs past the end of the message")
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("length-delimited field runs past the end of the message")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("fixed32 field runs past the end of the message")
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire} for field {number}")


def _decode_evaluation(buf: bytes) -> EvaluationData:
    values: dict[str, object] = {}
    for number, wire, value in _fields(buf):
        if 1 <= number <= 5 and wire == 1:
            values[_EVAL_DOUBLES[number - 1]] = _DOUBLE.unpack(value)[0]  # type: ignore[arg-type]
        elif number == 6 and wire == 2:
            values["checkpoint_path"] = bytes(value).decode("utf-8")  # type: ignore[arg-type]
        elif number <= 6:
            raise ValueError(f"EvaluationData field {number} has wire type {wire}")
    return EvaluationData(**values)  # type: ignore[arg-type]


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Parse a serialized ``nasbench.ModelMetrics``; raises ValueError on malformed bytes."""
    evaluations: list[EvaluationData] = []
    params: int | None = None
    total: float | None = None
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 2:
            evaluations.append(_decode_evaluation(value))  # type: ignore[arg-type]
        elif number == 2 and wire == 0:
            params = int(value)  # type: ignore[arg-type]
            if params >= 1 << 63:  # negative int32 is sign-extended to 64 bits
                params -= 1 << 64
        elif number == 3 and wire == 1:
            total = _DOUBLE.unpack(value)[0]  # type: ignore[arg-type]
        elif number <= 3:
            raise ValueError(f"ModelMetrics field {number} has wire type {wire}")
    return ModelMetrics(tuple(evaluations), params, total)


def _encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_model_metrics(metrics: ModelMetrics) -> bytes:
    """Serialize like protobuf's ``SerializeToString`` (fields in number order, only those set)."""
    parts: list[bytes] = []
    for evaluation in metrics.evaluation_data:
        body = b"".join(
            bytes([(i + 1) << 3 | 1]) + _DOUBLE.pack(getattr(evaluation, name))
            for i, name in enumerate(_EVAL_DOUBLES)
            if getattr(evaluation, name) is not None
        )
        if evaluation.checkpoint_path is not None:
            body += _delimited(6, evaluation.checkpoint_path.encode("utf-8"))
        parts.append(_delimited(1, body))
    if metrics.trainable_parameters is not None:
        parts.append(b"\x10" + _encode_varint(metrics.trainable_parameters))
    if metrics.total_time is not None:
        parts.append(b"\x19" + _DOUBLE.pack(metrics.total_time))
    return b"".join(parts)


# ----------------------------------------------------------------------------------------------
# NB101 JSON records


@dataclass(frozen=True)
class Nb101Record:
    """One training run: a cell (pruned), its epoch budget and the metrics of that run."""

    module_hash: str
    epochs: int
    adjacency: np.ndarray  # int8 [dim, dim]
    operations: tuple[str, ...]
    metrics: ModelMetrics


def decode_record(data: bytes, where: str = "record") -> Nb101Record:
    """Parse one record's JSON payload; HarnessError (naming ``where``) if it is not an NB101 record."""
    try:
        module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(data.decode("utf-8"))
        if not isinstance(module_hash, str) or len(module_hash) != 32:
            raise ValueError(f"module hash {module_hash!r} is not 32 hex digits")
        dim = int(round(len(raw_adjacency) ** 0.5))
        if dim * dim != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
            raise ValueError(f"raw_adjacency {raw_adjacency!r} is not a square 0/1 matrix")
        adjacency = (np.frombuffer(raw_adjacency.encode("ascii"), dtype=np.uint8) - ord("0")).astype(np.int8)
        operations = tuple(raw_operations.split(","))
        if len(operations) != dim:
            raise ValueError(f"{len(operations)} operations for a {dim}x{dim} adjacency")
        metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
        return Nb101Record(module_hash, int(epochs), adjacency.reshape(dim, dim), operations, metrics)
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError, binascii.Error) as err:
        raise HarnessError(f"{where} is not a NAS-Bench-101 record: {err}") from None


def encode_record(
    module_hash: str, epochs: int, adjacency: np.ndarray, operations: Sequence[str], metrics: ModelMetrics
) -> bytes:
    """The JSON payload of one record, as the official files hold it."""
    raw_adjacency = "".join(str(int(v)) for v in np.asarray(adjacency).ravel())
    raw_metrics = base64.b64encode(encode_model_metrics(metrics)).decode("ascii")
    return json.dumps([module_hash, int(epochs), raw_adjacency, ",".join(operations), raw_metrics]).encode("utf-8")


def read_records(path: str | Path, batch_size: int = 4096) -> Iterator[Nb101Record]:
    """Every record of an official NB101 file, CRC-checked, in file order (for small files/tests)."""
    path = Path(path)
    data = open_tfrecord(path)
    index = index_records(data, name=str(path))
    for first, batch in iter_record_batches(data, index, batch_size, name=str(path)):
        for i, payload in enumerate(batch):
            yield decode_record(payload, f"{path} record #{first + i} at byte offset {int(index.record_offsets[first + i])}")


def open_tfrecord(path: Path) -> np.ndarray:
    """The file memory-mapped as uint8; HarnessError if it is missing or empty."""
    if not path.is_file():
        raise HarnessError(f"{path} is not a file; expected an NB101 .tfrecord (nasbench_only108.tfrecord or nasbench_full.tfrecord)")
    if path.stat().st_size == 0:
        raise HarnessError(f"{path} is empty; expected an NB101 .tfrecord")
    return np.memmap(path, dtype=np.uint8, mode="r")

