"""RecordsWriter.append_value (the send fast path's encoder) writes append()'s bytes."""

from __future__ import annotations

import random

import pytest

from protocol.records import read_batches
from protocol.records.writer import RecordsWriter

BASE_TS = 1_700_000_000_000


def _pair(stamps: list[int], values: list[bytes]) -> tuple[RecordsWriter, RecordsWriter]:
    fast, general = RecordsWriter(), RecordsWriter()
    for ts, value in zip(stamps, values, strict=True):
        fast.append_value(ts, value)
        general.append(ts, None, value, ())
    return fast, general


@pytest.mark.parametrize("count", [1, 63, 64, 65, 8191, 8193, 16_383, 16_385])
def test_same_bytes_across_offset_delta_widths(count: int) -> None:
    # Offset deltas change varint width at 64 and 8192 and leave the cache at 16384.
    values = [b"v" * (i % 7) for i in range(count)]
    fast, general = _pair([BASE_TS] * count, values)
    assert fast.count == general.count == count
    assert fast.buf == general.buf
    assert fast.finish(producer_id=5, base_sequence=3) == general.finish(
        producer_id=5, base_sequence=3
    )


def test_same_bytes_for_odd_timestamps_and_lengths() -> None:
    rng = random.Random(11)
    # Deltas inside the cache, negative (a clock step back), beyond the cache; empty
    # values and values whose length varint is two or three bytes wide.
    stamps = [BASE_TS + rng.choice([0, 1, 5, 16_383, 16_384, 10**7, -3]) for _ in range(300)]
    values = [bytes(rng.choice([0, 1, 63, 64, 200, 8200, 20_000])) for _ in range(300)]
    fast, general = _pair(stamps, values)
    assert fast.buf == general.buf
    assert (fast.base_timestamp, fast.max_timestamp) == (
        general.base_timestamp,
        general.max_timestamp,
    )
    [batch] = list(read_batches(fast.finish()))
    decoded = list(batch.records())  # type: ignore[union-attr]
    assert [r.value for r in decoded] == values
    assert [r.key for r in decoded] == [None] * len(values)
    assert [r.timestamp for r in decoded] == stamps


def test_mixes_with_append_in_one_batch() -> None:
    writer, reference = RecordsWriter(), RecordsWriter()
    for i in range(100):
        if i % 3:
            writer.append_value(BASE_TS + i, b"x" * i)
        else:
            writer.append(BASE_TS + i, b"k", b"x" * i, [("h", b"1")])
        reference.append(BASE_TS + i, None if i % 3 else b"k", b"x" * i,
                         () if i % 3 else [("h", b"1")])  # fmt: skip
    assert writer.buf == reference.buf
