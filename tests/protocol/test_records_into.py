"""decode_records_into / RecordBatch.records_into (the consumer's fast path) against
decode_records / RecordBatch.records (the reference): same records, same errors.

The fast path decodes runs of same-shaped records column-wise, so the inputs here are
built to have long runs that break in every way a run can break (size, key/value
length, header, delta width, non-consecutive offsets, 3-byte deltas), and the hostile
cases mutate uniform sections so the mutation lands inside a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol._errors_base import CorruptRecordError
from protocol.records import Codec, RecordBatch, build_batch, read_batches
from protocol.records.record import decode_records, decode_records_into, encode_varint

Row = tuple[Any, ...]


def make(*fields: Any) -> Row:
    return fields


def reference(buf: bytes, count: int, base_offset: int = 100, base_ts: int = 5000) -> list[Row]:
    decoded = decode_records(buf, 0, len(buf), count, base_offset, base_ts)
    return [
        ("t", 3, o, t, 0, k, v, tuple(h), 7, -1 if k is None else len(k),
         -1 if v is None else len(v))
        for o, t, k, v, h in decoded
    ]  # fmt: skip


def fast(buf: bytes, count: int, base_offset: int = 100, base_ts: int = 5000) -> list[Row]:
    out: list[Row] = []
    decode_records_into(
        out, make, buf, 0, len(buf), count, base_offset, base_ts, 0, 7, None, ("t", 3)
    )
    return [(*r[:7], tuple(r[7]), *r[8:]) for r in out]


def outcome(fn: Any, buf: bytes, count: int) -> list[Row] | str:
    try:
        return list(fn(buf, count))
    except CorruptRecordError:
        return "corrupt"


def encode_record(
    ts_delta: int,
    offset_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
) -> bytes:
    body = bytearray(b"\x00")
    body += encode_varint(ts_delta) + encode_varint(offset_delta)
    body += encode_varint(-1) if key is None else encode_varint(len(key)) + key
    body += encode_varint(-1) if value is None else encode_varint(len(value)) + value
    body += encode_varint(len(headers))
    for hk, hv in headers:
        body += encode_varint(len(hk.encode())) + hk.encode()
        body += encode_varint(-1) if hv is None else encode_varint(len(hv)) + hv
    return encode_varint(len(body)) + bytes(body)


def section(records: Sequence[tuple[Any, ...]]) -> bytes:
    return b"".join(encode_record(*r) for r in records)


def uniform(n: int, value_size: int = 10, key: bytes | None = None) -> list[tuple[Any, ...]]:
    return [(i // 7, i, key, bytes([i % 251]) * value_size) for i in range(n)]


def check(records: Sequence[tuple[Any, ...]]) -> None:
    buf = section(records)
    want = reference(buf, len(records))
    assert fast(buf, len(records)) == want
    assert [r[2] for r in want] == [100 + r[1] for r in records]


def test_uniform_run_matches() -> None:
    check(uniform(200))


def test_runs_across_delta_widths_and_three_byte_offsets() -> None:
    # Offset deltas cross 64 (1 -> 2 bytes) and 8192 (2 -> 3 bytes) and a 3-byte block.
    check(uniform(8192 + 8192 + 100, value_size=3))


@pytest.mark.parametrize(
    "change",
    [
        lambda i, r: (r[0], r[1], r[2], r[3] + b"x") if i == 30 else r,  # one longer value
        lambda i, r: (r[0], r[1], b"k", r[3]) if i == 30 else r,  # one key
        lambda i, r: (*r, [("h", None)]) if i == 30 else r,  # one header
        lambda i, r: (r[0], r[1], r[2], None) if i == 30 else r,  # one null value
        lambda i, r: (r[0] + 100, *r[1:]) if i == 30 else r,  # timestamp delta widens
        lambda i, r: (-r[0], *r[1:]),  # negative timestamp deltas
        lambda i, r: (r[0], r[1] * 2, *r[2:]),  # gaps in offsets (compaction)
        lambda i, r: (r[0], r[1] + 70, *r[2:]),  # 2-byte deltas not starting at 64
        lambda i, r: (r[0], r[1] + 8192 * 3, *r[2:]),  # 3-byte deltas, another block
        lambda i, r: (r[0], 9000 + (i * 2 if i > 40 else i), *r[2:]),  # 3-byte, gap
        lambda i, r: (r[0], 5, *r[2:]),  # every record claims the same offset
        lambda i, r: (1 << 40, *r[1:]),  # huge timestamp deltas (scalar only)
    ],
)
def test_run_breakers(change: Any) -> None:
    check([change(i, r) for i, r in enumerate(uniform(120))])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.integers(1, 40),  # how many records share this shape
            st.sampled_from([0, 1, -1, 63, 64, 8191, 8192, 1 << 20]),  # timestamp delta base
            st.sampled_from([None, b"", b"k", b"k" * 70]),
            st.sampled_from([None, b"", b"v" * 5, b"v" * 63, b"v" * 64, b"v" * 300]),
            st.sampled_from([(), (("a", b"1"),), (("b", None),)]),
            st.sampled_from([1, 1, 1, 2, 0]),  # offset step
        ),
        max_size=12,
    )
)
def test_random_shapes(data: list[tuple[Any, ...]]) -> None:
    records = []
    offset = 0
    for n, ts, key, value, headers, step in data:
        for j in range(n):
            records.append((ts + j % 3, offset, key, value, list(headers)))
            offset += step
    check(records)


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.GZIP])
def test_batch_records_into_matches_records(codec: Codec) -> None:
    rows = [(1_700_000_000_000 + i // 10, None if i % 50 else b"k", b"v" * 100) for i in range(500)]
    data = build_batch(rows, codec=codec, base_offset=42, partition_leader_epoch=9)
    [batch] = list(read_batches(data))
    assert isinstance(batch, RecordBatch)
    out: list[Row] = []
    batch.records_into(out, make, ("t", 1))
    assert out == [
        ("t", 1, r.offset, r.timestamp, 0, r.key, r.value, r.headers, 9,
         -1 if r.key is None else len(r.key), len(r.value or b""))
        for r in batch.records()
    ]  # fmt: skip


def test_log_append_time_batch() -> None:
    from protocol.records import rewrite_batch_header

    data = rewrite_batch_header(build_batch([(i, None, b"v") for i in range(50)]), timestamp_type=1,
                                max_timestamp=777)  # fmt: skip
    [batch] = list(read_batches(data))
    assert isinstance(batch, RecordBatch)
    out: list[Row] = []
    batch.records_into(out, make)
    assert {r[1] for r in out} == {777} and {r[2] for r in out} == {1}


# -- hostile input: mutations inside runs ---------------------------------------------------


def test_every_bit_flip_inside_a_run() -> None:
    records = uniform(24, value_size=2)
    buf = section(records)
    for i in range(len(buf)):
        for bit in range(8):
            mutated = bytearray(buf)
            mutated[i] ^= 1 << bit
            m = bytes(mutated)
            assert outcome(fast, m, 24) == outcome(reference, m, 24), (i, bit)


@pytest.mark.parametrize(
    "replacement", [b"\x01", b"\x00", b"\x7f", b"\x80", b"\xff\x7f", b"\x80\x00"]
)
def test_every_byte_replaced_inside_a_run(replacement: bytes) -> None:
    records = uniform(20, value_size=1, key=b"ab")
    buf = section(records)
    for i in range(len(buf)):
        m = buf[:i] + replacement + buf[i + 1 :]
        for count in (19, 20, 21):
            assert outcome(fast, m, count) == outcome(reference, m, count), (i, count)


def test_truncation_and_count_mismatch() -> None:
    buf = section(uniform(40))
    for cut in range(len(buf)):
        for count in (39, 40):
            m = buf[:cut]
            assert outcome(fast, m, count) == outcome(reference, m, count)
    with pytest.raises(CorruptRecordError):
        fast(buf, 41)
    with pytest.raises(CorruptRecordError):
        fast(buf + b"\x00", 40)
