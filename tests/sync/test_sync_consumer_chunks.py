"""``for record in consumer`` on the sync facade: one portal hop per drained chunk, records
handed out on the caller's thread (``kclient/consumer/handout.py``), with the async
iterator's guarantees: every record once and in order across chunk boundaries; the
position, hence ``commit()`` and the final auto-commit, covers exactly the records handed
out; a seek, pause or revocation in the middle of a chunk is honoured at the next record.

Each test runs the MockCluster on the test's own loop (asyncio and trio) and the blocking
application code in a worker thread (``anyio.to_thread``), as a script would run it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest

from kclient import AsyncConsumer, ConsumerRecord, TopicPartition
from kclient.sync import Consumer
from kclient.testing.mock import MockCluster
from tests.kclient.consumer.scenarios._helpers import FAST_GROUP, produce

from .test_sync_tansu import make_topic

pytestmark = pytest.mark.anyio

TOPIC, GROUP = "chunks", "chunks-group"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
STALL_S = 20


def make(cluster: MockCluster, **settings: Any) -> Consumer[bytes, bytes]:
    merged: dict[str, Any] = {
        **FAST_GROUP,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "bootstrap_servers": cluster.bootstrap_servers,
    }
    merged.update(settings)
    return Consumer(**merged)


def count_refills(c: Consumer[Any, Any]) -> list[int]:
    """Count the iterator's portal hops: ``__next__`` reads ``_impl._refill`` each time."""
    hops = [0]
    refill = c._impl._refill

    async def counted() -> None:
        hops[0] += 1
        await refill()

    c._impl._refill = counted  # type: ignore[method-assign]
    return hops


def take_records(c: Consumer[bytes, bytes], n: int) -> list[ConsumerRecord[bytes, bytes]]:
    """The next ``n`` records; ``range`` first, so that zip never pulls (and so hands out)
    an extra record. A consumer that stalls (records lost) is closed after a while, which
    ends the loop, so the test fails instead of hanging."""
    watchdog = threading.Timer(STALL_S, c.close)
    watchdog.start()
    try:
        return [r for _, r in zip(range(n), c, strict=False)]
    finally:
        watchdog.cancel()


def take(c: Consumer[bytes, bytes], n: int) -> list[tuple[int, int]]:
    """The next ``n`` records as (partition, offset)."""
    return [(r.partition, r.offset) for r in take_records(c, n)]


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def committed(cluster: MockCluster) -> dict[int, int]:
    group = cluster.state.group(GROUP, create=False)
    assert group is not None
    return {p: o.offset for (t, p), o in group.offsets.items() if t == TOPIC}


async def test_every_record_once_in_order_with_one_hop_per_chunk() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"v%d" % i for i in range(300)], per_batch=7)

        def app() -> tuple[list[tuple[int, int]], int, dict[TopicPartition, int]]:
            with make(cluster, max_poll_records=40) as c:
                c.assign([P0, P1])
                hops = count_refills(c)
                got = take(c, 600)
                return got, hops[0], {tp: c.position(tp) for tp in (P0, P1)}

        got, hops, positions = await anyio.to_thread.run_sync(app)
    for p in (0, 1):
        assert [o for q, o in got if q == p] == list(range(300))
    assert positions == {P0: 300, P1: 300}
    # One hop per chunk of at most 40 records (a record-per-hop iterator would make 600);
    # a drain may return fewer than 40 when little is buffered yet, hence the slack.
    assert 600 // 40 <= hops <= 600 // 4


async def test_commit_and_close_mid_chunk_cover_only_records_handed_out() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 200, per_batch=200)

        def app() -> tuple[int | None, int, int]:
            c = make(cluster, group_id=GROUP, enable_auto_commit=True,
                     auto_commit_interval_ms=60_000, max_poll_records=200)  # fmt: skip
            with c:
                c.assign([P0])
                hops = count_refills(c)
                assert take(c, 10) == [(0, o) for o in range(10)]
                c.commit()  # the chunk holds 200 records; 10 were handed out
                first = c.committed(P0)
                position = c.position(P0)
                assert take(c, 27) == [(0, o) for o in range(10, 37)]
                # closing (auto-commit) with 163 records of the chunk still held
            return first, position, hops[0]

        first, position, hops = await anyio.to_thread.run_sync(app)
        assert (first, position) == (10, 10)
        assert hops == 1  # all 37 records came from one chunk
        assert committed(cluster) == {0: 37}


async def test_seek_mid_chunk_is_honoured_at_the_next_record() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 100, per_batch=100)

        def app() -> list[tuple[int, int]]:
            with make(cluster, max_poll_records=100) as c:
                c.assign([P0])
                got = take(c, 5)
                c.seek(P0, 60)  # forwards, past records the chunk still holds
                got += take(c, 3)
                c.seek(P0, 2)  # backwards, to records already handed out
                got += take(c, 3)
                c.seek_to_end(P0)
                assert c.position(P0) == 100
                assert c.getmany(timeout_ms=100) == {}
                return got

        got = await anyio.to_thread.run_sync(app)
    assert [o for _, o in got] == [0, 1, 2, 3, 4, 60, 61, 62, 2, 3, 4]


async def test_pause_mid_chunk_holds_the_partition_back_without_loss() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"x"] * 100, per_batch=100)

        def app() -> list[tuple[int, int]]:
            with make(cluster, max_poll_records=500) as c:
                c.assign([P0, P1])
                # Both partitions buffered, so the next chunk holds records of both.
                wait_until(lambda: all(c.highwater(tp) == 100 for tp in (P0, P1)))
                got = take(c, 5)
                paused = TopicPartition(TOPIC, got[-1][0])
                other = P1 if paused == P0 else P0
                c.pause(paused)
                seen_other = sum(1 for p, _ in got if p == other.partition)
                while_paused = take(c, 100 - seen_other)
                assert {p for p, _ in while_paused} == {other.partition}
                assert c.position(paused) == 1 + max(o for p, o in got if p == paused.partition)
                c.resume(paused)
                return got + while_paused + take(c, 200 - len(got) - len(while_paused))

        got = await anyio.to_thread.run_sync(app)
    for p in (0, 1):
        assert [o for q, o in got if q == p] == list(range(100))


class _Revocations:
    def __init__(self) -> None:
        self.revoked: list[frozenset[TopicPartition]] = []

    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        self.revoked.append(revoked)

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        pass


async def test_rebalance_mid_chunk_drops_the_revoked_partitions_records() -> None:
    """A holds one chunk of all four partitions when B joins (eager range assignment):
    from the moment the revocation is known, A hands out nothing more of the chunk; it
    commits (auto-commit before revocation) only what earlier polls handed out, and B
    continues from there, so between them every record is read, none skipped."""
    await rebalance_mid_chunk(take)


async def rebalance_mid_chunk(
    take_n: Callable[[Consumer[bytes, bytes], int], list[tuple[int, int]]],
) -> None:
    """The rebalance-mid-chunk scenario, member A taking records with ``take_n`` (``for``
    or ``getone()``); asserts what the tests' docstrings say."""
    partitions = [TopicPartition(TOPIC, p) for p in range(4)]
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=4)
        for tp in partitions:
            produce(cluster, TOPIC, tp.partition, [b"x"] * 50, per_batch=50)
        settings: dict[str, Any] = dict(
            group_id=GROUP, partition_assignment_strategy=["range"],
            enable_auto_commit=True, auto_commit_interval_ms=60_000,
            max_poll_records=1000, max_poll_interval_ms=20_000,
        )  # fmt: skip
        b_records: list[tuple[int, int]] = []
        b_joined = anyio.Event()

        async def run_b() -> None:
            async with make_async(cluster, client_id="b", **settings) as b:
                b.subscribe([TOPIC])
                while True:
                    for tp, records in (await b.getmany(timeout_ms=50)).items():
                        b_records.extend((tp.partition, r.offset) for r in records)
                    if b.assignment():
                        b_joined.set()

        def app() -> tuple[Any, ...]:
            listener = _Revocations()
            with make(cluster, client_id="a", **settings) as a:
                a.subscribe([TOPIC], listener=listener)
                # The member joins and fetches in the background: once all four
                # partitions are buffered, the first drain is one chunk of all four.
                wait_until(
                    lambda: (
                        a.assignment() == set(partitions)
                        and all(a.highwater(tp) == 50 for tp in partitions)
                    )
                )
                before = take_n(a, 10)
                anyio.from_thread.run_sync(tg.start_soon, run_b)
                # The revocation reaches A's coordinator: A's held records are dropped.
                wait_until(lambda: not a._impl._handout)
                after = take_n(a, 10)  # runs the revocation, rejoins, reads on
                offsets = anyio.from_thread.run_sync(committed, cluster)
                anyio.from_thread.run(b_joined.wait)
                return before, after, listener.revoked, offsets

        async with anyio.create_task_group() as tg:
            before, after, revoked, offsets = await anyio.to_thread.run_sync(app)
            await b_joined.wait()
            tg.cancel_scope.cancel()
    assert revoked and revoked[0] == frozenset(partitions)
    kept = {p for p, _ in after}
    assert kept and kept.isdisjoint({p for p, _ in b_records})
    a_seen: dict[int, list[int]] = {}
    for p, o in before:
        a_seen.setdefault(p, []).append(o)
    assert all(seen == list(range(len(seen))) for seen in a_seen.values())
    # The commit before revocation covered exactly the records handed out, none held...
    assert offsets == {tp.partition: len(a_seen.get(tp.partition, [])) for tp in partitions}
    # ... and each partition A kept goes on from there: nothing again, nothing skipped.
    for p in kept:
        seen = [o for q, o in after if q == p]
        assert seen == list(range(offsets[p], offsets[p] + len(seen)))


def make_async(cluster: MockCluster, **settings: Any) -> AsyncConsumer[bytes, bytes]:
    merged: dict[str, Any] = {
        **FAST_GROUP,
        "auto_offset_reset": "earliest",
        "bootstrap_servers": cluster.bootstrap_servers,
    }
    merged.update(settings)
    return AsyncConsumer(**merged)


async def test_close_from_another_thread_mid_chunk_ends_the_loop() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 500, per_batch=500)

        def app() -> int:
            c = make(cluster, group_id=GROUP, enable_auto_commit=True,
                     auto_commit_interval_ms=60_000, max_poll_records=500)  # fmt: skip
            c.assign([P0])
            handed = 0
            closer = threading.Thread(target=c.close)
            for _ in c:
                handed += 1
                if handed == 20:
                    closer.start()
                    closer.join()  # the loop's next step sees a closed client
            return handed

        handed = await anyio.to_thread.run_sync(app)
        assert handed == 20
        assert committed(cluster) == {0: 20}


async def test_truncation_mid_chunk_drops_the_truncated_records_held() -> None:
    """The leader changes onto a replica that lost the log's tail while the application's
    thread is taking records from a chunk of it. Validation (KIP-320, on the loop thread)
    seeks the partition to its position: the rest of the chunk is dropped, never handed
    out, and the partition is read again from exactly the next record."""
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"old"] * 300, per_batch=10)

        def app() -> list[ConsumerRecord[bytes, bytes]]:
            with make(cluster, max_poll_records=300) as c:
                c.assign([P0])
                got = take_records(c, 10)  # from one chunk of all 300
                chunk_epoch = c._impl._subs.state(P0).epoch

                def truncate() -> None:
                    cluster.truncate_log(TOPIC, 0, 100)  # 100..299 lost; epoch 0 -> 1
                    produce(cluster, TOPIC, 0, [b"new"] * 50, per_batch=10)  # 100..149

                anyio.from_thread.run_sync(truncate)
                wait_until(lambda: c._impl._subs.state(P0).epoch != chunk_epoch)
                return got + take_records(c, 140)

        got = await anyio.to_thread.run_sync(app)
        assert cluster.errors == []
    assert [r.offset for r in got] == list(range(150))
    assert [r.value for r in got] == [b"old"] * 100 + [b"new"] * 50


def test_tansu_chunks_and_commits_across_partitions(tansu_bootstrap: str) -> None:
    """Against the real broker: three partitions read in chunks of at most 25 records,
    a commit in the middle of a chunk and the final auto-commit of ``close()`` each cover
    exactly the records handed out, and a second member of the group resumes there."""
    topic = make_topic(tansu_bootstrap, 3, 150)  # 50 records a partition
    tps = [TopicPartition(topic, p) for p in range(3)]
    group = f"chunks-{topic}"

    def member(**kw: Any) -> Consumer[bytes, bytes]:
        return Consumer(
            topic, bootstrap_servers=tansu_bootstrap, group_id=group,
            auto_offset_reset="earliest", max_poll_records=25, **kw,
        )  # fmt: skip

    with member(enable_auto_commit=True, auto_commit_interval_ms=60_000) as c:
        hops = count_refills(c)
        first = take(c, 40)
        c.commit()
        at_commit = {tp: c.committed(tp) or 0 for tp in tps}
        rest = take(c, 37)
    handed = first + rest
    assert 77 // 25 <= hops[0] <= 77 // 5
    for p in range(3):
        mine = [o for q, o in handed if q == p]
        assert mine == list(range(len(mine)))
    assert at_commit == {tp: len([1 for p, _ in first if p == tp.partition]) for tp in tps}
    with member(enable_auto_commit=False) as again:
        after = take(again, 150 - 77)
    for p in range(3):
        seen = [o for q, o in handed + after if q == p]
        assert seen == list(range(50))
