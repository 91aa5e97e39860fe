"""C2: REBALANCE_IN_PROGRESS on commit.

Must hold (reliability.md C2): the commit raises ``RebalanceInProgressError`` promptly,
with no blind retry (one OffsetCommit on the wire, or none when the consumer is already
rejoining); the consumer rejoins and fetching resumes.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import TopicPartition
from kclient.testing.mock import MockCluster
from protocol.errors import RebalanceInProgressError
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, poll_until_split, produce

pytestmark = pytest.mark.anyio

TOPIC, GROUP = "c2", "c2-group"
REBALANCE_IN_PROGRESS = 27


async def test_commit_answered_rebalance_in_progress_raises_and_rejoins() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in range(2):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        async with make_consumer(cluster, group_id=GROUP) as c:
            c.subscribe([TOPIC])
            assert len(await collect(c, 20)) == 20
            await c.commit()  # offsets 10 committed
            joins = len(cluster.requests_of(ApiKey.JOIN_GROUP))
            commits = len(cluster.requests_of(ApiKey.OFFSET_COMMIT))
            cluster.fail_next(ApiKey.OFFSET_COMMIT, REBALANCE_IN_PROGRESS)
            with pytest.raises(RebalanceInProgressError):
                await c.commit()
            assert len(cluster.requests_of(ApiKey.OFFSET_COMMIT)) == commits + 1  # no retry
            # The consumer rejoins and fetching resumes at the committed offsets. The eager
            # revocation runs in the application's next poll, so the JoinGroup follows it
            # (consumer-revocation.md).
            with anyio.fail_after(10):
                while len(cluster.requests_of(ApiKey.JOIN_GROUP)) <= joins:
                    assert await c.getmany(timeout_ms=20) == {}
            for p in range(2):
                produce(cluster, TOPIC, p, [b"b"] * 5)
            got = await collect(c, 10)
            assert sorted((r.partition, r.offset, r.value) for r in got) == [
                (p, o, b"b") for p in range(2) for o in range(10, 15)
            ]
            await c.commit()  # the new generation commits fine
            group = cluster.state.group(GROUP, create=False)
            assert group is not None
            assert {group.offsets[(TOPIC, p)].offset for p in range(2)} == {15}
        assert cluster.errors == []


async def test_commit_while_rejoining_fails_fast_without_a_request() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in range(2):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        async with make_consumer(cluster, group_id=GROUP, client_id="first") as c:
            c.subscribe([TOPIC])
            await collect(c, 20)
            coord = c._coord
            assert coord is not None
            # A second member makes the group rebalance; hold the JoinGroup answers so the
            # first member sits in its JoinGroup round trip.
            cluster.delay_next(ApiKey.JOIN_GROUP, 0.5, count=4)
            async with make_consumer(cluster, group_id=GROUP, client_id="second") as d:
                d.subscribe([TOPIC])
                with anyio.fail_after(10):  # the drivers join without polls
                    while coord.member._join_in_flight is None:
                        await c.getmany(timeout_ms=10)
                commits = len(cluster.requests_of(ApiKey.OFFSET_COMMIT))
                with pytest.raises(RebalanceInProgressError):
                    await c.commit({TopicPartition(TOPIC, 0): 10})
                assert len(cluster.requests_of(ApiKey.OFFSET_COMMIT)) == commits
                await poll_until_split([c, d], 2)
                produce(cluster, TOPIC, 0, [b"b"] * 3)
                produce(cluster, TOPIC, 1, [b"b"] * 3)
                with anyio.fail_after(10):
                    seen: list[bytes] = []
                    while seen.count(b"b") < 6:
                        for x in (c, d):
                            for rs in (await x.getmany(timeout_ms=20)).values():
                                seen.extend(r.value for r in rs if r.value is not None)
        assert cluster.errors == []
