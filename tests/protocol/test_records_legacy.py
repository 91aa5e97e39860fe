"""Legacy (magic 0/1) message sets, built by hand from the documented layout."""

from __future__ import annotations

import struct
import zlib

import pytest

from protocol._errors_base import CorruptRecordError, DecompressionLimitError, KafkaProtocolError
from protocol.compression import Codec, compress
from protocol.records import LegacyBatch, Record, TimestampType, build_batch, read_batches


def _bytes_field(data: bytes | None) -> bytes:
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


def message(
    offset: int,
    key: bytes | None,
    value: bytes | None,
    *,
    magic: int = 1,
    attributes: int = 0,
    timestamp: int = 0,
    crc: int | None = None,
) -> bytes:
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    body += _bytes_field(key) + _bytes_field(value)
    entry = struct.pack(">I", zlib.crc32(body) if crc is None else crc) + body
    return struct.pack(">qi", offset, len(entry)) + entry


def wrapper(
    offset: int,
    inner: bytes,
    codec: Codec,
    *,
    magic: int = 1,
    log_append: bool = False,
    timestamp: int = 0,
) -> bytes:
    attrs = codec | (0x08 if log_append else 0)
    return message(
        offset, None, compress(codec, inner), magic=magic, attributes=attrs, timestamp=timestamp
    )


def batches(data: bytes) -> list[LegacyBatch]:
    out = list(read_batches(data))
    assert all(isinstance(b, LegacyBatch) for b in out)
    return out  # type: ignore[return-value]


def test_uncompressed_v0_and_v1() -> None:
    data = message(5, b"k", b"v", magic=0) + message(6, None, None, magic=1, timestamp=77)
    first, second = batches(data)
    assert first.records() == [Record(5, -1, b"k", b"v", ())]
    assert first.timestamp_type == TimestampType.NO_TIMESTAMP_TYPE
    assert second.records() == [Record(6, 77, None, None, ())]
    assert second.timestamp_type == TimestampType.CREATE_TIME
    assert (first.base_offset, first.last_offset, second.next_offset) == (5, 5, 7)
    assert first.producer_id == -1 and not first.is_transactional and not first.is_control
    assert first.control_records() == []
    assert first.size_in_bytes == len(first.raw())
    assert "magic=0" in repr(first)


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.SNAPPY, Codec.LZ4])
def test_magic1_relative_offsets_and_log_append_time(codec: Codec) -> None:
    inner = b"".join(message(i, None, b"v%d" % i, timestamp=10 + i) for i in range(3))
    (batch,) = batches(wrapper(502, inner, codec, log_append=True, timestamp=999))
    assert [(r.offset, r.timestamp) for r in batch] == [(500, 999), (501, 999), (502, 999)]
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert (batch.base_offset, batch.last_offset, batch.record_count) == (500, 502, 3)
    assert batch.codec == codec
    (create,) = batches(wrapper(502, inner, codec))
    assert [r.timestamp for r in create] == [10, 11, 12]


def test_magic0_inner_offsets_are_absolute() -> None:
    inner = b"".join(message(40 + i, None, b"x", magic=0) for i in range(3))
    (batch,) = batches(wrapper(42, inner, Codec.GZIP, magic=0))
    assert [r.offset for r in batch] == [40, 41, 42]


def test_legacy_and_v2_mixed() -> None:
    data = message(0, None, b"old", magic=0) + build_batch([(5, None, b"new")], base_offset=1)
    got = [(r.offset, r.value) for b in read_batches(data) for r in b.records()]
    assert got == [(0, b"old"), (1, b"new")]


def test_crc_mismatch() -> None:
    data = message(0, b"k", b"v", crc=12345)
    with pytest.raises(CorruptRecordError, match="CRC"):
        batches(data)
    (batch,) = list(read_batches(data, verify_crc=False))
    assert not batch.crc_ok()
    assert batch.records()[0].value == b"v"


def test_inner_crc_mismatch() -> None:
    inner = message(0, None, b"x", crc=1)
    (batch,) = batches(wrapper(0, inner, Codec.GZIP))
    with pytest.raises(CorruptRecordError, match="CRC"):
        batch.records()
    (unchecked,) = list(read_batches(wrapper(0, inner, Codec.GZIP), verify_crc=False))
    assert unchecked.records()[0].value == b"x"


@pytest.mark.parametrize(
    "inner",
    [
        message(0, None, b"x", attributes=Codec.GZIP),  # nested compression
        message(0, None, b"x")[:-1],  # truncated inner message
        b"",  # empty message set
        b"\x00" * 11,  # shorter than an entry header
        struct.pack(">qi", 0, 5) + b"\x00" * 5,  # inner size below the header
        message(0, None, b"x", magic=3),  # unknown inner magic
    ],
)
def test_bad_inner_message_sets(inner: bytes) -> None:
    (batch,) = list(read_batches(wrapper(0, inner, Codec.GZIP), verify_crc=False))
    with pytest.raises(CorruptRecordError):
        batch.records()


def test_compressed_wrapper_without_value() -> None:
    (batch,) = batches(message(0, None, None, attributes=Codec.GZIP))
    with pytest.raises(CorruptRecordError):
        batch.records()


@pytest.mark.parametrize(
    "entry",
    [
        # size below the v1 header
        struct.pack(">qiIbb", 0, 14, 0, 1, 0) + b"\x00" * 8,
        # key length runs past the message
        struct.pack(">qiIbbii", 0, 14, 0, 0, 0, 100, -1),
        # negative value length other than -1
        struct.pack(">qiIbbii", 0, 14, 0, 0, 0, -1, -5),
        # bytes left after the value
        struct.pack(">qiIbbii", 0, 16, 0, 0, 0, -1, -1) + b"\x00\x00",
    ],
)
def test_malformed_top_level_messages(entry: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        list(read_batches(entry, verify_crc=False))


def test_legacy_bomb_is_capped() -> None:
    inner = message(0, None, bytes(4 << 20))
    (batch,) = list(read_batches(wrapper(0, inner, Codec.GZIP), max_decompressed_size=1 << 20))
    with pytest.raises(DecompressionLimitError):
        batch.records()


def test_every_bit_flip_raises_only_protocol_errors() -> None:
    inner = b"".join(message(i, b"k", b"v%d" % i) for i in range(3))
    data = wrapper(2, inner, Codec.GZIP) + message(3, None, b"tail", magic=0)
    for i in range(len(data)):
        for bit in range(8):
            buf = bytearray(data)
            buf[i] ^= 1 << bit
            for verify in (True, False):
                try:
                    for batch in read_batches(bytes(buf), verify_crc=verify):
                        batch.records()
                        _ = batch.next_offset
                except KafkaProtocolError:
                    pass
