"""Hostile input for the record-batch reader: only KafkaProtocolError, bounded memory.

Structure-aware mutation of valid batches (truncation at every offset, every
single-bit flip, hostile values in every length/count slot, lying record
counts) plus random bytes, following the project's fuzzing practice.
"""

from __future__ import annotations

import gc
import struct
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol._errors_base import CorruptRecordError, KafkaProtocolError
from protocol.records import Codec, NewRecord, build_batch, read_batches

HOSTILE_INT32 = [-(1 << 31), -2, -1, 0, 1, 48, 49, 0x7FFFFFFF]

SAMPLE_RECORDS = [
    NewRecord(1_700_000_000_000, b"key-1", b"value-1", [("h1", b"x"), ("h2", None)]),
    NewRecord(1_700_000_000_005, None, b"v" * 70, []),
    NewRecord(1_699_999_999_000, b"k" * 130, None, [("é", b"")]),
]


def sample(codec: Codec = Codec.NONE) -> bytes:
    return build_batch(SAMPLE_RECORDS, codec=codec, base_offset=10, producer_id=3, base_sequence=1)


def consume(data: bytes, verify_crc: bool = True) -> int:
    """Read everything; return the number of records decoded."""
    n = 0
    for batch in read_batches(data, verify_crc=verify_crc, max_decompressed_size=1 << 20):
        n += len(batch.records())
        if batch.is_control:
            batch.control_records()
    return n


def consume_checked(data: bytes, verify_crc: bool = True) -> None:
    try:
        consume(data, verify_crc)
    except KafkaProtocolError:
        pass


def refresh_crc(buf: bytearray) -> bytes:
    struct.pack_into(">I", buf, 17, crc32c(bytes(buf[21:])))
    return bytes(buf)


# -- truncation ------------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(Codec))
def test_truncated_buffer_is_a_partial_tail(codec: Codec) -> None:
    data = sample(codec)
    for cut in range(len(data)):
        assert list(read_batches(data[:cut])) == []
    assert consume(data) == 3


@pytest.mark.parametrize("codec", list(Codec))
def test_truncated_batch_with_consistent_length_is_corrupt(codec: Codec) -> None:
    """A batch that is complete by its own length but lost record bytes."""
    data = sample(codec)
    for size in range(12, len(data)):
        buf = bytearray(data[:size])
        struct.pack_into(">i", buf, 8, size - 12)
        if size >= 61:
            refresh_crc(buf)
        with pytest.raises(KafkaProtocolError):
            consume(bytes(buf))


def test_length_below_header_is_corrupt() -> None:
    data = sample()
    for length in (-(1 << 31), -1, 0, 13, 14, 48):
        buf = bytearray(data)
        struct.pack_into(">i", buf, 8, length)
        with pytest.raises(CorruptRecordError):
            list(read_batches(bytes(buf)))


# -- bit flips -------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.GZIP, Codec.ZSTD])
@pytest.mark.parametrize("verify_crc", [True, False])
def test_every_single_bit_flip(codec: Codec, verify_crc: bool) -> None:
    data = sample(codec)
    clean = 0
    for i in range(len(data)):
        for bit in range(8):
            buf = bytearray(data)
            buf[i] ^= 1 << bit
            try:
                consume(bytes(buf), verify_crc)
                clean += 1
            except KafkaProtocolError:
                pass
    if verify_crc:
        # Only flips outside the CRC'd range (offset, epoch, length) can pass.
        assert clean <= 8 * 21


def test_bit_flips_with_fixed_crc_reach_the_record_decoder() -> None:
    data = sample()
    for i in range(61, len(data)):
        for bit in range(8):
            buf = bytearray(data)
            buf[i] ^= 1 << bit
            consume_checked(refresh_crc(buf))


# -- hostile values in length / count slots ----------------------------------------------


def _varint_slots(data: bytes) -> Iterator[int]:
    """Start positions of every varint in the (uncompressed) records section."""
    pos = 61
    while pos < len(data):
        yield pos
        while data[pos] & 0x80:
            pos += 1
        pos += 1


@pytest.mark.parametrize("value", HOSTILE_INT32)
def test_hostile_record_count(value: int) -> None:
    for codec in (Codec.NONE, Codec.LZ4):
        buf = bytearray(sample(codec))
        struct.pack_into(">i", buf, 57, value)
        with pytest.raises(CorruptRecordError):
            consume(refresh_crc(buf))


@pytest.mark.parametrize("delta", [-1, 1])
def test_record_count_off_by_one(delta: int) -> None:
    for codec in list(Codec):
        buf = bytearray(sample(codec))
        struct.pack_into(">i", buf, 57, 3 + delta)
        with pytest.raises(CorruptRecordError):
            consume(refresh_crc(buf))


def test_huge_record_count_in_tiny_batch_is_bounded() -> None:
    buf = bytearray(build_batch([(1, None, None)]))
    struct.pack_into(">i", buf, 57, 1 << 20)
    data = refresh_crc(buf)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError):
            consume(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize(
    "replacement",
    [b"\x01", b"\x03", b"\x7f", b"\xfe\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff", b"\x80"],
)
def test_hostile_varints_in_every_slot(replacement: bytes) -> None:
    """Overwrite each varint with -1, -2, a huge value, an overlong varint, a dangling byte."""
    data = sample()
    for slot in _varint_slots(data):
        end = slot
        while data[end] & 0x80:
            end += 1
        mutated = bytearray(data[:slot] + replacement + data[end + 1 :])
        struct.pack_into(">i", mutated, 8, len(mutated) - 12)
        consume_checked(refresh_crc(mutated))


# -- random input -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.binary(max_size=400))
def test_random_bytes(junk: bytes) -> None:
    # "No hang" is measured in CPU time with the collector off: wall time would also count
    # the scheduler handing the core to Tansu or another job (CI runs on 2 busy cores),
    # and a full collection of the test process's heap is not the decoder's work.
    collecting = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        started = time.process_time()
        consume_checked(junk)
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if collecting:
            gc.enable()
    assert elapsed < 0.1
    assert peak < 64 * 1024 + 4 * len(junk)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), codec=st.sampled_from(list(Codec)))
def test_random_splices_of_valid_batches(data: st.DataObject, codec: Codec) -> None:
    valid = sample(codec)
    start = data.draw(st.integers(0, len(valid)))
    stop = data.draw(st.integers(start, len(valid)))
    noise = data.draw(st.binary(max_size=30))
    mutated = bytearray(valid[:start] + noise + valid[stop:])
    if len(mutated) >= 12 and data.draw(st.booleans()):
        struct.pack_into(">i", mutated, 8, len(mutated) - 12)
    if len(mutated) >= 61 and data.draw(st.booleans()):
        refresh_crc(mutated)
    consume_checked(bytes(mutated) + valid, verify_crc=data.draw(st.booleans()))


def test_valid_batch_followed_by_garbage_tail() -> None:
    data = sample()
    assert consume(data + b"\x00" * 11) == 3  # shorter than an entry header: partial tail
    with pytest.raises(CorruptRecordError):
        consume(data + b"\x00" * 12)  # a zero length is no batch at all
