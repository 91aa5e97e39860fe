"""Revocation runs in the application's next poll (docs/design-notes/consumer-revocation.md).

* While the application processes a batch for longer than the session timeout, a
  rebalance starts: no revoke callback and no auto-commit happen during the processing,
  heartbeats keep the member in the group, and the JoinGroup waits; the next ``getmany``
  runs the auto-commit (covering the whole processed batch) and the callback, then the
  member joins and the partitions are split.
* If the application does not come back within ``max_poll_interval_ms``, the member
  leaves as in C6: the waiting revocation becomes ``on_partitions_lost``, the peer gets
  everything and the next poll raises ``MaxPollIntervalExceededError``.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import ConsumerRebalanceListener, TopicPartition
from kclient.consumer._errors import MaxPollIntervalExceededError
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, poll_until_split, produce, tps, wait_for

pytestmark = pytest.mark.anyio

TOPIC, GROUP, PARTITIONS = "rip", "rip-group", 4


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []

    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        self.events.append(("revoked", revoked))

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.events.append(("assigned", assigned))

    def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> None:
        self.events.append(("lost", lost))


def committed(cluster: MockCluster) -> dict[int, int]:
    group = cluster.state.group(GROUP, create=False)
    assert group is not None
    return {p: o.offset for (t, p), o in group.offsets.items() if t == TOPIC}


def from_client(cluster: MockCluster, api: int, client: str) -> int:
    return len([r for r in cluster.requests_of(api) if r.client_id == client])


async def test_revocation_waits_for_the_next_poll_and_commits_the_processed_batch() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)
        for p in range(PARTITIONS):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        settings = dict(
            group_id=GROUP,
            partition_assignment_strategy=["range"],  # eager: everything is revoked
            enable_auto_commit=True,
            auto_commit_interval_ms=60_000,  # only the commit before revocation
            max_poll_interval_ms=10_000,
        )
        slow_listener = Recorder()
        slow = make_consumer(cluster, client_id="slow", **settings)
        peer = make_consumer(cluster, client_id="peer", **settings)
        async with slow, peer:
            slow.subscribe([TOPIC], listener=slow_listener)
            batch = await collect(slow, 40)  # the batch being "processed" below
            assert slow_listener.events == [("assigned", frozenset(tps(TOPIC, PARTITIONS)))]
            joins = from_client(cluster, ApiKey.JOIN_GROUP, "slow")
            beats = from_client(cluster, ApiKey.HEARTBEAT, "slow")
            peer.subscribe([TOPIC])
            async with anyio.create_task_group() as tg:

                async def keep_peer_polling() -> None:
                    while True:
                        await peer.getmany(timeout_ms=20)

                tg.start_soon(keep_peer_polling)
                coord = slow._coord
                assert coord is not None
                await wait_for(lambda: coord.has_deferred)  # the revocation is waiting
                await anyio.sleep(1.5)  # processing, past the 1 s session timeout
                assert len(slow_listener.events) == 1  # no callback meanwhile
                assert committed(cluster) == {}  # and no commit of the batch
                assert from_client(cluster, ApiKey.JOIN_GROUP, "slow") == joins
                assert from_client(cluster, ApiKey.HEARTBEAT, "slow") > beats + 5
                assert coord.member.generation_id >= 1  # still in the group
                # The next poll runs the revocation: the batch is processed by now.
                await slow.getmany(timeout_ms=0)
                assert slow_listener.events[1] == ("revoked", frozenset(tps(TOPIC, PARTITIONS)))
                assert committed(cluster) == dict.fromkeys(range(PARTITIONS), 10)
                tg.cancel_scope.cancel()
            await poll_until_split([slow, peer], PARTITIONS)
        assert len(batch) == 40
        assert cluster.errors == []


async def test_no_poll_within_max_poll_interval_turns_the_revocation_into_a_loss() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)
        for p in range(PARTITIONS):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        settings = dict(group_id=GROUP, partition_assignment_strategy=["range"])
        slow_listener = Recorder()
        slow = make_consumer(cluster, client_id="slow", max_poll_interval_ms=1500, **settings)
        peer = make_consumer(cluster, client_id="peer", **settings)
        async with slow, peer:
            slow.subscribe([TOPIC], listener=slow_listener)
            await collect(slow, 40)
            peer.subscribe([TOPIC])
            with anyio.fail_after(10):
                while len(peer.assignment()) != PARTITIONS:
                    await peer.getmany(timeout_ms=20)
            everything = frozenset(tps(TOPIC, PARTITIONS))
            assert slow_listener.events == [("assigned", everything), ("lost", everything)]
            assert from_client(cluster, ApiKey.LEAVE_GROUP, "slow") == 1
            with pytest.raises(MaxPollIntervalExceededError):
                await slow.getmany(timeout_ms=0)
            await poll_until_split([slow, peer], PARTITIONS)  # rejoined
        assert cluster.errors == []
