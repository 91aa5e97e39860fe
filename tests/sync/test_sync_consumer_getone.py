"""``Consumer.getone()`` on the sync facade: records taken on the caller's thread from the
hand-out shared with ``for record in consumer`` (one portal hop per drained chunk), with
``AsyncConsumer.getone()``'s guarantees: every record once and in order however
``getone``, iteration and ``getmany`` are mixed; ``commit()`` covers exactly the records
returned; a seek, pause or revocation in the middle of a chunk is honoured at the next
call; errors surface from the call that refills; a close from another thread ends it.

As in ``test_sync_consumer_chunks.py``: the MockCluster runs on the test's own loop
(asyncio and trio) and the blocking application code in a worker thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest

from kclient import ConsumerRecord, TopicPartition
from kclient.consumer._errors import NoOffsetForPartitionError
from kclient.sync import ClientClosedError, Consumer
from kclient.testing.mock import MockCluster
from tests.kclient.consumer.scenarios._helpers import produce

from .test_sync_consumer_chunks import (
    GROUP,
    P0,
    P1,
    STALL_S,
    TOPIC,
    committed,
    make,
    make_async,
    rebalance_mid_chunk,
    wait_until,
)
from .test_sync_tansu import make_topic

pytestmark = pytest.mark.anyio


def count_hops(c: Consumer[Any, Any]) -> list[int]:
    """Count the client's portal hops (every call to the loop goes through ``_forward``):
    the refills of the hand-out, or each ``getone`` that is forwarded whole."""
    hops = [0]
    forward = c._forward

    def counted(*args: Any) -> Any:
        hops[0] += 1
        return forward(*args)

    c._forward = counted  # type: ignore[method-assign,assignment]
    return hops


def getone_n(c: Consumer[bytes, bytes], n: int) -> list[tuple[int, int]]:
    """The next ``n`` records by ``getone()``, as (partition, offset). A consumer that
    stalls (records lost) is closed after a while, so getone raises instead of hanging."""
    watchdog = threading.Timer(STALL_S, c.close)
    watchdog.start()
    try:
        return [(r.partition, r.offset) for r in (c.getone() for _ in range(n))]
    finally:
        watchdog.cancel()


def _getmany(c: Consumer[bytes, bytes], n: int) -> list[ConsumerRecord[bytes, bytes]]:
    got = c.getmany(timeout_ms=STALL_S * 1000, max_records=n)
    return [r for records in got.values() for r in records]


async def test_getone_hops_once_per_chunk_and_mixes_with_for_and_getmany() -> None:
    """Alternating getone, ``next()`` on the iterator and getmany: each of the 2 x 300
    records comes back once and in partition order. A getmany takes what the hand-out
    still holds first (``Handout.take_rest``), then reads on."""
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"v%d" % i for i in range(300)], per_batch=7)

        def app() -> tuple[list[tuple[int, int]], int, list[tuple[int, int]], dict[Any, int]]:
            with make(cluster, max_poll_records=40) as c:
                c.assign([P0, P1])
                hops = count_hops(c)
                only_getone = getone_n(c, 200)
                getone_hops = hops[0]
                iterator = iter(c)
                # (how, up to how many): never more than remain, or the call would wait.
                steps: list[tuple[Callable[[int], list[ConsumerRecord[bytes, bytes]]], int]] = [
                    (lambda n: [c.getone() for _ in range(n)], 3),
                    (lambda n: [next(iterator) for _ in range(n)], 2),
                    (lambda n: _getmany(c, n), 5),
                    (lambda n: [c.getone() for _ in range(n)], 1),
                ]
                mixed: list[tuple[int, int]] = []
                watchdog = threading.Timer(STALL_S, c.close)  # lost records: fail, not hang
                watchdog.start()
                try:
                    for step in itertools.count():
                        left = 400 - len(mixed)
                        if not left:
                            break
                        how, most = steps[step % len(steps)]
                        mixed += [(r.partition, r.offset) for r in how(min(most, left))]
                finally:
                    watchdog.cancel()
                return only_getone, getone_hops, mixed, {tp: c.position(tp) for tp in (P0, P1)}

        only_getone, hops, mixed, positions = await anyio.to_thread.run_sync(app)
    got = only_getone + mixed
    assert len(got) == 600
    for p in (0, 1):
        assert [o for q, o in got if q == p] == list(range(300))
    assert positions == {P0: 300, P1: 300}
    # One hop per chunk of at most 40 records (the portal path made one per getone); a
    # drain may return fewer than 40 when little is buffered yet, hence the slack.
    assert 200 // 40 <= hops <= 200 // 4


async def test_commit_after_getone_covers_only_the_records_returned() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 200, per_batch=200)

        def app() -> tuple[int | None, int, int | None, int]:
            c = make(cluster, group_id=GROUP, enable_auto_commit=True,
                     auto_commit_interval_ms=60_000, max_poll_records=200)  # fmt: skip
            with c:
                c.assign([P0])
                hops = count_hops(c)
                assert getone_n(c, 10) == [(0, o) for o in range(10)]
                getone_hops = hops[0]
                c.commit()  # the chunk holds 200 records; 10 were returned
                first, position = c.committed(P0), c.position(P0)
                calls = hops[0]
                assert getone_n(c, 1) == [(0, 10)]
                c.commit({P0: 5})  # explicit offsets are committed as given
                explicit = c.committed(P0)
                calls += 2
                assert getone_n(c, 26) == [(0, o) for o in range(11, 37)]
                getone_hops += hops[0] - calls
                # closing (auto-commit) with 163 records of the chunk still held
            return first, position, explicit, getone_hops

        first, position, explicit, hops = await anyio.to_thread.run_sync(app)
        assert (first, position, explicit) == (10, 10, 5)
        assert hops == 1  # all 37 records came from one chunk: one refill, no other hop
        assert committed(cluster) == {0: 37}


async def test_seek_and_pause_mid_chunk_are_honoured_at_the_next_getone() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"x"] * 100, per_batch=100)

        def app() -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
            with make(cluster, max_poll_records=500) as c:
                c.assign([P0, P1])
                # Both partitions buffered, so the next chunk holds records of both.
                wait_until(lambda: all(c.highwater(tp) == 100 for tp in (P0, P1)))
                got = getone_n(c, 5)
                tp = TopicPartition(TOPIC, got[-1][0])
                other = P1 if tp == P0 else P0
                seen_other = sum(1 for p, _ in got if p == other.partition)
                c.seek(tp, 60)  # forwards, past records the chunk still holds
                rest = getone_n(c, 40 + 100 - seen_other)
                assert [o for p, o in rest if p == tp.partition] == list(range(60, 100))
                assert [o for p, o in got + rest if p == other.partition] == list(range(100))
                c.seek(tp, 2)  # backwards, to records already returned
                assert getone_n(c, 1) == [(tp.partition, 2)]
                c.pause(tp)  # the rest of its chunk is held back, not returned or lost
                assert c.position(tp) == 3
                c.seek(other, 0)
                while_paused = getone_n(c, 100)
                c.resume(tp)
                return tp.partition, while_paused, getone_n(c, 97)

        paused, while_paused, resumed = await anyio.to_thread.run_sync(app)
    assert while_paused == [(1 - paused, o) for o in range(100)]
    assert resumed == [(paused, o) for o in range(3, 100)]


async def test_rebalance_mid_chunk_drops_the_revoked_records_getone_holds() -> None:
    """A holds one chunk of all four partitions when B joins (eager range assignment):
    from the moment the revocation is known, A's getone returns nothing more of the chunk;
    A's auto-commit before the revocation covers only the records getone returned, and
    B continues from there, so between them every record is read, none skipped."""
    await rebalance_mid_chunk(getone_n)


async def test_close_from_another_thread_ends_getone_mid_chunk_and_while_waiting() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        produce(cluster, TOPIC, 0, [b"x"] * 500, per_batch=500)

        def mid_chunk() -> list[tuple[int, int]]:
            c = make(cluster, group_id=GROUP, enable_auto_commit=True,
                     auto_commit_interval_ms=60_000, max_poll_records=500)  # fmt: skip
            c.assign([P0])
            got = getone_n(c, 20)
            closer = threading.Thread(target=c.close)
            closer.start()
            closer.join()
            with pytest.raises(ClientClosedError, match="is closed"):
                c.getone()
            return got

        def while_waiting() -> None:
            c = make(cluster, max_poll_records=500)
            c.assign([P1])  # empty: getone waits in a refill on the loop
            errors: list[BaseException] = []

            def blocked() -> None:
                try:
                    c.getone()
                except BaseException as exc:
                    errors.append(exc)

            waiter = threading.Thread(target=blocked)
            waiter.start()
            wait_until(lambda: bool(c._inflight))  # its refill is in flight on the loop
            c.close()
            waiter.join(STALL_S)
            assert not waiter.is_alive()
            assert len(errors) == 1 and isinstance(errors[0], ClientClosedError)

        assert await anyio.to_thread.run_sync(mid_chunk) == [(0, o) for o in range(20)]
        assert committed(cluster) == {0: 20}
        await anyio.to_thread.run_sync(while_waiting)


async def test_getone_raises_the_errors_the_async_getone_raises() -> None:
    """No committed offset with ``auto_offset_reset="none"``: the refill's poll raises, on
    the caller's thread, as ``AsyncConsumer.getone()`` does; the consumer stays usable.
    (Both find out only when the refill's poll of ``max_poll_interval_ms / 2`` ends,
    hence the short interval.)"""
    settings: dict[str, Any] = dict(
        group_id=GROUP, auto_offset_reset="none", max_poll_interval_ms=1000
    )
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 5)

        def app() -> list[tuple[int, int]]:
            with make(cluster, **settings) as c:
                c.assign([P0])
                with pytest.raises(NoOffsetForPartitionError):
                    c.getone()
                c.seek(P0, 3)
                return getone_n(c, 2)

        async with make_async(cluster, **settings) as ac:
            ac.assign([P0])
            with pytest.raises(NoOffsetForPartitionError):
                await ac.getone()
        assert await anyio.to_thread.run_sync(app) == [(0, 3), (0, 4)]


async def test_getone_with_partitions_reads_only_those() -> None:
    """``getone(*partitions)`` stays one portal hop per call (the hand-out cannot serve a
    subset of partitions): it returns records of the partitions given, in order."""
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"x"] * 20, per_batch=5)

        def app() -> list[tuple[int, int]]:
            with make(cluster) as c:
                c.assign([P0, P1])
                hops = count_hops(c)
                got = [c.getone(P1) for _ in range(20)]
                assert hops == [20]
                return [(r.partition, r.offset) for r in got]

        got = await anyio.to_thread.run_sync(app)
    assert got == [(1, o) for o in range(20)]


async def test_getone_with_and_without_partitions_mixed_mid_chunk() -> None:
    """``getone(P)`` while the hand-out holds a partly returned chunk gives the chunk back
    (``AsyncConsumer._take_chunks``) rather than drop what was fetched after it: mixing
    both forms, every record still comes once and in order."""
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"x"] * 60, per_batch=60)

        def app() -> list[tuple[int, int]]:
            with make(cluster, max_poll_records=10) as c:
                c.assign([P0, P1])
                got: list[tuple[int, int]] = []
                watchdog = threading.Timer(STALL_S, c.close)  # a stall fails, not hangs
                watchdog.start()
                try:
                    while len(got) < 120:
                        chosen = (P0, P1)[len(got) // 3 % 2]
                        left = 60 - sum(1 for p, _ in got if p == chosen.partition)
                        if len(got) % 3 == 2 and left:
                            record = c.getone(chosen)
                        else:
                            record = c.getone()
                        got.append((record.partition, record.offset))
                finally:
                    watchdog.cancel()
                return got

        got = await anyio.to_thread.run_sync(app)
    for p in (0, 1):
        assert [o for q, o in got if q == p] == list(range(60))


def test_tansu_getone_commits_and_a_second_member_resumes(tansu_bootstrap: str) -> None:
    """Against the real broker: getone in chunks of at most 25 records over three
    partitions, a commit in the middle of a chunk and the final auto-commit each cover
    exactly the records returned, and a second member of the group resumes there."""
    topic = make_topic(tansu_bootstrap, 3, 150)  # 50 records a partition
    tps = [TopicPartition(topic, p) for p in range(3)]
    group = f"getone-{topic}"

    def member(**kw: Any) -> Consumer[bytes, bytes]:
        return Consumer(
            topic, bootstrap_servers=tansu_bootstrap, group_id=group,
            auto_offset_reset="earliest", max_poll_records=25, **kw,
        )  # fmt: skip

    with member(enable_auto_commit=True, auto_commit_interval_ms=60_000) as c:
        hops = count_hops(c)
        first = getone_n(c, 40)
        c.commit()
        at_commit = {tp: c.committed(tp) or 0 for tp in tps}
        calls = 1 + len(tps)
        rest = getone_n(c, 37)
    returned = first + rest
    assert 77 // 25 <= hops[0] - calls <= 77 // 5  # refills only, one per chunk
    for p in range(3):
        mine = [o for q, o in returned if q == p]
        assert mine == list(range(len(mine)))
    assert at_commit == {tp: len([1 for p, _ in first if p == tp.partition]) for tp in tps}
    with member(enable_auto_commit=False) as again:
        after = getone_n(again, 150 - 77)
    for p in range(3):
        seen = [o for q, o in returned + after if q == p]
        assert seen == list(range(50))
