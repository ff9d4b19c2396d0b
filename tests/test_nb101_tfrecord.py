"""TFRecord framing, CRC-32C and the ModelMetrics protobuf, without TensorFlow."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from harness.adapters import nb101_tfrecord as tfr
from harness.errors import HarnessError
from nb101_fixtures import payloads, fixture_truth, write_fixture


def _protobuf_model_metrics():
    """ModelMetrics built from the field list of nasbench/lib/model_metrics.proto."""
    file = descriptor_pb2.FileDescriptorProto(name="model_metrics.proto", package="nasbench", syntax="proto2")
    mm = file.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, label=3, type=11, type_name=".nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, label=1, type=5)
    mm.field.add(name="total_time", number=3, label=1, type=1)
    ev = file.message_type.add(name="EvaluationData")
    for number, name in enumerate(["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], 1):
        ev.field.add(name=name, number=number, label=1, type=1)
    ev.field.add(name="checkpoint_path", number=6, label=1, type=9)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


def test_crc32c_standard_check_values():
    assert tfr.crc32c(b"123456789") == 0xE3069283
    assert tfr.crc32c(b"") == 0
    assert tfr.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros


def test_crc32c_batch_equals_one_by_one_for_ragged_lengths():
    rng = np.random.default_rng(0)
    buffers = [rng.bytes(int(n)) for n in rng.integers(0, 300, 50)]
    assert tfr.crc32c_batch(buffers).tolist() == [tfr.crc32c(b) for b in buffers]


def test_protobuf_decoding_matches_the_protobuf_package():
    cls = _protobuf_model_metrics()
    msg = cls(trainable_parameters=8555530, total_time=1770.5)
    for k in range(3):
        msg.evaluation_data.add(current_epoch=54.0 * k, training_time=10.0 * k, train_accuracy=0.1 + k / 4,
                                validation_accuracy=0.93048876523971558, test_accuracy=0.5)
    msg.evaluation_data[2].checkpoint_path = "/x/model.ckpt-1"
    raw = msg.SerializeToString()
    decoded = tfr.decode_model_metrics(raw)
    assert decoded.trainable_parameters == 8555530 and decoded.total_time == 1770.5
    assert [e.current_epoch for e in decoded.evaluation_data] == [0.0, 54.0, 108.0]
    assert decoded.evaluation_data[2].validation_accuracy == 0.93048876523971558
    assert decoded.evaluation_data[2].checkpoint_path == "/x/model.ckpt-1"
    assert tfr.encode_model_metrics(decoded) == raw  # byte-exact writer


def test_fixture_records_parse_with_the_protobuf_package():
    cls = _protobuf_model_metrics()
    truth = fixture_truth(n_cells=2)
    import base64, json
    for payload, row in zip(payloads(truth), truth.itertuples()):
        hash_, epochs, adjacency, ops, raw = json.loads(payload)
        msg = cls.FromString(base64.b64decode(raw))
        assert (hash_, epochs, ops) == (row.hash, row.budget, row.operations)
        assert adjacency == row.adjacency
        assert msg.evaluation_data[2].validation_accuracy == row.final_valid
        assert msg.trainable_parameters == row.params


def test_framing_layout_is_the_official_one(tmp_path):
    path = tmp_path / "one.tfrecord"
    tfr.write_tfrecord(path, [b"abc"])
    raw = path.read_bytes()
    length, length_crc = struct.unpack_from("<QI", raw)
    assert length == 3 and raw[12:15] == b"abc" and len(raw) == 12 + 3 + 4
    assert length_crc == int(tfr.mask_crc(tfr.crc32c(struct.pack("<Q", 3))))
    assert struct.unpack_from("<I", raw, 15)[0] == int(tfr.mask_crc(tfr.crc32c(b"abc")))


def test_read_records_round_trip(tmp_path):
    truth = write_fixture(tmp_path / "f.tfrecord", n_cells=3)
    records = list(tfr.read_records(tmp_path / "f.tfrecord"))
    assert len(records) == len(truth) == 3 * 4 * 3
    assert [r.module_hash for r in records] == truth.hash.tolist()
    assert [r.metrics.evaluation_data[2].validation_accuracy for r in records] == truth.final_valid.tolist()
    assert "real=validation_accuracy" in records[0].metrics.evaluation_data[2].checkpoint_path


def _record_offsets(raw: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(raw):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<Q", raw, pos)[0]
    return offsets


@pytest.mark.parametrize(("record", "byte", "flip", "what"), [
    (1, 20, 0x01, "data CRC"),  # one bit inside record #1's data
    (2, 8, 0xFF, "length CRC"),  # record #2's length checksum
])
def test_bad_crc_names_the_record_and_byte_offset(tmp_path, record, byte, flip, what):
    path = tmp_path / "f.tfrecord"
    write_fixture(path, n_cells=1, budgets=(108,))
    raw = bytearray(path.read_bytes())
    offset = _record_offsets(bytes(raw))[record]
    raw[offset + byte] ^= flip
    path.write_bytes(bytes(raw))
    with pytest.raises(HarnessError, match=f"{what} mismatch in record #{record} at byte offset {offset}"):
        list(tfr.read_records(path))


def test_truncated_file_names_the_record_and_offset(tmp_path):
    path = tmp_path / "f.tfrecord"
    write_fixture(path, n_cells=1, budgets=(108,))
    raw = path.read_bytes()
    last = _record_offsets(raw)[-1]
    path.write_bytes(raw[:-7])
    with pytest.raises(HarnessError, match=f"truncated.*record #2 at byte offset {last}"):
        list(tfr.read_records(path))
    path.write_bytes(raw[: last + 5])
    with pytest.raises(HarnessError, match=f"truncated.*byte offset {last}"):
        list(tfr.read_records(path))


def test_valid_framing_around_non_nb101_json_is_reported(tmp_path):
    path = tmp_path / "f.tfrecord"
    tfr.write_tfrecord(path, [b'["abc", 108]'])
    with pytest.raises(HarnessError, match="record #0 at byte offset 0 is not a NAS-Bench-101 record"):
        list(tfr.read_records(path))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(HarnessError, match="not a file"):
        tfr.open_tfrecord(tmp_path / "nope.tfrecord")
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(HarnessError, match="empty"):
        tfr.open_tfrecord(tmp_path / "empty.tfrecord")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (["a" * 32, 108, "0100", ["input", "output"], ""], "'list' object has no attribute 'split'"),
        (["a" * 33, 108, "0100", "input,output", ""], "module hash 'a{33}' is not 32 hex digits"),
    ],
)
def test_malformed_record_fields_are_reported_not_attribute_errors_or_truncated(fields, named):
    with pytest.raises(HarnessError, match=f"record #5 is not a NAS-Bench-101 record: {named}"):
        tfr.decode_record(json.dumps(fields).encode(), "record #5")


def _crc32c_bitwise(data: bytes) -> int:
    """CRC-32C by its definition (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _tf_masked_crc(data: bytes) -> int:
    """tensorflow/core/lib/hash/crc32c.h Mask(): rotate right by 15 bits, add kMaskDelta = 0xa282ead8."""
    crc = _crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_written_bytes_equal_tensorflows_framing_with_its_mask_constant(tmp_path):
    """Pitfall: a wrong mask delta or rotation passes every round trip (reader and writer share it) but
    makes files TensorFlow refuses and refuses TensorFlow's files."""
    assert _crc32c_bitwise(b"123456789") == 0xE3069283  # the oracle itself, on the standard check value
    records = [b"", b"abc", bytes(range(256)) * 3]
    expected = b"".join(
        struct.pack("<Q", len(r)) + struct.pack("<I", _tf_masked_crc(struct.pack("<Q", len(r))))
        + r + struct.pack("<I", _tf_masked_crc(r))
        for r in records
    )
    path = tmp_path / "f.tfrecord"
    tfr.write_tfrecord(path, records)
    assert path.read_bytes() == expected
    assert [int(tfr.mask_crc(tfr.crc32c(r))) for r in records] == [_tf_masked_crc(r) for r in records]
    # and TensorFlow-framed bytes read back
    data = np.frombuffer(expected, dtype=np.uint8)
    index = tfr.index_records(data)
    assert [d for _, batch in tfr.iter_record_batches(data, index) for d in batch] == records


def test_every_evaluation_field_decodes_to_its_proto_field_number():
    """Pitfall: train/test accuracy (or training_time/current_epoch) swapped in the decoder; the byte-exact
    re-encode cannot see it because the encoder shares the field table."""
    cls = _protobuf_model_metrics()
    msg = cls()
    values = {"current_epoch": 108.0, "training_time": 1234.5, "train_accuracy": 0.99,
              "validation_accuracy": 0.93, "test_accuracy": 0.92}
    msg.evaluation_data.add(**values)
    decoded = tfr.decode_model_metrics(msg.SerializeToString()).evaluation_data[0]
    assert {name: getattr(decoded, name) for name in values} == values
    assert decoded.checkpoint_path is None


def test_negative_int32_parameter_count_is_sign_extended_like_protobuf():
    """proto2 int32 encodes a negative value as a 10-byte varint (64-bit two's complement)."""
    cls = _protobuf_model_metrics()
    raw = cls(trainable_parameters=-5).SerializeToString()
    assert len(raw) == 11 and tfr.decode_model_metrics(raw).trainable_parameters == -5


@pytest.mark.parametrize("unknown", [b"\x25\x00\x00\x80\x3f", b"\x21" + bytes(8), b"\x20\x96\x01", b"\x22\x03abc"],
                         ids=["fixed32", "fixed64", "varint", "delimited"])
def test_unknown_fields_are_skipped_by_their_wire_size_like_protobuf(unknown):
    """Pitfall: an unknown field skipped by the wrong width desynchronises the fields after it."""
    cls = _protobuf_model_metrics()
    tail = cls(trainable_parameters=7, total_time=2.5)
    tail.evaluation_data.add(validation_accuracy=0.5)
    raw = unknown + tail.SerializeToString()
    oracle = cls.FromString(raw)  # protobuf keeps unknown field 4 aside and parses the rest
    decoded = tfr.decode_model_metrics(raw)
    assert (decoded.trainable_parameters, decoded.total_time) == (oracle.trainable_parameters, oracle.total_time) == (7, 2.5)
    assert decoded.evaluation_data[0].validation_accuracy == oracle.evaluation_data[0].validation_accuracy
