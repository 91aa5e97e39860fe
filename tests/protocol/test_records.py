"""protocol.records v2 batches: golden layout, round trips, builder API, header rewrites."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol._errors_base import (
    CorruptRecordError,
    DecompressionLimitError,
    EncodeError,
    UnsupportedCompressionError,
)
from protocol.records import (
    RECORD_BATCH_OVERHEAD,
    BatchBuilder,
    Codec,
    ControlType,
    NewRecord,
    Record,
    RecordBatch,
    TimestampType,
    build_batch,
    build_control_batch,
    decode_control_record,
    encode_end_txn_marker,
    read_batches,
    record_size_upper_bound,
    rewrite_batch_header,
    set_base_offset,
)

Headers = list[tuple[str, bytes | None]]

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_batch(data: bytes, **kwargs: object) -> RecordBatch:
    batches = list(read_batches(data, **kwargs))  # type: ignore[arg-type]
    assert len(batches) == 1
    batch = batches[0]
    assert isinstance(batch, RecordBatch)
    return batch


# -- golden layout ---------------------------------------------------------------


def test_golden_single_record_layout() -> None:
    """Assemble a batch by hand from the documented layout and compare."""
    # record: attributes 0, ts delta 0, offset delta 0, key "k", value "v",
    # header ("h", "x"); lengths are zig-zag varints (n -> 2n).
    body = b"\x00" + b"\x00" + b"\x00" + b"\x02k" + b"\x02v" + b"\x02" + b"\x02h" + b"\x02x"
    record = bytes((2 * len(body),)) + body
    tail = struct.pack(
        ">hiqqqhii",
        0x10,  # attributes: transactional
        0,  # last offset delta
        1_700_000_000_000,  # base timestamp
        1_700_000_000_000,  # max timestamp
        42,  # producer id
        3,  # producer epoch
        7,  # base sequence
        1,  # record count
    )
    crc = crc32c(tail + record)
    head = struct.pack(">qiibI", 100, 49 + len(record), 5, 2, crc)
    expected = head + tail + record

    builder = BatchBuilder(
        base_offset=100,
        producer_id=42,
        producer_epoch=3,
        base_sequence=7,
        partition_leader_epoch=5,
        is_transactional=True,
    )
    assert builder.append(1_700_000_000_000, b"k", b"v", [("h", b"x")]) == 0
    assert builder.build() == expected

    batch = only_batch(expected)
    assert batch.records() == [Record(100, 1_700_000_000_000, b"k", b"v", [("h", b"x")])]


def test_varint_boundaries_round_trip() -> None:
    # Lengths and deltas straddling 1/2/3-byte varints and negative deltas.
    sizes = [0, 1, 63, 64, 65, 8191, 8192, 8193, 16383, 16384, 70000]
    builder = BatchBuilder()
    base = 1_000_000
    expected = []
    for i, size in enumerate(sizes):
        ts = base + (-1) ** i * size * 1000
        key = b"k" * size
        value = bytes(size)
        builder.append(ts, key, value)
        expected.append((i, ts, key, value))
    batch = only_batch(builder.build())
    assert [(r.offset, r.timestamp, r.key, r.value) for r in batch] == expected
    assert batch.base_timestamp == base
    assert batch.max_timestamp == max(e[1] for e in expected)


def test_many_records_offset_deltas_past_varint_cache() -> None:
    n = 20_000
    data = build_batch(((i, None, b"%d" % i) for i in range(n)), base_offset=5)
    recs = only_batch(data).records()
    assert len(recs) == n
    assert recs[-1] == Record(5 + n - 1, n - 1, None, b"%d" % (n - 1), ())


# -- property round trips -----------------------------------------------------------

timestamps = st.integers(-1, 1 << 45)
blobs = st.none() | st.binary(max_size=300)
header_lists = st.lists(
    st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=40)), max_size=4
)
new_records = st.lists(st.tuples(timestamps, blobs, blobs, header_lists), min_size=0, max_size=40)


@pytest.mark.parametrize("codec", list(Codec))
@SETTINGS
@given(
    records=new_records,
    base_offset=st.integers(0, (1 << 62)),
    producer_id=st.integers(-1, (1 << 63) - 1),
    producer_epoch=st.integers(-1, (1 << 15) - 1),
    base_sequence=st.integers(-1, (1 << 31) - 1),
    leader_epoch=st.integers(-1, (1 << 31) - 1),
    transactional=st.booleans(),
    control=st.booleans(),
    log_append=st.booleans(),
)
def test_round_trip(
    codec: Codec,
    records: list[tuple[int, bytes | None, bytes | None, Headers]],
    base_offset: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    leader_epoch: int,
    transactional: bool,
    control: bool,
    log_append: bool,
) -> None:
    builder = BatchBuilder(
        codec=codec,
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        partition_leader_epoch=leader_epoch,
        is_transactional=transactional,
        is_control=control,
        timestamp_type=TimestampType.LOG_APPEND_TIME if log_append else TimestampType.CREATE_TIME,
    )
    for i, (ts, key, value, headers) in enumerate(records):
        assert builder.append(ts, key, value, headers) == i
    data = builder.build()
    if codec == Codec.NONE:
        assert len(data) == builder.estimated_size == builder.uncompressed_size

    batch = only_batch(data)
    assert batch.crc_ok()
    assert batch.magic == 2
    assert batch.codec == codec
    assert batch.base_offset == base_offset
    assert batch.producer_id == producer_id
    assert batch.producer_epoch == producer_epoch
    assert batch.base_sequence == base_sequence
    assert batch.partition_leader_epoch == leader_epoch
    assert batch.is_transactional == transactional
    assert batch.is_control == control
    assert batch.record_count == len(records)
    assert batch.last_offset_delta == len(records) - 1
    assert batch.next_offset == base_offset + len(records)
    assert batch.size_in_bytes == len(data)
    assert batch.raw() == data
    assert batch.timestamp_type == (1 if log_append else 0)
    if records:
        assert batch.base_timestamp == records[0][0]
        assert batch.max_timestamp == max(r[0] for r in records)

    decoded = batch.records()
    assert len(decoded) == len(records)
    for i, (rec, (ts, key, value, headers)) in enumerate(zip(decoded, records, strict=True)):
        assert rec.offset == base_offset + i
        assert rec.timestamp == (batch.max_timestamp if log_append else ts)
        assert rec.key == key
        assert rec.value == value
        assert list(rec.headers) == headers
    assert list(batch) == decoded


@SETTINGS
@given(batches=st.lists(new_records, min_size=1, max_size=4), cut=st.integers(0, 64))
def test_concatenated_batches_and_partial_tail(
    batches: list[list[tuple[int, bytes | None, bytes | None, Headers]]], cut: int
) -> None:
    encoded = []
    offset = 0
    for recs in batches:
        encoded.append(build_batch([NewRecord(*r) for r in recs], base_offset=offset))
        offset += len(recs)
    whole = b"".join(encoded)
    got = list(read_batches(whole))
    assert [b.raw() for b in got] == encoded
    # Cutting into the last batch drops exactly that batch.
    if cut:
        truncated = whole[: len(whole) - min(cut, len(encoded[-1]))]
        assert [b.raw() for b in read_batches(truncated)] == encoded[:-1]


def test_input_types() -> None:
    data = build_batch([(1, b"k", b"v")])
    for form in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert [r.value for r in only_batch(form).records()] == [b"v"]  # type: ignore[arg-type]


# -- builder API ---------------------------------------------------------------------


def test_empty_batch() -> None:
    builder = BatchBuilder()
    assert builder.record_count == 0
    batch = only_batch(builder.build())
    assert batch.records() == []
    assert batch.last_offset_delta == -1
    assert batch.max_timestamp == -1


def test_bytes_like_keys_and_values_are_snapshotted() -> None:
    key = bytearray(b"key")
    value = memoryview(bytearray(b"value"))
    builder = BatchBuilder()
    builder.append(1, key, value)
    key[0] = ord("X")
    value[0] = ord("X")
    assert only_batch(builder.build()).records()[0][2:4] == (b"key", b"value")


@pytest.mark.parametrize("bad", ["text", 5, ["x"]])
def test_bad_key_or_value_types(bad: object) -> None:
    builder = BatchBuilder()
    with pytest.raises(TypeError):
        builder.append(1, bad, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        builder.append(1, None, bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        builder.append(1, None, None, [(b"bytes-key", b"v")])  # type: ignore[list-item]
    assert builder.record_count == 0


def test_header_key_not_utf8_encodable() -> None:
    with pytest.raises(EncodeError):
        BatchBuilder().append(1, None, None, [("\udc80", None)])


def test_out_of_range_fields() -> None:
    with pytest.raises(EncodeError):
        BatchBuilder(codec=5)
    with pytest.raises(EncodeError):
        BatchBuilder(timestamp_type=-1)
    with pytest.raises(EncodeError):
        BatchBuilder(producer_epoch=1 << 15).build()
    builder = BatchBuilder()
    builder.append(-(1 << 63), None, None)
    with pytest.raises(EncodeError):
        builder.append((1 << 63) - 1, None, None)  # delta overflows a varlong


def test_try_append_respects_max_batch_size() -> None:
    limit = 1000
    builder = BatchBuilder()
    value = b"x" * 100
    appended = 0
    while builder.try_append(appended, b"key", value, max_batch_size=limit) is not None:
        appended += 1
    assert appended > 1
    data = builder.build()
    assert len(data) <= limit
    assert len(data) == builder.estimated_size
    # A lone oversized record is still accepted.
    big = BatchBuilder()
    assert big.try_append(0, None, b"x" * 5000, max_batch_size=limit) == 0
    assert big.try_append(0, None, b"x", max_batch_size=limit) is None


def test_record_size_upper_bound_holds() -> None:
    for key, value, headers in [
        (None, None, []),
        (b"k" * 200, b"v" * 20000, [("héader", b"x" * 300), ("n", None)]),
    ]:
        builder = BatchBuilder()
        builder.append(0, None, None)
        before = builder.uncompressed_size
        builder.append(1 << 40, key, value, headers)
        assert builder.uncompressed_size - before <= record_size_upper_bound(key, value, headers)


def test_compression_ratio_feedback() -> None:
    builder = BatchBuilder(codec=Codec.GZIP, estimated_compression_ratio=0.5)
    for i in range(100):
        builder.append(i, None, b"same value every time " * 4)
    estimate = builder.estimated_size
    assert estimate == RECORD_BATCH_OVERHEAD + (builder.uncompressed_size - 61) // 2
    assert builder.compression_ratio == 1.0
    data = builder.build()
    assert builder.compression_ratio == pytest.approx((len(data) - 61) / (estimate * 2 - 122), 0.01)
    assert builder.compression_ratio < 0.2


def test_build_twice_after_header_change() -> None:
    builder = BatchBuilder(codec=Codec.LZ4)
    builder.append(5, b"k", b"v")
    first = builder.build()
    builder.base_sequence = 9
    second = builder.build()
    assert only_batch(first).base_sequence == -1
    assert only_batch(second).base_sequence == 9
    assert only_batch(second).records() == only_batch(first).records()


# -- header rewrites ---------------------------------------------------------------


def test_rewrite_outside_crc_keeps_crc() -> None:
    data = build_batch([(1, b"k", b"v")], codec=Codec.ZSTD)
    out = rewrite_batch_header(data, base_offset=1234, partition_leader_epoch=9)
    assert out[17:21] == data[17:21]
    batch = only_batch(out)
    assert (batch.base_offset, batch.partition_leader_epoch) == (1234, 9)
    assert batch.records()[0].offset == 1234

    buf = bytearray(data)
    set_base_offset(buf, 77)
    assert only_batch(bytes(buf)).records()[0].offset == 77


def test_rewrite_producer_state_fixes_crc() -> None:
    data = build_batch([(1, b"k", b"v"), (2, None, b"w")], codec=Codec.SNAPPY)
    out = rewrite_batch_header(
        data, producer_id=55, producer_epoch=2, base_sequence=100, is_transactional=True
    )
    batch = only_batch(out)
    assert batch.crc_ok()
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (55, 2, 100)
    assert batch.is_transactional
    assert batch.last_sequence == 101
    assert [r.value for r in batch] == [b"v", b"w"]
    untx = only_batch(rewrite_batch_header(out, is_transactional=False))
    assert not untx.is_transactional and untx.codec == Codec.SNAPPY


def test_rewrite_log_append_time() -> None:
    data = build_batch([(1, b"k", b"v"), (2, b"k", b"w")])
    out = rewrite_batch_header(
        data, timestamp_type=TimestampType.LOG_APPEND_TIME, max_timestamp=999
    )
    batch = only_batch(out)
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [r.timestamp for r in batch] == [999, 999]


def test_rewrite_rejects_non_v2_and_bad_values() -> None:
    with pytest.raises(CorruptRecordError):
        rewrite_batch_header(b"\x00" * 30, base_offset=1)
    data = build_batch([(1, b"k", b"v")])
    with pytest.raises(EncodeError):
        rewrite_batch_header(data, producer_epoch=1 << 20)
    with pytest.raises(EncodeError):
        rewrite_batch_header(data, timestamp_type=3)


def test_last_sequence_wraps() -> None:
    data = build_batch([(1, None, b"a"), (1, None, b"b")], base_sequence=(1 << 31) - 1)
    assert only_batch(data).last_sequence == 0


# -- control batches ------------------------------------------------------------------


@pytest.mark.parametrize("commit", [True, False])
def test_control_batch(commit: bool) -> None:
    data = build_control_batch(
        commit=commit,
        producer_id=7,
        producer_epoch=1,
        coordinator_epoch=12,
        timestamp=1234,
        base_offset=50,
    )
    batch = only_batch(data)
    assert batch.is_control and batch.is_transactional
    assert batch.producer_id == 7 and batch.producer_epoch == 1
    (marker,) = batch.control_records()
    assert marker.offset == 50 and marker.timestamp == 1234
    assert marker.type == (ControlType.COMMIT if commit else ControlType.ABORT)
    assert marker.is_commit == commit and marker.is_abort == (not commit)
    assert marker.coordinator_epoch == 12
    assert marker.version == 0


def test_control_record_layout_and_errors() -> None:
    key, value = encode_end_txn_marker(True, 3)
    assert key == b"\x00\x00\x00\x01"
    assert value == b"\x00\x00\x00\x00\x00\x03"
    # Newer versions append fields; unknown types have no coordinator epoch.
    rec = decode_control_record(Record(1, 2, b"\x00\x01\x00\x05extra", b"whatever", ()))
    assert (rec.type, rec.version, rec.coordinator_epoch) == (5, 1, -1)
    for bad_key, bad_value in [
        (None, value),
        (b"\x00\x00\x00", value),
        (b"\xff\xff\x00\x01", value),
        (key, None),
        (key, b"\x00\x00\x00"),
    ]:
        with pytest.raises(CorruptRecordError):
            decode_control_record(Record(0, 0, bad_key, bad_value, ()))


def test_data_batch_has_no_control_records() -> None:
    assert only_batch(build_batch([(1, b"k", b"v")])).control_records() == []


# -- reader options and failures -------------------------------------------------------


def _corrupt_crc(data: bytes) -> bytes:
    # Flip the last bit of the last record's value (the byte before the header count).
    buf = bytearray(data)
    buf[-2] ^= 0x01
    return bytes(buf)


def test_crc_mismatch_detected_and_skippable() -> None:
    good = build_batch([(1, b"k", b"v")], base_offset=10)
    bad = _corrupt_crc(good)
    with pytest.raises(CorruptRecordError, match="CRC"):
        list(read_batches(bad))
    batch = only_batch(bad, verify_crc=False)
    assert not batch.crc_ok()
    assert batch.records()[0].value == b"w"


def test_crc_error_after_good_batches() -> None:
    first = build_batch([(1, b"k", b"a")])
    second = _corrupt_crc(build_batch([(1, b"k", b"b")], base_offset=1))
    it = read_batches(first + second)
    assert next(it).records()[0].value == b"a"
    with pytest.raises(CorruptRecordError):
        next(it)


@pytest.mark.parametrize("codec", [c for c in Codec if c != Codec.NONE])
def test_max_decompressed_size(codec: Codec) -> None:
    data = build_batch([(1, None, bytes(10_000))] * 10, codec=codec)
    batch = only_batch(data, max_decompressed_size=50_000)
    with pytest.raises(DecompressionLimitError):
        batch.records()
    assert len(only_batch(data, max_decompressed_size=200_000).records()) == 10


def _with_attributes(data: bytes, attributes: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(">h", buf, 21, attributes)
    struct.pack_into(">I", buf, 17, crc32c(bytes(buf[21:])))
    return bytes(buf)


@pytest.mark.parametrize("code", [5, 6, 7])
def test_unknown_codec_in_attributes(code: int) -> None:
    batch = only_batch(_with_attributes(build_batch([(1, b"k", b"v")]), code))
    assert batch.codec == code
    with pytest.raises(UnsupportedCompressionError):
        batch.records()


def test_delete_horizon_flag() -> None:
    batch = only_batch(_with_attributes(build_batch([(1, b"k", b"v")]), 0x40))
    assert batch.has_delete_horizon
    assert batch.records()[0].timestamp == 1


def test_unknown_magic() -> None:
    buf = bytearray(build_batch([(1, b"k", b"v")]))
    buf[16] = 3
    with pytest.raises(CorruptRecordError, match="magic"):
        list(read_batches(bytes(buf)))


def test_repr() -> None:
    text = repr(only_batch(build_batch([(1, b"k", b"v")], codec=Codec.GZIP)))
    assert "GZIP" in text and "count=1" in text


def test_builder_extend_writes_what_append_writes() -> None:
    import random as _random
    from collections.abc import Callable
    from typing import Any

    from protocol.records import BatchBuilder, build_batch

    rng = _random.Random(3)
    shapes: list[Callable[[int], Any]] = [
        lambda i: (5, None, b"v" * 100, ()),  # uniform: the zip/map path
        lambda i: (5 + i % 3, None, b"v" * (i % 7), ()),  # keyless shapes
        lambda i: (5 - i, bytearray(b"k"), None, [("h", b"1"), ("n", None)]),  # general
        lambda i: (10**12 * (i % 2), b"k" * rng.randrange(300), b"x" * 20000, ()),
    ]
    for shape in shapes:
        for n in (1, 63, 64, 65, 200, 8193):
            records: list[Any] = [shape(i) for i in range(n)]
            whole, halves = BatchBuilder(producer_id=9), BatchBuilder(producer_id=9)
            whole.extend(records)
            halves.extend(records[: n // 2])
            halves.extend(iter(records[n // 2 :]))
            expected = build_batch(records, producer_id=9)
            assert whole.build() == expected
            assert halves.build() == expected
