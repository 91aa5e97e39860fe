"""C7: a rebalance while a fetch is in flight (eager and cooperative variants).

Setup: member A owns both partitions of the topic, each led by its own broker (the group
coordinator sits on a third one, so group traffic is never stuck behind a fetch). A
pauses, records are written, the next Fetch to each leader is held by the mock for 3 s,
and A resumes: both fetches are now in flight *with data*. Member B joins; A gives up a
partition while its fetch is still out; the held answers arrive after the rebalance.

Must hold (reliability.md C7): no record of a partition is handed to A once
``on_partitions_revoked`` ran for it (until it is assigned again); the new owner's first
record of a moved partition is exactly the committed offset, which is A's processed end:
no gap, no duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from kclient import AsyncConsumer, ConsumerRebalanceListener, KafkaError, TopicPartition
from kclient.consumer._errors import CommitFailedError
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import make_consumer, produce, tps, wait_for

pytestmark = pytest.mark.anyio

TOPIC, GROUP, PARTITIONS = "c7", "c7-group", 2
FIRST, SECOND = 30, 20  # records per partition before and after the pause
HOLD_S = 3.0


@dataclass
class Member:
    name: str
    cluster: MockCluster
    consumer: AsyncConsumer[bytes, bytes] | None = None
    owned: set[TopicPartition] = field(default_factory=set)
    processed: dict[TopicPartition, int] = field(default_factory=dict)  # next offset
    offsets: dict[TopicPartition, list[int]] = field(default_factory=dict)
    first_after_assign: dict[TopicPartition, int] = field(default_factory=dict)
    committed_at_assign: dict[TopicPartition, int | None] = field(default_factory=dict)
    fetch_in_flight_at_revoke: dict[TopicPartition, bool] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    revoked: list[frozenset[TopicPartition]] = field(default_factory=list)

    def committed(self, tp: TopicPartition) -> int | None:
        group = self.cluster.state.group(GROUP, create=False)
        entry = None if group is None else group.offsets.get((tp.topic, tp.partition))
        return None if entry is None else entry.offset


def listener_for(m: Member) -> ConsumerRebalanceListener:
    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
            c = m.consumer
            assert c is not None and c._fetch is not None
            for tp in revoked:
                leader = m.cluster.leader_of(tp.topic, tp.partition)
                m.fetch_in_flight_at_revoke[tp] = leader in c._fetch._in_flight
            m.owned -= revoked
            m.revoked.append(revoked)
            done = {tp: m.processed[tp] for tp in revoked if tp in m.processed}
            if done:
                await c.commit(done)  # the generation is still valid here

        def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
            m.owned |= assigned
            for tp in assigned:
                m.committed_at_assign[tp] = m.committed(tp)
                m.first_after_assign.pop(tp, None)

    return Listener()


async def poll_once(m: Member) -> None:
    c = m.consumer
    assert c is not None
    batches = await c.getmany(timeout_ms=20)
    for tp, records in batches.items():
        if tp not in m.owned:
            m.violations.append(f"{m.name} got {tp} offsets {records[0].offset}.. unowned")
        m.first_after_assign.setdefault(tp, records[0].offset)
        m.offsets.setdefault(tp, []).extend(r.offset for r in records)
        m.processed[tp] = records[-1].offset + 1
    if batches:
        try:
            await c.commit({tp: m.processed[tp] for tp in batches})
        except (KafkaError, CommitFailedError):
            pass  # a rebalance started: the revoke callback commits what was processed


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
async def test_no_revoked_record_is_returned_and_new_owner_starts_at_commit(
    strategy: str,
) -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)  # leaders: brokers 1 and 2
        cluster.move_group_coordinator(GROUP, 3)
        for p in range(PARTITIONS):
            produce(cluster, TOPIC, p, [b"a"] * FIRST, per_batch=10)
        settings: dict[str, Any] = {"group_id": GROUP, "partition_assignment_strategy": [strategy]}
        a, b = Member("a", cluster), Member("b", cluster)
        a.consumer = make_consumer(cluster, client_id="a", **settings)
        b.consumer = make_consumer(cluster, client_id="b", **settings)
        all_tps = set(tps(TOPIC, PARTITIONS))
        async with a.consumer as ca, b.consumer as cb:
            ca.subscribe([TOPIC], listener=listener_for(a))
            with anyio.fail_after(10):
                while sum(len(v) for v in a.offsets.values()) < FIRST * PARTITIONS:
                    await poll_once(a)
            # Both partitions paused: no fetch goes out while the next records are written,
            # then the next Fetch to each leader is held with those records in it.
            ca.pause(*all_tps)
            await anyio.sleep(0.2)  # long polls planned before the pause come back
            for p in range(PARTITIONS):
                produce(cluster, TOPIC, p, [b"b"] * SECOND, per_batch=10)
            before = len(cluster.requests_of(ApiKey.FETCH))
            for broker in (1, 2):
                cluster.delay_next(ApiKey.FETCH, HOLD_S, broker=broker)
            ca.resume(*all_tps)
            await wait_for(lambda: len(cluster.requests_of(ApiKey.FETCH)) >= before + 2)
            cb.subscribe([TOPIC], listener=listener_for(b))
            with anyio.fail_after(15):
                while True:
                    await poll_once(a)
                    await poll_once(b)
                    ends = {
                        tp: max(a.processed.get(tp, 0), b.processed.get(tp, 0)) for tp in all_tps
                    }
                    split = a.owned and b.owned and not a.owned & b.owned
                    if split and all(e == FIRST + SECOND for e in ends.values()):
                        break
            # Close revokes everything: keep the state the rebalance left.
            a_owned, moved, a_revoked = set(a.owned), set(b.owned), list(a.revoked)
        assert cluster.errors == []
    assert a.violations == [] and b.violations == []
    assert len(moved) == 1 and a_owned == all_tps - moved
    (tp,) = moved
    # The partition moved while its fetch (holding records FIRST..) was in flight.
    assert a.fetch_in_flight_at_revoke.get(tp) is True
    if strategy == "cooperative-sticky":
        assert a_revoked == [frozenset(moved)]  # the partition A keeps is never revoked
    # B starts exactly at the committed offset, which is where A stopped.
    assert b.committed_at_assign[tp] == a.processed[tp]
    assert b.first_after_assign[tp] == b.committed_at_assign[tp]
    # Together, each record of the moved partition was processed exactly once.
    assert sorted(a.offsets[tp] + b.offsets[tp]) == list(range(FIRST + SECOND))
    (kept,) = a_owned
    assert sorted(set(a.offsets[kept])) == list(range(FIRST + SECOND))
