"""Pure fetcher tests: parsing fetched partitions into records, no I/O."""

from __future__ import annotations

import pytest

from kclient.config import ConsumerConfig
from kclient.consumer.fetch_session import FetchPartitionData, FetchSessionHandler
from kclient.consumer.fetcher import (
    CompletedFetch,
    CorruptBatchError,
    FetchBuffer,
    FetchContext,
    complete_batches_end,
    handle_fetch_response,
    plan_fetches,
)
from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState
from kclient.structs import TopicPartition
from protocol.errors import OffsetOutOfRangeError
from protocol.messages.fetch import (
    AbortedTransaction,
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from protocol.records import NewRecord, build_batch, build_control_batch

TP = TopicPartition("t", 0)
CONFIG = ConsumerConfig(bootstrap_servers="127.0.0.1:9")


def data_batch(base: int, n: int, *, pid: int = -1, txn: bool = False) -> bytes:
    records = [
        NewRecord(1000 + base + i, f"k{base + i}".encode(), f"v{base + i}".encode(), [("h", b"x")])
        for i in range(n)
    ]
    return build_batch(
        records, base_offset=base, producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
        base_sequence=0 if pid >= 0 else -1, is_transactional=txn,
    )  # fmt: skip


def marker(base: int, pid: int, *, commit: bool) -> bytes:
    return build_control_batch(
        commit=commit, producer_id=pid, producer_epoch=0, coordinator_epoch=0,
        timestamp=5, base_offset=base,
    )  # fmt: skip


def subs_at(
    offset: int, reset: OffsetResetStrategy = OffsetResetStrategy.EARLIEST
) -> SubscriptionState:
    subs = SubscriptionState(reset)
    subs.assign_from_user([TP])
    subs.seek(TP, offset)
    return subs


def buffer_with(
    subs: SubscriptionState, data: bytes, aborted: list[tuple[int, int]] | None = None
) -> FetchBuffer:
    end = complete_batches_end(data)
    assert end is not None
    buf = FetchBuffer(1 << 20)
    buf.add(
        CompletedFetch(TP, subs.state(TP).epoch, subs.state(TP).position or 0, data, end, aborted)
    )
    return buf


def offsets(buf: FetchBuffer, subs: SubscriptionState, n: int = 1000) -> list[int]:
    return [r.offset for r in buf.drain(subs, n).get(TP, [])]


def test_records_keep_fields_and_positions_advance() -> None:
    subs = subs_at(0)
    buf = buffer_with(subs, data_batch(0, 3) + data_batch(3, 2))
    got = buf.drain(subs, 4)[TP]
    assert [r.offset for r in got] == [0, 1, 2, 3]
    assert (got[1].key, got[1].value, list(got[1].headers), got[1].timestamp) == (
        b"k1", b"v1", [("h", b"x")], 1001,
    )  # fmt: skip
    assert got[0].serialized_value_size == 2
    assert subs.position(TP) == 4
    assert offsets(buf, subs) == [4]
    assert subs.position(TP) == 5


def test_records_before_the_position_are_skipped() -> None:
    subs = subs_at(2)
    buf = buffer_with(subs, data_batch(0, 5))
    assert offsets(buf, subs) == [2, 3, 4]


def test_control_batches_skipped_and_position_moves_past_them() -> None:
    subs = subs_at(0)
    data = data_batch(0, 2, pid=7, txn=True) + marker(2, 7, commit=True)
    buf = buffer_with(subs, data)
    assert offsets(buf, subs) == [0, 1]
    assert offsets(buf, subs) == []
    assert subs.position(TP) == 3  # past the marker, so it is not fetched again


def test_read_committed_drops_aborted_transactions() -> None:
    subs = subs_at(0)
    data = (
        data_batch(0, 2, pid=1, txn=True)  # aborted
        + data_batch(2, 2, pid=2, txn=True)  # committed
        + marker(4, 1, commit=False)
        + marker(5, 2, commit=True)
        + data_batch(6, 1, pid=1, txn=True)  # pid 1 again, a later committed txn
        + marker(7, 1, commit=True)
        + data_batch(8, 1)  # plain
    )
    buf = buffer_with(subs, data, aborted=[(0, 1)])
    assert offsets(buf, subs) == [2, 3, 6, 8]
    assert subs.position(TP) == 9


def test_partial_trailing_batch_is_ignored() -> None:
    subs = subs_at(0)
    whole = data_batch(0, 2)
    partial = data_batch(2, 3)
    data = whole + partial[: len(partial) - 5]
    assert complete_batches_end(data) == 2
    buf = buffer_with(subs, data)
    assert offsets(buf, subs) == [0, 1]
    assert subs.position(TP) == 2


def test_corrupt_batch_raises_at_same_position_until_seek() -> None:
    subs = subs_at(0)
    bad = bytearray(data_batch(2, 2))
    bad[-1] ^= 0xFF  # CRC no longer matches
    buf = buffer_with(subs, data_batch(0, 2) + bytes(bad) + data_batch(4, 1))
    assert offsets(buf, subs) == [0, 1]  # records before the corrupt batch still come out
    for _ in range(3):
        with pytest.raises(CorruptBatchError) as info:
            buf.drain(subs, 10)
        assert info.value.offset == 2 and info.value.topic_partition == TP
        assert subs.position(TP) == 2
    subs.seek(TP, 4)
    assert offsets(buf, subs) == []  # stale data dropped after the seek
    assert buf.buffered_partitions() == frozenset()


def test_stale_and_paused_data() -> None:
    subs = subs_at(0)
    buf = buffer_with(subs, data_batch(0, 3))
    subs.pause([TP])
    assert buf.drain(subs, 10) == {}
    assert not buf.has_deliverable(subs)
    subs.resume([TP])
    assert offsets(buf, subs, 1) == [0]
    subs.seek(TP, 0)  # new epoch: the rest of the buffered fetch is stale
    assert offsets(buf, subs) == []


def response_for(
    code: int, records: bytes = b"", aborted: list[AbortedTransaction] | None = None
) -> FetchResponse:
    part = PartitionData(partition_index=0, error_code=code, high_watermark=10, records=records,
                         aborted_transactions=aborted or [])  # fmt: skip
    return FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=[part])])


def fetch_round(subs: SubscriptionState, buf: FetchBuffer, response: FetchResponse) -> None:
    session = FetchSessionHandler(1, use_sessions=False)
    per_node, leaderless = plan_fetches(subs, buf, lambda tp: (1, 0), {}, 1 << 20)
    assert not leaderless
    wanted: dict[TopicPartition, FetchPartitionData] = per_node[1]
    ctx = FetchContext(1, session.build(wanted), {TP: subs.state(TP).epoch},
                       {tp: d.fetch_offset for tp, d in wanted.items()})  # fmt: skip
    outcome = handle_fetch_response(ctx, response, session, subs, CONFIG)
    for entry in outcome.completed:
        buf.add(entry)


def test_response_advances_fetch_offset_and_bounds_prefetch() -> None:
    subs = subs_at(0)
    buf = FetchBuffer(1 << 20)
    fetch_round(subs, buf, response_for(0, data_batch(0, 3)))
    assert subs.state(TP).fetch_offset == 3 and subs.position(TP) == 0
    fetch_round(subs, buf, response_for(0, data_batch(3, 3)))
    assert not buf.can_fetch(TP)  # two responses queued: no more prefetch
    assert offsets(buf, subs) == [0, 1, 2, 3, 4, 5]


def test_offset_out_of_range_resets_after_earlier_records() -> None:
    subs = subs_at(0)
    buf = FetchBuffer(1 << 20)
    fetch_round(subs, buf, response_for(0, data_batch(0, 2)))
    fetch_round(subs, buf, response_for(1))
    assert offsets(buf, subs) == [0, 1]  # earlier records are not discarded
    assert offsets(buf, subs) == []
    assert subs.partitions_needing_reset(0) == {TP: OffsetResetStrategy.EARLIEST}


def test_offset_out_of_range_raises_with_reset_none() -> None:
    subs = subs_at(5, OffsetResetStrategy.NONE)
    buf = FetchBuffer(1 << 20)
    fetch_round(subs, buf, response_for(1))
    for _ in range(2):
        with pytest.raises(OffsetOutOfRangeError):
            buf.drain(subs, 10)
    subs.seek(TP, 0)
    assert buf.drain(subs, 10) == {}


# -- the decode fast path (runs of same-shaped records, GC pause) ------------------------


def uniform_batch(base: int, n: int, *, epoch: int = 4) -> bytes:
    """No headers, equal sizes: decoded column-wise by records_into."""
    return build_batch(
        [(1000 + i // 10, None, b"%06d" % (base + i)) for i in range(n)],
        base_offset=base, partition_leader_epoch=epoch,
    )  # fmt: skip


def test_uniform_batches_decode_like_the_reference() -> None:
    import gc

    from protocol.records import read_batches

    data = uniform_batch(0, 150) + uniform_batch(150, 100)
    subs = subs_at(37)  # the position falls inside the first batch
    buf = buffer_with(subs, data)
    got = buf.drain(subs, 1000)[TP]
    want = [r for b in read_batches(data) for r in b.records() if r.offset >= 37]
    assert [(r.offset, r.timestamp, r.key, r.value, tuple(r.headers)) for r in got] == [
        (r.offset, r.timestamp, r.key, r.value, tuple(r.headers)) for r in want
    ]
    assert {(r.topic, r.partition, r.leader_epoch, r.timestamp_type) for r in got} == {
        ("t", 0, 4, 0)
    }
    assert {(r.serialized_key_size, r.serialized_value_size) for r in got} == {(-1, 6)}
    assert subs.position(TP) == 250 and gc.isenabled()
    # Deserializers go through a wrapper factory; an application that disabled the
    # cyclic GC keeps it disabled.
    gc.disable()
    try:
        subs = subs_at(0)
        buf = buffer_with(subs, uniform_batch(0, 40))
        got = buf.drain(subs, 1000, key_deserializer=repr, value_deserializer=bytes.decode)[TP]
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert [(r.key, r.value) for r in got] == [("None", f"{i:06d}") for i in range(40)]
    assert got[5].serialized_value_size == 6
