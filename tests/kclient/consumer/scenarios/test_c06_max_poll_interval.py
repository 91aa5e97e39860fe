"""C6: max.poll.interval exceeded (scaled: session 1 s, max poll interval 3 s; the slow
member's handler awaits until the peer owns everything).

Must hold (reliability.md C6): the heartbeat keeps the *session* alive while the handler
runs (the broker still counts the member past the session timeout); at the poll interval
the client leaves the group (LeaveGroup with its member id); the peer gets every
partition; the slow consumer's commit fails with ``CommitFailedError`` and its next poll
raises ``MaxPollIntervalExceededError``; it rejoins on the following polls.
"""

from __future__ import annotations

import anyio
import pytest

from kclient.consumer._errors import CommitFailedError, MaxPollIntervalExceededError
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import make_consumer, poll_until_split, produce, tps

pytestmark = pytest.mark.anyio

TOPIC, GROUP, PARTITIONS = "c6", "c6-group", 4


def group_members(cluster: MockCluster) -> set[str]:
    group = cluster.state.group(GROUP, create=False)
    return set() if group is None else set(group.members)


async def test_slow_handler_leaves_group_and_rejoins() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)
        for p in range(PARTITIONS):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        slow = make_consumer(cluster, group_id=GROUP, client_id="slow", max_poll_interval_ms=3000)
        peer = make_consumer(cluster, group_id=GROUP, client_id="peer")
        async with slow, peer:
            slow.subscribe([TOPIC])
            peer.subscribe([TOPIC])
            await poll_until_split([slow, peer], PARTITIONS)
            member_id = slow._coord.member.member_id  # type: ignore[union-attr]
            mine = slow.assignment()
            beats = len([r for r in cluster.requests_of(ApiKey.HEARTBEAT) if r.client_id == "slow"])

            async def keep_peer_polling() -> None:
                while True:
                    await peer.getmany(timeout_ms=20)

            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_peer_polling)
                # The slow handler: past the session timeout the member is still in the
                # group, kept alive by heartbeats, not by polls. (The poll interval leaves
                # 1.8 s of slack for a loaded machine to wake this task late.)
                await anyio.sleep(1.2)
                assert member_id in group_members(cluster)
                assert slow.assignment() == mine
                # Past max_poll_interval: the member left, the peer owns everything.
                with anyio.fail_after(10):
                    while peer.assignment() != set(tps(TOPIC, PARTITIONS)):
                        await anyio.sleep(0.02)
                tg.cancel_scope.cancel()
            slow_beats = [r for r in cluster.requests_of(ApiKey.HEARTBEAT) if r.client_id == "slow"]
            assert len(slow_beats) > beats + 5
            leaves = [r for r in cluster.requests_of(ApiKey.LEAVE_GROUP) if r.client_id == "slow"]
            assert len(leaves) == 1
            request = leaves[0].request
            left = [m.member_id for m in request.members] or [request.member_id]  # type: ignore[attr-defined]
            assert left == [member_id]
            assert member_id not in group_members(cluster)
            assert slow.assignment() == set()
            with pytest.raises(CommitFailedError):
                await slow.commit({tp: 1 for tp in mine})
            with pytest.raises(MaxPollIntervalExceededError):
                await slow.getmany(timeout_ms=0)
            await poll_until_split([slow, peer], PARTITIONS)  # rejoined
        assert cluster.errors == []
