"""A group whose members subscribe to different topics: the leader must assign them all.

The leader's own metadata covers only its subscription; before assigning it has to fetch
metadata for every topic any member named (Java's leader does the same), or members
subscribed to other topics get nothing.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import TopicPartition
from kclient.testing.mock import MockCluster

from ._helpers import collect, make_consumer, produce

pytestmark = pytest.mark.anyio

GROUP = "mixed-subscriptions"


async def test_leader_assigns_topics_only_other_members_subscribe_to() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic("left", partitions=2)
        cluster.create_topic("right", partitions=3)
        for p in range(3):
            produce(cluster, "right", p, [b"r%d" % p])
        async with make_consumer(cluster, group_id=GROUP) as leader:
            leader.subscribe(["left"])
            with anyio.fail_after(10):  # the first member to join leads the group
                while not leader.assignment():
                    await leader.getmany(timeout_ms=50)
            async with make_consumer(cluster, group_id=GROUP) as follower:
                follower.subscribe(["right"])
                want_right = {TopicPartition("right", p) for p in range(3)}
                want_left = {TopicPartition("left", p) for p in range(2)}
                with anyio.fail_after(15):
                    while follower.assignment() != want_right:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(leader.getmany, 50)
                            tg.start_soon(follower.getmany, 50)
                    while leader.assignment() != want_left:
                        await leader.getmany(timeout_ms=50)
                got = await collect(follower, 3)
                assert sorted(r.value for r in got) == [b"r0", b"r1", b"r2"]
        assert cluster.errors == []
