"""Group churn against the real Tansu broker (issue 6, reliability.md C1 at scale).

Three members of one group share a 12-partition topic while our producer writes the
records in rounds with ``send_many``; every few seconds one member is stopped and a new
one started in its place:

* *crash*: the member's task is cancelled and the consumer dropped with no commit and
  no LeaveGroup (``hard_kill``); Tansu notices at the session timeout. Every record must
  be processed at least once, and the group's final committed offsets cover the topic.
* *clean*: the member commits what it processed, closes (LeaveGroup) and is restarted.
  Every record must be processed exactly once.

Workers commit after processing each poll, and in ``on_partitions_revoked`` the
processed offsets of the partitions being taken away (callbacks run while the worker is
parked in ``getmany``/``commit``, so "processed" is exact there).

A cooperative-sticky test checks that a third member joining leaves the partitions the
first two keep untouched: no revoke callback for them and their offsets carry on with
no gap or rewind across the rebalance.

Tansu holds every JoinGroup for about half the session timeout
(docs/design-notes/tansu-quirks.md), hence the short session timeouts here. The
300,000-record churn runs are ``slow``; the default suite runs the same scenarios with
60,000 records.
"""

from __future__ import annotations

import random
import uuid
from array import array
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from kclient import (
    AsyncConsumer,
    AsyncProducer,
    ConsumerRebalanceListener,
    KafkaError,
    TopicPartition,
)
from kclient.consumer._errors import CommitFailedError

from .scenarios._helpers import commit_processed, hard_kill

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

PARTITIONS = 12
VALUE = b"v" * 20
GROUP_SETTINGS: dict[str, Any] = dict(
    session_timeout_ms=3000,  # Tansu answers a JoinGroup after ~1.5 s
    heartbeat_interval_ms=200,
    fetch_max_wait_ms=100,
    retry_backoff_ms=50,
    retry_backoff_max_ms=500,
    reconnect_backoff_ms=50,
    reconnect_backoff_max_ms=500,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
)


def create_topic(bootstrap: str) -> str:
    topic = f"churn-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    return topic


@dataclass
class Slot:
    name: str
    crash: bool = False
    scope: anyio.CancelScope | None = None
    started: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    owned: set[int] = field(default_factory=set)  # partitions, per the listener
    processed: int = 0  # records processed since the last assignment


@dataclass
class World:
    bootstrap: str
    topic: str
    group: str
    #: times each (partition, offset) was processed; offsets grow as rounds are written
    counts: list[array[int]] = field(
        default_factory=lambda: [array("H") for _ in range(PARTITIONS)]
    )
    events: list[str] = field(default_factory=list)
    lost: int = 0
    produced: int = 0
    total: int = 0
    distinct: int = 0  # (partition, offset) pairs processed at least once
    stops_mid_stream: int = 0  # restarts made while records were still being written

    def process(self, partition: int, offsets: list[int]) -> None:
        counts = self.counts[partition]
        if len(counts) <= offsets[-1]:
            counts.extend([0] * (offsets[-1] + 1 - len(counts)))
        for offset in offsets:
            if not counts[offset]:
                self.distinct += 1
            counts[offset] += 1

    def processed(self) -> int:
        return self.distinct


def consumer(world: World, **settings: Any) -> AsyncConsumer[bytes, bytes]:
    merged = {**GROUP_SETTINGS, "group_id": world.group, **settings}
    return AsyncConsumer(bootstrap_servers=world.bootstrap, **merged)


async def run_member(world: World, slot: Slot) -> None:
    mine: dict[TopicPartition, int] = {}  # next offset after what this member processed

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
            offsets = {tp: mine.pop(tp) for tp in revoked if tp in mine}
            slot.owned -= {tp.partition for tp in revoked}
            world.events.append(f"{slot.name} revoked {sorted(tp.partition for tp in revoked)}")
            if offsets:
                try:
                    await c.commit(offsets)
                except (KafkaError, CommitFailedError) as exc:
                    world.events.append(f"{slot.name} revoke commit failed: {exc!r}")

        def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
            slot.owned |= {tp.partition for tp in assigned}
            slot.processed = 0
            world.events.append(f"{slot.name} assigned {sorted(tp.partition for tp in assigned)}")

        def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> None:
            for tp in lost:
                mine.pop(tp, None)
            slot.owned -= {tp.partition for tp in lost}
            world.lost += 1
            world.events.append(f"{slot.name} lost {sorted(tp.partition for tp in lost)}")

    c = consumer(world, client_id=slot.name)
    await c.start()
    try:
        with anyio.CancelScope() as slot.scope:
            c.subscribe([world.topic], listener=Listener())
            slot.started.set()
            while True:
                batches = await c.getmany(timeout_ms=100, max_records=500)
                for tp, records in batches.items():
                    world.process(tp.partition, [r.offset for r in records])
                    mine[tp] = records[-1].offset + 1
                    slot.processed += len(records)
                if batches:
                    try:
                        await c.commit({tp: mine[tp] for tp in batches if tp in mine})
                    except (KafkaError, CommitFailedError):
                        pass  # rebalancing or lost: the listener / the next owner takes over
    finally:
        if slot.crash:
            await hard_kill(c)
        else:
            await commit_processed(c, mine, timeout=15)
            await c.close()
        slot.done.set()


async def stop(world: World, slot: Slot, crash: bool) -> None:
    slot.crash = crash
    if world.produced < world.total:
        world.stops_mid_stream += 1
    world.events.append(f"{'crash' if crash else 'stop'} {slot.name} at {world.processed()}")
    await slot.started.wait()
    assert slot.scope is not None
    slot.scope.cancel()
    with anyio.fail_after(20):
        await slot.done.wait()


async def produce_round(producer: AsyncProducer, topic: str, per_partition: int) -> None:
    futures = []
    for p in range(PARTITIONS):
        futures += await producer.send_many(topic, [VALUE] * per_partition, partition=p)
    await producer.flush(30)
    for future in futures:
        await future  # raises if any record was not delivered


async def wait_stable(world: World, slots: list[Slot], timeout: float) -> None:
    """Until every member owns partitions, together all of them, and each has processed
    records since it got them: the group settled and is consuming."""

    def settled() -> bool:
        owned = [p for slot in slots for p in slot.owned]
        # Consuming: new records since the assignment, or nothing left to read.
        busy = all(slot.processed or world.processed() >= world.produced for slot in slots)
        return len(owned) == PARTITIONS == len(set(owned)) and busy

    with anyio.move_on_after(timeout) as waited:
        while not settled():
            await anyio.sleep(0.05)
    if waited.cancelled_caught:
        owners = {slot.name: sorted(slot.owned) for slot in slots}
        raise TimeoutError(f"group did not settle in {timeout} s: {owners}; {world.events[-20:]}")


async def churn(bootstrap: str, total: int, mode: str, restarts: int) -> World:
    """Write ``total`` records in rounds while, ``restarts`` times, a member of the settled
    group is stopped (``mode``: "crash" or "clean") and a new one started in its place;
    returns once every record was processed and every member closed cleanly.

    Each stop waits for the group to settle first: Tansu answers a JoinGroup only after
    half the session timeout and a SyncGroup that finds no assignment after 80% of it, so
    stopping members faster than a rebalance completes would never let it finish.
    """
    world = World(bootstrap, create_topic(bootstrap), f"churn-{uuid.uuid4().hex[:8]}")
    world.total = total
    rng = random.Random(6)
    rounds = 20
    per_partition = total // rounds // PARTITIONS
    assert per_partition * rounds * PARTITIONS == total

    async def produce_all(producer: AsyncProducer) -> None:
        # Spread over about the time the restarts take (~5 s each), so they happen while
        # records keep arriving. On a loaded machine rebalances take longer than that, so
        # the last round also waits for the first two stops: the overlap the scenario is
        # about (checked by check_all_processed) is then certain, not a matter of timing.
        for round_ in range(rounds):
            if round_ == rounds - 1:
                with anyio.fail_after(180):
                    while world.stops_mid_stream < min(2, restarts):
                        await anyio.sleep(0.05)
            await produce_round(producer, world.topic, per_partition)
            world.produced += per_partition * PARTITIONS
            await anyio.sleep(restarts * 5 / rounds)

    async with AsyncProducer(bootstrap_servers=bootstrap, linger_ms=5) as producer:
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce_all, producer)
            slots = [Slot(f"m{i}-0") for i in range(3)]
            for slot in slots:
                tg.start_soon(run_member, world, slot)
            for generation in range(1, restarts + 1):
                await wait_stable(world, slots, 60)
                await anyio.sleep(rng.uniform(0.2, 1.0))  # consume a little longer
                idx = rng.randrange(3)
                await stop(world, slots[idx], crash=mode == "crash")
                slots[idx] = Slot(f"m{idx}-{generation}")
                tg.start_soon(run_member, world, slots[idx])
            with anyio.move_on_after(90) as waited:
                while world.processed() < total:
                    await anyio.sleep(0.1)
            if waited.cancelled_caught:
                raise TimeoutError(
                    f"{world.processed()} of {total} processed; {world.events[-30:]}"
                )
            for slot in slots:
                await stop(world, slot, crash=False)
    return world


async def final_committed(world: World) -> dict[int, int | None]:
    tps = [TopicPartition(world.topic, p) for p in range(PARTITIONS)]
    async with consumer(world) as c:
        return {tp.partition: await c.committed(tp) for tp in tps}


def check_all_processed(world: World, total: int, *, exactly_once: bool) -> None:
    assert world.stops_mid_stream >= 2, world.events  # the churn overlapped the writes
    per_partition = total // PARTITIONS
    for p, counts in enumerate(world.counts):
        assert len(counts) == per_partition, f"partition {p}: {len(counts)} offsets seen"
        missing = [o for o, n in enumerate(counts) if n == 0]
        assert not missing, f"partition {p}: lost offsets {missing[:5]}...; {world.events}"
        if exactly_once:
            dups = [o for o, n in enumerate(counts) if n > 1]
            assert not dups, f"partition {p}: duplicates at {dups[:5]}...; {world.events}"


async def _crash_variant(bootstrap: str, total: int, restarts: int) -> None:
    world = await churn(bootstrap, total, "crash", restarts)
    check_all_processed(world, total, exactly_once=False)
    # The last clean stops committed everything: nothing is left for a restart to redo.
    assert await final_committed(world) == dict.fromkeys(range(PARTITIONS), total // PARTITIONS)


async def _clean_variant(bootstrap: str, total: int, restarts: int) -> None:
    world = await churn(bootstrap, total, "clean", restarts)
    check_all_processed(world, total, exactly_once=True)
    assert world.lost == 0, world.events
    assert await final_committed(world) == dict.fromkeys(range(PARTITIONS), total // PARTITIONS)


async def test_hard_kills_lose_nothing(tansu_bootstrap: str) -> None:
    await _crash_variant(tansu_bootstrap, 60_000, restarts=4)


async def test_graceful_restarts_process_exactly_once(tansu_bootstrap: str) -> None:
    await _clean_variant(tansu_bootstrap, 60_000, restarts=4)


@pytest.mark.slow
async def test_hard_kills_lose_nothing_300k(tansu_bootstrap: str) -> None:
    await _crash_variant(tansu_bootstrap, 300_000, restarts=10)


@pytest.mark.slow
async def test_graceful_restarts_process_exactly_once_300k(tansu_bootstrap: str) -> None:
    await _clean_variant(tansu_bootstrap, 300_000, restarts=10)


# -- cooperative rebalance -------------------------------------------------------------------


@dataclass
class Tracked:
    """One member's view: what it processed per partition and what it was told."""

    name: str
    offsets: dict[int, list[int]] = field(default_factory=dict)
    revoked: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)
    assigned: list[frozenset[int]] = field(default_factory=list)


# This used to stall in about half the runs: after a follower's SyncGroup failed with
# REBALANCE_IN_PROGRESS, it rejoined claiming its partitions under the failed generation,
# Tansu saw changed metadata and started yet another rebalance. The member now claims the
# generation whose SyncGroup assigned them (GroupMember.owned_generation), as librdkafka
# does (docs/design-notes/tansu-quirks.md, "Cooperative rebalance").
async def test_cooperative_join_leaves_kept_partitions_untouched(tansu_bootstrap: str) -> None:
    world = World(tansu_bootstrap, create_topic(tansu_bootstrap), f"coop-{uuid.uuid4().hex[:8]}")
    settings = {"partition_assignment_strategy": ["cooperative-sticky"]}
    members: list[tuple[Tracked, AsyncConsumer[bytes, bytes]]] = []
    stop_producing = anyio.Event()

    def listener(t: Tracked) -> ConsumerRebalanceListener:
        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
                t.revoked |= {tp.partition for tp in revoked}

            def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
                t.assigned.append(frozenset(tp.partition for tp in assigned))

            def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> None:
                t.lost |= {tp.partition for tp in lost}

        return Listener()

    async def poll(t: Tracked, c: AsyncConsumer[bytes, bytes]) -> None:
        batches = await c.getmany(timeout_ms=50, max_records=200)
        for tp, records in batches.items():
            t.offsets.setdefault(tp.partition, []).extend(r.offset for r in records)
        if batches:
            try:
                await c.commit()
            except (KafkaError, CommitFailedError):
                pass  # a rebalance is under way; the next poll commits

    async def producing(producer: AsyncProducer) -> None:
        while not stop_producing.is_set():
            await produce_round(producer, world.topic, 50)
            await anyio.sleep(0.1)

    async def polled_until(condition: Any, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            while not condition():
                for t, c in members:
                    await poll(t, c)
            return
        owners = {t.name: sorted(tp.partition for tp in c.assignment()) for t, c in members}
        raise TimeoutError(f"{condition.__name__} not reached in {timeout} s: {owners} {members}")

    def split_ok() -> bool:
        owned = [tp for _, c in members for tp in c.assignment()]
        # Balanced: cooperative-sticky gets there in two rounds (revoke, then assign).
        return len(owned) == PARTITIONS == len(set(owned)) and all(
            len(c.assignment()) == PARTITIONS // len(members) for _, c in members
        )

    async with AsyncProducer(bootstrap_servers=tansu_bootstrap, linger_ms=5) as producer:
        async with anyio.create_task_group() as tg:
            tg.start_soon(producing, producer)
            for name in ("a", "b"):
                t = Tracked(name)
                c = consumer(world, client_id=name, **settings)
                await c.start()
                c.subscribe([world.topic], listener=listener(t))
                members.append((t, c))
            try:
                await polled_until(split_ok, 30)
                # Both consume for a while before the third member arrives.
                marks = {t.name: sum(map(len, t.offsets.values())) for t, _ in members}
                await polled_until(
                    lambda: all(
                        sum(map(len, t.offsets.values())) > marks[t.name] for t, _ in members
                    ),
                    10,
                )
                before = {t.name: {tp.partition for tp in c.assignment()} for t, c in members}
                revoked_before = {t.name: set(t.revoked) for t, _ in members}
                counts_before = {
                    t.name: {p: len(t.offsets.get(p, [])) for p in before[t.name]}
                    for t, _ in members
                }
                t3 = Tracked("c")
                c3 = consumer(world, client_id="c", **settings)
                await c3.start()
                c3.subscribe([world.topic], listener=listener(t3))
                members.append((t3, c3))
                # Two rounds (revoke, then assign): ~10 s on Tansu when the joins line up.
                await polled_until(split_ok, 60)
                after = {t.name: {tp.partition for tp in c.assignment()} for t, c in members}
                kept = {name: before[name] & after[name] for name in before}
                # Every kept partition moves on after the rebalance.
                await polled_until(
                    lambda: all(
                        len(t.offsets.get(p, [])) > counts_before[t.name][p]
                        for t, _ in members[:2]
                        for p in kept[t.name]
                    ),
                    15,
                )
                # Closing revokes (or loses) everything: look at the callbacks before.
                revoked = {t.name: t.revoked - revoked_before[t.name] for t, _ in members[:2]}
                lost = {t.name: set(t.lost) for t, _ in members}
            finally:
                stop_producing.set()
                for _, c in reversed(members):  # task groups unwind in reverse order
                    await c.close()
    assert after["c"], "the new member got nothing"
    for t, _ in members[:2]:
        assert kept[t.name], f"{t.name} kept no partition: {before} -> {after}"
        assert before[t.name] - after[t.name], f"{t.name} gave nothing up"
        assert not lost[t.name], f"{t.name} lost {lost[t.name]}"
        # Revoked only what moved; kept partitions never saw a callback.
        assert revoked[t.name] == before[t.name] - after[t.name], (t.name, before, after)
        for p in kept[t.name]:
            seen = t.offsets[p]
            assert seen == list(range(seen[0], seen[0] + len(seen))), (
                f"{t.name} partition {p}: offsets jumped or rewound across the rebalance"
            )
