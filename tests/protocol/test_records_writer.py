"""RecordsWriter: the producer's append-time encoder writes BatchBuilder's exact bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol._errors_base import EncodeError
from protocol.compression import Codec
from protocol.records import BatchBuilder, RecordBatch, read_batches
from protocol.records.writer import RECORD_BATCH_OVERHEAD, RecordsWriter

Rec = tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]

_records = st.lists(
    st.tuples(
        st.integers(0, 40_000),  # timestamp: deltas from small to past the varint cache
        st.none() | st.binary(max_size=40),
        st.none() | st.binary(max_size=300),
        st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=2).map(
            tuple
        ),
    ),
    min_size=1,
    max_size=80,
)


def _reference(records: list[Rec], **header: int | bool) -> bytes:
    builder = BatchBuilder(**header)  # type: ignore[arg-type]
    for rec in records:
        builder.append(*rec)
    return builder.build()


def _written(records: list[Rec], **header: int | bool) -> bytes:
    writer = RecordsWriter()
    for rec in records:
        writer.append(*rec)
    assert writer.count == len(records)
    return writer.finish(**header)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(_records)
def test_append_writes_the_builders_bytes(records: list[Rec]) -> None:
    header = {"producer_id": 7, "producer_epoch": 2, "base_sequence": 40}
    assert _written(records, **header) == _reference(records, **header)


def test_shapes_for_every_offset_delta_width_and_keyed_records() -> None:
    # 9,000 records cross the 1- and 2-byte offset delta widths; keys, null keys,
    # empty values, timestamps going back and far forward all mixed in.
    records: list[Rec] = []
    for i in range(9000):
        key = None if i % 3 else f"k{i % 7}".encode()
        ts = 1000 + (i % 5) - (3 if i % 11 == 0 else 0) + (50_000 if i % 997 == 0 else 0)
        records.append((ts, key, b"v" * (i % 4) * 30, ()))
    assert _written(records) == _reference(records)


def test_append_returns_the_encoded_size() -> None:
    writer = RecordsWriter()
    sizes = [writer.append(5, None, b"abc", ()), writer.append(6, b"k", b"", [("h", None)])]
    assert sum(sizes) == writer.records_size == len(writer.buf) - RECORD_BATCH_OVERHEAD


@pytest.mark.parametrize("count", [1, 63, 64, 70, 8191, 8193])
@pytest.mark.parametrize("start", [0, 5, 62])
def test_extend_values_equals_appends(count: int, start: int) -> None:
    values = [bytes([i % 251]) * 100 for i in range(count)]
    bulk, single = RecordsWriter(), RecordsWriter()
    for writer in (bulk, single):
        for i in range(start):
            writer.append(1000 + i % 2, None, b"x" * 100, ())
    assert bulk.extend_values(1001, values)
    for value in values:
        single.append(1001, None, value, ())
    assert (bulk.buf, bulk.count, bulk.max_timestamp) == (single.buf, single.count, 1001)


@pytest.mark.parametrize(("start", "n"), [(0, 16_384), (8_190, 4), (63, 2), (62, 8_200)])
def test_extend_values_across_offset_delta_widths(start: int, n: int) -> None:
    # Offset deltas take 1 byte below 64, 2 below 8192, 3 up to the cache's 16384.
    values = [bytes([i % 251]) * 3 for i in range(n)]
    bulk, single = RecordsWriter(), RecordsWriter()
    for writer in (bulk, single):
        for _ in range(start):
            writer.append(1000, None, b"abc", ())
    assert bulk.extend_values(1000, values)
    for value in values:
        single.append(1000, None, value, ())
    assert bulk.buf == single.buf and bulk.count == start + n


def test_extend_values_same_bytes_whatever_the_head_cache_holds() -> None:
    # Many (timestamp delta, value length) shapes and long runs overflow the head
    # cache, which is then cleared and rebuilt: the bytes must not change.
    rng = random.Random(5)
    for _ in range(40):
        vlen, delta, run = rng.randrange(0, 300), rng.randrange(0, 16_384), rng.randrange(1, 3000)
        values = [bytes([rng.randrange(256)]) * vlen for _ in range(run)]
        bulk, single = RecordsWriter(), RecordsWriter()
        for writer in (bulk, single):
            writer.append(5000, None, b"first", ())
        assert bulk.extend_values(5000 + delta, values)
        for value in values:
            single.append(5000 + delta, None, value, ())
        assert bulk.buf == single.buf


def test_extend_values_declines_runs_it_cannot_do_in_one_go() -> None:
    writer = RecordsWriter()
    assert not writer.extend_values(1000, [b"a", b"bb"])  # two value lengths
    assert not writer.extend_values(1000, [])
    writer.append(50_000, None, b"a", ())
    assert not writer.extend_values(1000, [b"a"])  # negative timestamp delta
    assert writer.count == 1


@pytest.mark.parametrize("codec", list(Codec))
def test_finish_compresses_and_restamps(codec: Codec) -> None:
    records: list[Rec] = [(1000 + i, None, b"payload %d" % i, ()) for i in range(50)]
    writer = RecordsWriter()
    for rec in records:
        writer.append(*rec)
    first = writer.finish(codec=codec, producer_id=1, producer_epoch=0, base_sequence=0)
    again = writer.finish(codec=codec, producer_id=1, producer_epoch=1, base_sequence=9,
                          is_transactional=True)  # fmt: skip
    for data, epoch, seq in ((first, 0, 0), (again, 1, 9)):
        (batch,) = read_batches(data)
        assert isinstance(batch, RecordBatch)
        assert (batch.codec, batch.producer_epoch, batch.base_sequence) == (codec, epoch, seq)
        got = [(r.timestamp, r.key, r.value) for r in batch.records()]
        assert got == [(ts, k, v) for ts, k, v, _ in records]
    (restamped,) = read_batches(again)
    assert isinstance(restamped, RecordBatch) and restamped.is_transactional


def test_finish_refuses_an_empty_batch() -> None:
    with pytest.raises(EncodeError):
        RecordsWriter().finish()
