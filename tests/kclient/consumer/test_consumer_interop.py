"""AsyncConsumer and confluent-kafka (librdkafka) on the same Tansu broker.

Complements test_consumer_tansu.py (which checks our consumer alone, plus commit and
offsets_for_times round trips): here the two clients share a group, and whatever ours
does (assign, seek, pause/resume, commit with metadata) is checked against what
librdkafka reads or commits for the same partitions.

These tests check interoperability, not the event loop, so they run on asyncio only.
librdkafka's consumer is blocking; it runs in a worker thread. Tansu holds a JoinGroup
for about session_timeout_ms / 2 (tansu-quirks.md), hence the short session timeouts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.to_thread
import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka import TopicPartition as CTopicPartition

from kclient import ConsumerRecord, OffsetAndMetadata, TopicPartition
from tests.kclient.consumer.test_consumer_tansu import BASE_TS, collect, consumer, make_topic

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

SESSION_MS = 4000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- librdkafka helpers ---------------------------------------------------------------------


@contextmanager
def their_consumer(bootstrap: str, group: str | None = None, **extra: Any) -> Iterator[Consumer]:
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": group or f"peer-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **extra,
    }
    c = Consumer(settings)
    try:
        yield c
    finally:
        c.close()


def as_tuple(r: ConsumerRecord[Any, Any] | Message) -> tuple[Any, ...]:
    """What both clients must agree on for one record."""
    if isinstance(r, ConsumerRecord):
        return (r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers))
    assert r.error() is None, r.error()
    return (r.partition(), r.offset(), r.timestamp()[1], r.key(), r.value(), r.headers() or [])


def their_read(bootstrap: str, topic: str, starts: dict[int, int], n: int) -> list[Message]:
    """librdkafka reads ``n`` records starting at the given offset of each partition."""
    out: list[Message] = []
    with their_consumer(bootstrap) as c:
        c.assign([CTopicPartition(topic, p, off) for p, off in starts.items()])
        for _ in range(200):
            if len(out) >= n:
                break
            out.extend(m for m in c.consume(n - len(out), timeout=0.2) if m.error() is None)
    assert len(out) == n
    return out


def by_partition(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(records, key=lambda t: (t[0], t[1]))


# -- (1) a mixed group ----------------------------------------------------------------------


class Peer:
    """A librdkafka group member polling in a worker thread; records and its assignment
    are kept for the test to read (under a lock: the thread writes them)."""

    def __init__(self, bootstrap: str, group: str, topic: str, strategy: str) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.records: list[tuple[Any, ...]] = []
        self.assignment: frozenset[TopicPartition] = frozenset()
        self._settings = dict(
            group=group, **{"session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 300,
                            "partition.assignment.strategy": strategy},
        )  # fmt: skip
        self._bootstrap = bootstrap
        self._topic = topic

    def run(self) -> None:
        with their_consumer(self._bootstrap, **self._settings) as c:
            c.subscribe([self._topic])
            while not self.stop.is_set():
                messages = c.consume(100, timeout=0.05)
                owned = frozenset(TopicPartition(tp.topic, tp.partition) for tp in c.assignment())
                with self.lock:
                    self.assignment = owned
                    self.records.extend(as_tuple(m) for m in messages if m.error() is None)

    def snapshot(self) -> tuple[frozenset[TopicPartition], list[tuple[Any, ...]]]:
        with self.lock:
            return self.assignment, list(self.records)


async def _mixed_group(bootstrap: str, strategy: str) -> None:
    topic = make_topic(bootstrap, 4, 0)
    group = f"mix-{uuid.uuid4().hex[:8]}"
    settings = dict(
        group_id=group, session_timeout_ms=SESSION_MS, heartbeat_interval_ms=300,
        partition_assignment_strategy=[strategy],
    )  # fmt: skip
    ours_got: list[tuple[Any, ...]] = []
    peer = Peer(bootstrap, group, topic, strategy)
    all_tps = {TopicPartition(topic, p) for p in range(4)}
    async with anyio.create_task_group() as tg, consumer(bootstrap, **settings) as ours:
        ours.subscribe([topic])
        tg.start_soon(anyio.to_thread.run_sync, peer.run)
        try:
            with anyio.fail_after(30):
                # Stable split: both own something, together everything, nothing twice.
                while True:
                    for records in (await ours.getmany(timeout_ms=100)).values():
                        ours_got.extend(as_tuple(r) for r in records)
                    mine, (theirs, _) = ours.assignment(), peer.snapshot()
                    if mine and theirs and not mine & theirs and mine | theirs == all_tps:
                        break
            # Records are produced only now, so each must reach exactly the owner of its
            # partition, once (no rebalance can happen while the members stay).
            producer = Producer({"bootstrap.servers": bootstrap})
            for i in range(40):
                producer.produce(topic, key=b"%d" % i, value=b"v%d" % i, partition=i % 4)
            producer.flush(10)
            with anyio.fail_after(15):
                while len(ours_got) + len(peer.snapshot()[1]) < 40:
                    for records in (await ours.getmany(timeout_ms=100)).values():
                        ours_got.extend(as_tuple(r) for r in records)
            await anyio.sleep(0.3)  # a duplicate would show up within a few polls
            for records in (await ours.getmany(timeout_ms=100)).values():
                ours_got.extend(as_tuple(r) for r in records)
            theirs, their_got = peer.snapshot()
            mine = ours.assignment()
            assert mine | theirs == all_tps and not mine & theirs
        finally:
            peer.stop.set()
    assert {r[0] for r in ours_got} <= {tp.partition for tp in mine}
    assert {r[0] for r in their_got} <= {tp.partition for tp in theirs}
    keys = sorted(int(r[3]) for r in ours_got + their_got)
    assert keys == list(range(40))  # every record consumed, none twice


async def test_mixed_group_range(tansu_bootstrap: str) -> None:
    await _mixed_group(tansu_bootstrap, "range")


async def test_mixed_group_cooperative_sticky(tansu_bootstrap: str) -> None:
    await _mixed_group(tansu_bootstrap, "cooperative-sticky")


# -- (2) what ours does, checked against what librdkafka reads and commits ----------------------


async def test_assign_and_seek_read_what_librdkafka_reads(tansu_bootstrap: str) -> None:
    topic = make_topic(tansu_bootstrap, 2, 60)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    async with consumer(tansu_bootstrap) as c:
        c.assign([p0, p1])
        ours = await collect(c, 60)
        theirs = their_read(tansu_bootstrap, topic, {0: 0, 1: 0}, 60)
        assert by_partition([as_tuple(r) for r in ours]) == by_partition(
            [as_tuple(m) for m in theirs]
        )
        # Seek both partitions into the middle of what is stored (records are written
        # in several batches, so these offsets fall inside batches too).
        c.seek(p0, 7)
        c.seek(p1, 23)
        ours = await collect(c, (30 - 7) + (30 - 23))
        theirs = their_read(tansu_bootstrap, topic, {0: 7, 1: 23}, (30 - 7) + (30 - 23))
        assert by_partition([as_tuple(r) for r in ours]) == by_partition(
            [as_tuple(m) for m in theirs]
        )
        # Reassigning to one partition drops the other; positions persist for the kept one.
        c.assign([p1])
        c.seek(p1, 29)
        [last] = await collect(c, 1)
        assert as_tuple(last) == as_tuple(their_read(tansu_bootstrap, topic, {1: 29}, 1)[0])
        assert await c.getmany(timeout_ms=200) == {}


async def test_pause_resume_commit_handover_to_librdkafka(tansu_bootstrap: str) -> None:
    """Ours reads part of p0, pauses it, commits what it delivered; librdkafka in the same
    group continues from there: together they read p0 exactly once, in order."""
    topic = make_topic(tansu_bootstrap, 2, 80)
    group = f"g-{uuid.uuid4().hex[:8]}"
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    async with consumer(tansu_bootstrap, group_id=group) as c:
        c.assign([p0, p1])
        got = await c.getmany(p0, timeout_ms=5000, max_records=13)
        first = got[p0]
        assert [r.offset for r in first] == list(range(13))
        c.pause(p0)
        others = await collect(c, 40)
        assert {r.partition for r in others} == {1}  # nothing more from paused p0
        assert await c.position(p0) == 13
        await c.commit()
        c.resume(p0)
        rest_ours = await collect(c, 27)
        assert [r.offset for r in rest_ours] == list(range(13, 40))
    with their_consumer(tansu_bootstrap, group) as theirs:
        committed = theirs.committed([CTopicPartition(topic, 0), CTopicPartition(topic, 1)], 10)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, 13), (1, 40)]
    # The committed position is where librdkafka starts; it reads what ours resumed with.
    continued = their_read(tansu_bootstrap, topic, {0: committed[0].offset}, 27)
    assert [as_tuple(m) for m in continued] == [as_tuple(r) for r in rest_ours]
    assert [as_tuple(r) for r in first] == [
        as_tuple(m) for m in their_read(tansu_bootstrap, topic, {0: 0}, 13)
    ]


async def test_librdkafka_commit_with_metadata_read_by_ours(tansu_bootstrap: str) -> None:
    topic = make_topic(tansu_bootstrap, 2, 20)
    group = f"g-{uuid.uuid4().hex[:8]}"
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with their_consumer(tansu_bootstrap, group) as theirs:
        theirs.commit(
            offsets=[CTopicPartition(topic, 0, 4, metadata="from-librdkafka"),
                     CTopicPartition(topic, 1, 9)],
            asynchronous=False,
        )  # fmt: skip
        seen = theirs.committed([CTopicPartition(topic, 0), CTopicPartition(topic, 1)], 10)
    async with consumer(tansu_bootstrap, group_id=group) as c:
        found = await c.committed_offsets(p0, p1)
        # Tansu 0.6 does not keep commit metadata (tansu-quirks.md): ours must read back
        # exactly what librdkafka reads back, whatever the broker kept.
        assert found == {
            p0: OffsetAndMetadata(4, seen[0].metadata or "", found[p0].leader_epoch),  # type: ignore[union-attr]
            p1: OffsetAndMetadata(9, seen[1].metadata or "", found[p1].leader_epoch),  # type: ignore[union-attr]
        }
        c.assign([p0, p1])
        assert await c.seek_to_committed() == {p0: 4, p1: 9}
        got = await collect(c, (10 - 4) + (10 - 9))
    theirs_from = their_read(tansu_bootstrap, topic, {0: 4, 1: 9}, 7)
    assert by_partition([as_tuple(r) for r in got]) == by_partition(
        [as_tuple(m) for m in theirs_from]
    )
    # And ours commits with metadata over librdkafka's commit; librdkafka sees the offsets.
    async with consumer(tansu_bootstrap, group_id=group) as c:
        await c.commit({p0: OffsetAndMetadata(6, "ours"), p1: (10, "ours-too")})
        ours_view = await c.committed_offsets(p0, p1)
    with their_consumer(tansu_bootstrap, group) as theirs:
        seen = theirs.committed([CTopicPartition(topic, 0), CTopicPartition(topic, 1)], 10)
    assert [(tp.offset, tp.metadata or "") for tp in seen] == [
        (om.offset, om.metadata) for om in (ours_view[p0], ours_view[p1]) if om is not None
    ]


async def test_offsets_for_times_agree_per_partition(tansu_bootstrap: str) -> None:
    topic = make_topic(tansu_bootstrap, 3, 30, one_per_batch=True)
    tps = [TopicPartition(topic, p) for p in range(3)]
    queries = [BASE_TS, BASE_TS + 14, BASE_TS + 10**9]  # first, middle, beyond the end
    async with consumer(tansu_bootstrap) as c:
        for ts in queries:
            ours = await c.offsets_for_times(dict.fromkeys(tps, ts))
            with their_consumer(tansu_bootstrap) as theirs:
                ref = theirs.offsets_for_times(
                    [CTopicPartition(topic, p, ts) for p in range(3)], 10
                )
            ours_offsets = [(a.offset if a is not None else -1) for a in (ours[tp] for tp in tps)]
            assert ours_offsets == [tp.offset for tp in ref], ts
