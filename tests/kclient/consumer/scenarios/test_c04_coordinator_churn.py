"""C4: coordinator churn (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
COORDINATOR_LOAD_IN_PROGRESS on join, heartbeat, offset fetch and commit; the coordinator
broker going down).

Must hold (reliability.md C4): the errors never surface from ``getmany``; FindCoordinator
is retried with capped exponential backoff (no hot loop: a bounded number of lookups while
the coordinator is down); commits retry coordinator trouble and then succeed, and
concurrent commits in flight while the coordinator is down all resolve (succeed or
raise), none hangs.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import KafkaError, TopicPartition
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce, wait_for

pytestmark = pytest.mark.anyio

TOPIC, GROUP = "c4", "c4-group"
LOAD, NOT_AVAILABLE, NOT_COORDINATOR = 14, 15, 16


def committed(cluster: MockCluster) -> dict[int, int]:
    group = cluster.state.group(GROUP, create=False)
    assert group is not None
    return {p: o.offset for (t, p), o in group.offsets.items() if t == TOPIC}


async def test_coordinator_errors_are_retried_and_hidden_from_poll() -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic(TOPIC, partitions=3)
        for p in range(3):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        cluster.fail_next(ApiKey.FIND_COORDINATOR, NOT_AVAILABLE, count=2)
        cluster.fail_next(ApiKey.JOIN_GROUP, LOAD, count=2)
        cluster.fail_next(ApiKey.JOIN_GROUP, NOT_COORDINATOR)
        cluster.fail_next(ApiKey.JOIN_GROUP, NOT_AVAILABLE)
        cluster.fail_next(ApiKey.OFFSET_FETCH, LOAD, count=2)
        async with make_consumer(cluster, group_id=GROUP) as c:
            c.subscribe([TOPIC])
            assert len(await collect(c, 30)) == 30  # getmany raised nothing
            # Heartbeat trouble, then the coordinator moves to another broker.
            finds = len(cluster.requests_of(ApiKey.FIND_COORDINATOR))
            old = cluster.group_coordinator(GROUP)
            new = next(b for b in cluster.broker_ids if b != old)
            cluster.fail_next(ApiKey.HEARTBEAT, LOAD)
            cluster.fail_next(ApiKey.HEARTBEAT, NOT_AVAILABLE)
            await wait_for(lambda: not cluster.faults.errors[-1].count)
            cluster.move_group_coordinator(GROUP, new)
            await wait_for(lambda: len(cluster.requests_of(ApiKey.HEARTBEAT, broker=new)) > 0)
            assert len(cluster.requests_of(ApiKey.FIND_COORDINATOR)) > finds
            # Commit: load in progress and a stale coordinator are retried, then succeed.
            cluster.fail_next(ApiKey.OFFSET_COMMIT, LOAD)
            cluster.fail_next(ApiKey.OFFSET_COMMIT, NOT_COORDINATOR)
            await c.commit()
            assert committed(cluster) == {0: 10, 1: 10, 2: 10}
            assert len(cluster.requests_of(ApiKey.OFFSET_COMMIT)) == 3
            for p in range(3):
                produce(cluster, TOPIC, p, [b"b"] * 2)
            assert {r.value for r in await collect(c, 6)} == {b"b"}
        assert cluster.errors == []


async def test_coordinator_broker_down_commits_resolve_and_lookups_back_off() -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic(TOPIC, partitions=3)
        for p in range(3):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        async with make_consumer(cluster, group_id=GROUP) as c:
            c.subscribe([TOPIC])
            await collect(c, 30)
            await c.commit()
            coordinator = cluster.group_coordinator(GROUP)
            finds = len(cluster.requests_of(ApiKey.FIND_COORDINATOR))
            await cluster.broker_down(coordinator)
            outcomes: list[str] = []

            async def commit_one(partition: int) -> None:
                try:
                    await c.commit({TopicPartition(TOPIC, partition): 10}, timeout_ms=1000)
                except KafkaError as exc:
                    outcomes.append(type(exc).__name__)
                else:
                    outcomes.append("ok")

            with anyio.fail_after(10):  # every commit in flight resolves
                async with anyio.create_task_group() as tg:
                    for p in range(3):
                        tg.start_soon(commit_one, p)
                    while len(outcomes) < 3:
                        await c.getmany(timeout_ms=50)  # nothing surfaces from poll
            assert len(outcomes) == 3 and "ok" not in outcomes, outcomes
            await anyio.sleep(1)
            # ~1.5 s of lookups at 20 ms doubling to a 200 ms cap: about a dozen, not a
            # hot loop (COORDINATOR_NOT_AVAILABLE comes back at once every time).
            lookups = len(cluster.requests_of(ApiKey.FIND_COORDINATOR)) - finds
            assert 2 <= lookups <= 40, lookups
            await cluster.broker_up(coordinator)
            for p in range(3):
                produce(cluster, TOPIC, p, [b"b"] * 2)
            # The coordinator was down longer than the session timeout, so membership is
            # lost: the consumer rejoins and resumes at the committed offsets.
            assert {r.value for r in await collect(c, 6)} == {b"b"}
            await c.commit()
            assert committed(cluster) == {0: 12, 1: 12, 2: 12}
        assert cluster.errors == []
