"""RecordAccumulator and ProducerBatch: batching, buffer, ready/drain rules, futures."""

from __future__ import annotations

import random

import anyio
import pytest

from kclient.config import ProducerConfig
from kclient.producer.accumulator import AccumulatorSettings, LeaderFor, RecordAccumulator
from kclient.producer.batch import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    BatchState,
    DeliveryFuture,
    DeliveryState,
    IllegalBatchTransition,
    ProducerBatch,
    estimate_record_size,
    records_encoder,
)
from kclient.producer.delivery import DeliveryFutures
from kclient.producer.idempotence import IdempotenceManager
from protocol.records import Codec, RecordBatch, read_batches
from protocol.records.writer import RecordsWriter

TP0 = ("t", 0)
TP1 = ("t", 1)
VALUE = b"v" * 100
REC = RECORD_OVERHEAD + len(VALUE)


def settings(**overrides: float) -> AccumulatorSettings:
    base: dict[str, float] = {
        "batch_size": BATCH_OVERHEAD + 10 * REC,  # ten records per batch
        "linger_ms": 5,
        "buffer_memory": 1 << 20,
        "delivery_timeout_ms": 1000,
        "retry_backoff_ms": 100,
        "retry_backoff_max_ms": 100,
        "max_in_flight": 5,
    }
    base.update(overrides)
    return AccumulatorSettings(**base)  # type: ignore[arg-type]


def make(**overrides: float) -> RecordAccumulator:
    return RecordAccumulator(settings(**overrides), rng=random.Random(0))


def leaders(mapping: dict[tuple[str, int], int | None]) -> LeaderFor:
    return mapping.get


def put(
    acc: RecordAccumulator, tp: tuple[str, int], n: int, now: float = 0
) -> list[DeliveryFuture]:
    futures = []
    for _ in range(n):
        result = acc.append(tp, 1000, None, VALUE, (), now)
        assert result is not None
        futures.append(result[0])
    return futures


def error(batch: ProducerBatch, state: DeliveryState) -> BaseException:
    return RuntimeError(f"{batch.tp} {state.value}")


ALL_ON_1 = leaders({TP0: 1, TP1: 1})


# -- append and batching -------------------------------------------------------------


def test_settings_from_producer_config() -> None:
    config = ProducerConfig(bootstrap_servers="127.0.0.1:9092", batch_size=1234, linger_ms=7)
    acc = RecordAccumulator(config)
    assert acc.settings.batch_size == 1234
    assert acc.settings.linger_ms == 7
    assert acc.settings.max_in_flight == config.max_in_flight_requests_per_connection


def test_records_fill_batches_of_batch_size() -> None:
    acc = make()
    wakes = []
    for _ in range(25):
        result = acc.append(TP0, 1, None, VALUE, (), 0)
        assert result is not None
        wakes.append(result[1])
        assert result[2] == REC
    assert [b.record_count for b in acc.queued(TP0)] == [10, 10, 5]
    # New batch started (0, 10, 20) or batch became full (9, 19): wake the Sender.
    assert [i for i, w in enumerate(wakes) if w] == [0, 9, 10, 19, 20]
    assert acc.used_bytes == sum(b.size for b in acc.queued(TP0))


def test_record_larger_than_batch_size_gets_its_own_batch() -> None:
    acc = make()
    put(acc, TP0, 2)
    big = acc.append(TP0, 1, None, b"x" * 5000, (), 0)
    assert big is not None
    put(acc, TP0, 1)
    assert [b.record_count for b in acc.queued(TP0)] == [2, 1, 1]
    assert acc.queued(TP0)[1].size > acc.queued(TP0)[1].capacity


def test_size_estimate_counts_key_value_headers() -> None:
    headers = [("h1", b"abc"), ("h2", None)]
    size = estimate_record_size(b"key", b"value", headers)
    assert size == RECORD_OVERHEAD + 3 + 5 + (2 + 6 + 3) + (2 + 6)
    acc = make()
    result = acc.append(TP0, 1, b"key", b"value", headers, 0)
    assert result is not None and result[2] == size
    assert estimate_record_size(None, None, ()) == RECORD_OVERHEAD


def test_buffer_full_refuses_then_space_is_freed_on_completion() -> None:
    acc = make(buffer_memory=BATCH_OVERHEAD + 3 * REC)
    put(acc, TP0, 3)
    assert acc.append(TP0, 1, None, VALUE, (), 0) is None
    freed: list[int] = []
    acc.on_space_freed = lambda: freed.append(acc.used_bytes)
    # Buffer pressure makes everything sendable at once, linger or not.
    assert acc.ready(ALL_ON_1, 0).nodes == {1}
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    assert acc.append(TP0, 1, None, VALUE, (), 0) is None  # still charged while in flight
    acc.complete(batch, 0)
    assert freed == [0] and acc.used_bytes == 0
    assert acc.append(TP0, 1, None, VALUE, (), 0) is not None


def test_record_that_can_never_fit_the_buffer_raises() -> None:
    acc = make(buffer_memory=500)
    with pytest.raises(ValueError, match="never fit"):
        acc.append(TP0, 1, None, b"x" * 1000, (), 0)


# -- ready ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "now", "ready", "next_check"),
    [
        (1, 0, False, 5),  # lingering
        (1, 4, False, 1),
        (1, 5, True, float("inf")),  # linger over
        (10, 0, True, float("inf")),  # full batch
        (11, 0, True, float("inf")),  # a second batch exists
    ],
)
def test_ready_linger_and_full(records: int, now: float, ready: bool, next_check: float) -> None:
    acc = make()
    put(acc, TP0, records)
    result = acc.ready(ALL_ON_1, now)
    assert result.nodes == ({1} if ready else set())
    assert result.next_check_ms == next_check


def test_ready_reports_unknown_leaders() -> None:
    acc = make()
    put(acc, ("other", 3), 1)
    put(acc, TP0, 10)
    result = acc.ready(leaders({TP0: 2}), 0)
    assert result.nodes == {2}
    assert result.unknown_leader_topics == {"other"}


@pytest.mark.parametrize("how", ["flush", "close"])
def test_flush_and_close_skip_linger(how: str) -> None:
    acc = make(linger_ms=10_000)
    put(acc, TP0, 1)
    assert acc.ready(ALL_ON_1, 0).nodes == set()
    if how == "flush":
        waited = acc.begin_flush()
        assert len(waited) == 1
    else:
        acc.close()
    assert acc.ready(ALL_ON_1, 0).nodes == {1}
    if how == "flush":
        acc.end_flush()
        assert acc.ready(ALL_ON_1, 0).nodes == set()


# -- drain ---------------------------------------------------------------------------


def test_drain_one_batch_per_partition_and_respects_request_size() -> None:
    acc = make()
    put(acc, TP0, 20)
    put(acc, TP1, 20)
    drained = acc.drain([1], ALL_ON_1, 1 << 20, 0)
    assert sorted(b.tp for b in drained[1]) == [TP0, TP1]
    batch_size = acc.queued(TP0)[0].size
    # Room for one batch only: the second partition waits for the next request.
    drained = acc.drain([1], ALL_ON_1, batch_size + 10, 0)
    assert len(drained[1]) == 1


def test_drain_always_takes_one_batch_even_if_over_request_size() -> None:
    acc = make()
    put(acc, TP0, 10)
    assert len(acc.drain([1], ALL_ON_1, 10, 0)[1]) == 1


def test_drain_rotates_the_first_partition() -> None:
    acc = make()
    tps = [("t", p) for p in range(4)]
    for tp in tps:
        put(acc, tp, 30)
    firsts = set()
    one_batch = acc.queued(tps[0])[0].size
    for _ in range(4):
        (batch,) = acc.drain([1], lambda tp: 1, one_batch, 0)[1]
        firsts.add(batch.tp)
    assert len(firsts) > 1


def test_drain_only_for_requested_nodes() -> None:
    acc = make()
    put(acc, TP0, 10)
    put(acc, TP1, 10)
    split_leaders = leaders({TP0: 1, TP1: 2})
    assert acc.ready(split_leaders, 0).nodes == {1, 2}
    drained = acc.drain([2], split_leaders, 1 << 20, 0)
    assert list(drained) == [2] and drained[2][0].tp == TP1


def test_max_in_flight_per_partition() -> None:
    acc = make(max_in_flight=2)
    put(acc, TP0, 50)
    assert len(acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]) == 1
    assert len(acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]) == 1
    assert acc.drain([1], ALL_ON_1, 1 << 20, 0) == {}
    assert acc.ready(ALL_ON_1, 0).nodes == set()  # muted: not ready either
    first = acc.in_flight(TP0)[0]
    acc.complete(first, 0)
    assert acc.ready(ALL_ON_1, 0).nodes == {1}


def test_max_in_flight_one_mutes_partition_for_ordering() -> None:
    acc = make(max_in_flight=1)
    put(acc, TP0, 30)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    assert acc.drain([1], ALL_ON_1, 1 << 20, 0) == {}
    acc.complete(batch, 0)
    assert len(acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]) == 1


def test_leader_move_waits_for_old_leaders_requests() -> None:
    """P6: nothing for the partition goes to the new leader while the old one has requests."""
    acc = make()
    put(acc, TP0, 30)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    moved = leaders({TP0: 2})
    assert acc.ready(moved, 0).nodes == set()
    assert acc.drain([2], moved, 1 << 20, 0) == {}
    acc.requeue(batch, 0)  # NOT_LEADER_OR_FOLLOWER from the old leader
    assert acc.drain([2], moved, 1 << 20, 200)[2][0] is batch  # retried first, to B


def test_retry_backoff_and_order_kept() -> None:
    acc = make()
    put(acc, TP0, 30)
    (b1,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    (b2,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    acc.requeue(b1, 10)
    acc.requeue(b2, 10)
    assert acc.queued(TP0)[:2] == [b1, b2]  # original order, not LIFO
    result = acc.ready(ALL_ON_1, 10)
    assert result.nodes == set() and result.next_check_ms == pytest.approx(100, rel=0.25)
    assert acc.drain([1], ALL_ON_1, 1 << 20, 50) == {}  # backing off
    assert acc.drain([1], ALL_ON_1, 1 << 20, 200)[1] == [b1]


def test_recovery_mode_one_in_flight_until_retried_batches_are_through() -> None:
    """Rule 1.5.2 / P3: after a retry with others in flight, one at a time, in order."""
    acc = make()
    put(acc, TP0, 50)
    sent = [acc.drain([1], ALL_ON_1, 1 << 20, 0)[1][0] for _ in range(3)]
    acc.requeue(sent[0], 0)  # NOT_LEADER on request 1 while 2 and 3 are out
    assert acc.is_recovering(TP0)
    assert acc.drain([1], ALL_ON_1, 1 << 20, 500) == {}  # 2 and 3 still out
    acc.requeue(sent[1], 0)  # OOSN
    acc.requeue(sent[2], 0)  # OOSN
    assert acc.queued(TP0)[:3] == sent
    for batch in sent:
        assert acc.drain([1], ALL_ON_1, 1 << 20, 500)[1] == [batch]
        assert acc.drain([1], ALL_ON_1, 1 << 20, 500) == {}  # at most one in flight
        acc.complete(batch, 0)
    fresh = acc.drain([1], ALL_ON_1, 1 << 20, 500)[1][0]
    assert fresh.attempts == 1 and not acc.is_recovering(TP0)
    assert len(acc.drain([1], ALL_ON_1, 1 << 20, 500)[1]) == 1  # pipelining again


def test_idempotent_drain_assigns_contiguous_sequences() -> None:
    idem = IdempotenceManager(delivery_timeout_ms=1000)
    acc = RecordAccumulator(settings(), idempotence=idem)
    put(acc, TP0, 25)
    assert acc.ready(ALL_ON_1, 10).nodes == set()  # no producer id yet
    assert acc.drain([1], ALL_ON_1, 1 << 20, 10) == {}
    idem.begin_init()
    idem.on_init_success(77, 3)
    batches = [acc.drain([1], ALL_ON_1, 1 << 20, 10)[1][0] for _ in range(3)]
    assert [(b.producer_id, b.producer_epoch, b.base_sequence) for b in batches] == [
        (77, 3, 0),
        (77, 3, 10),
        (77, 3, 20),
    ]


# -- completion, failure, split, expiry ----------------------------------------------


def test_complete_resolves_futures_with_offsets() -> None:
    acc = make()
    futures = put(acc, TP0, 3)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    acc.complete(batch, 100)
    assert [f.result().offset for f in futures] == [100, 101, 102]
    assert futures[0].result().timestamp == 1000
    assert futures[0].state is DeliveryState.SUCCEEDED
    assert acc.in_flight_count == 0 and acc.used_bytes == 0


def test_log_append_time_replaces_timestamp_and_unknown_offset() -> None:
    acc = make()
    (future,) = put(acc, TP0, 1)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    acc.complete(batch, -1, 5555)
    assert future.result() == (TP0[0], 0, -1, 5555)


def test_fail_resolves_with_state_and_error() -> None:
    acc = make()
    futures = put(acc, TP0, 2)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    acc.fail(batch, ValueError("boom"), DeliveryState.NOT_PERSISTED)
    for f in futures:
        assert f.state is DeliveryState.NOT_PERSISTED
        with pytest.raises(ValueError, match="boom"):
            f.result()
        assert isinstance(f.exception(), ValueError)


def test_split_keeps_order_futures_and_sequences() -> None:
    """P8: MESSAGE_TOO_LARGE splits into halves; futures and order survive."""
    idem = IdempotenceManager(delivery_timeout_ms=1000)
    idem.begin_init()
    idem.on_init_success(1, 0)
    acc = RecordAccumulator(settings(), idempotence=idem)
    futures = put(acc, TP0, 15)
    calls: list[int] = []
    futures[7].add_done_callback(lambda f: calls.append(f.result().offset))
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    used = acc.used_bytes
    first, second = acc.split(batch, 0)
    assert batch.state is BatchState.SPLIT
    assert (first.record_count, second.record_count) == (5, 5)
    assert (first.base_sequence, second.base_sequence) == (0, 5)
    assert acc.queued(TP0)[:2] == [first, second]
    assert acc.used_bytes == used + BATCH_OVERHEAD
    acc.drain([1], ALL_ON_1, 1 << 20, 0)
    acc.complete(first, 40)
    (b2,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    assert b2 is second
    acc.complete(second, 45)
    assert [f.result().offset for f in futures[:10]] == list(range(40, 50))
    assert calls == [47]


def test_split_of_one_record_refused() -> None:
    acc = make()
    put(acc, TP0, 1)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    with pytest.raises(ValueError):
        batch.split()


def test_expire_queued_not_persisted_in_flight_possibly_persisted() -> None:
    """P7: queued -> NOT_PERSISTED; in flight -> POSSIBLY_PERSISTED, slot kept until the end."""
    acc = make(delivery_timeout_ms=1000)
    sent_futures = put(acc, TP0, 10, now=0)
    queued_futures = put(acc, TP0, 10, now=0)
    (sent,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    assert acc.expire(999, error) == []
    expired = acc.expire(1000, error)
    assert len(expired) == 2
    assert {f.state for f in sent_futures} == {DeliveryState.POSSIBLY_PERSISTED}
    assert {f.state for f in queued_futures} == {DeliveryState.NOT_PERSISTED}
    assert acc.in_flight_count == 1  # the request is still out
    assert acc.used_bytes == sent.size
    acc.release(sent)  # its response (any) arrives later
    assert acc.in_flight_count == 0 and acc.used_bytes == 0


def test_late_response_for_expired_batch_does_not_resolve_twice() -> None:
    acc = make(delivery_timeout_ms=1000)
    (future,) = put(acc, TP0, 1)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    calls: list[DeliveryState] = []
    future.add_done_callback(lambda f: calls.append(f.state))
    acc.expire(2000, error)
    acc.complete(batch, 7)  # tolerated: the slot is released, nothing resolves again
    assert calls == [DeliveryState.POSSIBLY_PERSISTED]


def test_ambiguous_queued_batch_expires_possibly_persisted() -> None:
    acc = make(delivery_timeout_ms=1000)
    (future,) = put(acc, TP0, 1)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    batch.possibly_persisted = True  # e.g. the connection dropped after sending
    acc.requeue(batch, 10)
    acc.expire(1000, error)
    assert future.state is DeliveryState.POSSIBLY_PERSISTED


def test_abort_all_resolves_everything() -> None:
    acc = make()
    futures = put(acc, TP0, 25) + put(acc, TP1, 3)
    acc.drain([1], ALL_ON_1, 1 << 20, 0)
    aborted = acc.abort_all(error)
    assert len(aborted) == 4
    assert all(f.done() for f in futures)
    assert acc.in_flight_count == 0 and acc.used_bytes == 0 and not acc.has_queued
    assert futures[0].state is DeliveryState.POSSIBLY_PERSISTED
    assert futures[10].state is DeliveryState.NOT_PERSISTED  # TP0's second batch, queued


def test_reset_producer_state_resequences_or_fails_ambiguous() -> None:
    idem = IdempotenceManager(delivery_timeout_ms=10_000)
    idem.begin_init()
    idem.on_init_success(1, 0)
    acc = RecordAccumulator(settings(), idempotence=idem)
    futures = put(acc, TP0, 30)
    a = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1][0]
    b = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1][0]
    a.possibly_persisted = True
    acc.requeue(a, 0)
    acc.requeue(b, 0)
    failed = acc.reset_producer_state(error)
    assert failed == [a]
    assert futures[0].state is DeliveryState.POSSIBLY_PERSISTED
    assert [q.base_sequence for q in acc.queued(TP0)] == [-1, -1]


def test_reset_producer_state_refuses_with_batches_in_flight() -> None:
    acc = make()
    put(acc, TP0, 1)
    acc.drain([1], ALL_ON_1, 1 << 20, 0)
    with pytest.raises(RuntimeError):
        acc.reset_producer_state(error)


# -- futures and batch lifecycle -----------------------------------------------------


def test_batch_transitions_are_guarded() -> None:
    batch = ProducerBatch(TP0, 0, 1000, (0,))
    batch.try_append(1, None, b"x", (), 20)
    with pytest.raises(IllegalBatchTransition):
        batch.succeed(0, -1)  # never sent
    batch.mark_in_flight()
    batch.succeed(0, -1)
    with pytest.raises(IllegalBatchTransition):
        batch.fail(RuntimeError(), DeliveryState.NOT_PERSISTED)


def test_future_resolves_exactly_once_and_callbacks_run_once() -> None:
    batch = ProducerBatch(TP0, 0, 1000, (0,))
    future = batch.try_append(1, None, b"x", (), 20)
    assert future is not None
    calls: list[DeliveryFuture] = []
    future.add_done_callback(calls.append)
    with pytest.raises(RuntimeError):
        future.result()
    batch.mark_in_flight()
    batch.succeed(9, -1)
    with pytest.raises(IllegalBatchTransition):
        batch.outcome.resolve(DeliveryState.SUCCEEDED, 1, -1, None)
    future.add_done_callback(calls.append)  # already done: runs at once
    assert calls == [future, future]


def test_raising_callback_does_not_break_others(caplog: pytest.LogCaptureFixture) -> None:
    batch = ProducerBatch(TP0, 0, 1000, (0,))
    future = batch.try_append(1, None, b"x", (), 20)
    assert future is not None
    seen: list[int] = []

    def bad(_: DeliveryFuture) -> None:
        raise RuntimeError("user bug")

    future.add_done_callback(bad)
    future.add_done_callback(lambda f: seen.append(f.result().offset))
    batch.mark_in_flight()
    batch.succeed(3, -1)
    assert seen == [3]
    assert "raised" in caplog.text


def test_build_encodes_once_and_restamps_on_new_producer_state() -> None:
    calls: list[tuple[int, int, int]] = []
    real = records_encoder(Codec.GZIP)

    def encoder(
        writer: RecordsWriter,
        *,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        transactional: bool,
    ) -> bytes:
        calls.append((producer_id, producer_epoch, base_sequence))
        return real(
            writer,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            transactional=transactional,
        )

    batch = ProducerBatch(TP0, 0, 1000, (0,))
    batch.try_append(1700, b"k", b"v1", [("h", b"x")], 20)
    batch.try_append(1701, None, b"v2", (), 20)
    batch.set_producer_state(5, 0, 10)
    first = batch.build(encoder)
    assert batch.build(encoder) is first
    assert batch.writer is None  # the built bytes are now the only copy
    with pytest.raises(IllegalBatchTransition):
        batch.try_append(1702, None, b"v3", (), 20)  # closed by the build
    batch.set_producer_state(5, 1, 0)  # epoch bump: restamped, not re-encoded
    data = batch.build(encoder)
    assert calls == [(5, 0, 10)]
    (decoded,) = read_batches(data)
    assert isinstance(decoded, RecordBatch)
    assert (decoded.producer_id, decoded.producer_epoch, decoded.base_sequence) == (5, 1, 0)
    records = decoded.records()
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (0, 1700, b"k", b"v1"),
        (1, 1701, None, b"v2"),
    ]
    assert list(records[0].headers) == [("h", b"x")]


@pytest.mark.anyio
async def test_await_delivery_future_and_batch() -> None:
    acc = make()
    futures = put(acc, TP0, 3)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    results = []

    async def waiter(f: DeliveryFuture) -> None:
        results.append(await f)

    async with anyio.create_task_group() as tg:
        for f in futures:
            tg.start_soon(waiter, f)
        tg.start_soon(batch.wait)
        await anyio.sleep(0)
        acc.complete(batch, 10)
    assert sorted(r.offset for r in results) == [10, 11, 12]


@pytest.mark.anyio
async def test_await_survives_split_and_failure_raises() -> None:
    acc = make()
    futures = put(acc, TP0, 4)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    outcomes: list[object] = []

    async def waiter(f: DeliveryFuture) -> None:
        try:
            outcomes.append((await f).offset)
        except LookupError as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as tg:
        for f in futures:
            tg.start_soon(waiter, f)
        tg.start_soon(batch.wait)
        await anyio.sleep(0)
        first, second = acc.split(batch, 0)
        await anyio.sleep(0)
        acc.drain([1], ALL_ON_1, 1 << 20, 0)
        acc.complete(first, 0)
        acc.drain([1], ALL_ON_1, 1 << 20, 0)
        acc.fail(second, LookupError("gone"), DeliveryState.NOT_PERSISTED)
    assert sorted(map(str, outcomes)) == ["0", "1", "gone", "gone"]


@pytest.mark.anyio
async def test_cancelled_await_does_not_cancel_delivery() -> None:
    acc = make()
    (future,) = put(acc, TP0, 1)
    (batch,) = acc.drain([1], ALL_ON_1, 1 << 20, 0)[1]
    with anyio.move_on_after(0.01):
        await future
    assert not future.done()
    acc.complete(batch, 1)
    assert (await future).offset == 1


# -- bulk append (send_many) ---------------------------------------------------------


@pytest.mark.parametrize("budget", [1, 500, 10_000, 10**9])
@pytest.mark.parametrize("buffer_memory", [3_000, 10**9])
def test_append_values_matches_per_record_append(budget: int, buffer_memory: int) -> None:
    values = [bytes(rng_len) for rng_len in random.Random(7).choices(range(0, 300), k=120)]
    bulk, single = make(buffer_memory=buffer_memory), make(buffer_memory=buffer_memory)
    out = DeliveryFutures()
    stop, appended, _ = bulk.append_values(TP0, 1000, b"k", values, 0, budget, (), 0.0, out)
    expected_bytes = 0
    for value in values:
        if expected_bytes >= budget:
            break
        result = single.append(TP0, 1000, b"k", value, (), 0.0)
        if result is None:
            break
        expected_bytes += result[2]
    count = sum(b.record_count for b in single.queued(TP0))
    assert (stop, appended, len(out)) == (count, expected_bytes, count)
    assert bulk.used_bytes == single.used_bytes
    encoder = records_encoder()

    def shape(acc: RecordAccumulator) -> list[tuple[int, int, bytes]]:
        return [(b.size, b.record_count, b.build(encoder)) for b in acc.queued(TP0)]

    assert shape(bulk) == shape(single)
    # Each future points at its batch's outcome, at its index in that batch.
    expected = [(b.outcome, i) for b in bulk.queued(TP0) for i in range(b.record_count)]
    assert [(f._outcome, f._index) for f in out] == expected


@pytest.mark.parametrize("budget", [1, 116, 117, 118, 5_000, 10**9])
@pytest.mark.parametrize("buffer_memory", [2_000, 3_000, 10**9])
@pytest.mark.parametrize("start", [0, 3])
def test_append_values_uniform_run_matches_per_record_append(
    budget: int, buffer_memory: int, start: int
) -> None:
    values = [bytes([i % 256]) * 100 for i in range(40)]  # one length: the counted fast path
    bulk, single = make(buffer_memory=buffer_memory), make(buffer_memory=buffer_memory)
    out = DeliveryFutures()
    stop, appended, _ = bulk.append_values(TP0, 1000, None, values, start, budget, (), 0.0, out)
    expected_bytes, count = 0, 0
    for value in values[start:]:
        if expected_bytes >= budget:
            break
        result = single.append(TP0, 1000, None, value, (), 0.0)
        if result is None:
            break
        expected_bytes += result[2]
        count += 1
    assert (stop - start, appended, len(out)) == (count, expected_bytes, count)
    assert bulk.used_bytes == single.used_bytes
    encoder = records_encoder()
    got = [(b.size, b.build(encoder)) for b in bulk.queued(TP0)]
    assert got == [(b.size, b.build(encoder)) for b in single.queued(TP0)]
