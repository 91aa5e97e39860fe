"""C11: close while busy (during a rebalance, with a commit pending, the coordinator not
answering commits).

Setup: member A (auto-commit on) has handed out records and sits in a stable group; the
coordinator then stops answering OffsetCommit (each one is held for 30 s, which also
stalls everything behind it on that connection, heartbeats included); the application
starts a commit that hangs; member B joins, so the group is rebalancing; A closes with a
3 s budget.

Must hold (reliability.md C11): ``close(timeout)`` returns within the timeout; the final
commit gets only part of the budget, so LeaveGroup is still sent (and B takes every
partition long before A's session would expire); at most one final commit is sent;
the pending commit resolves; no task of the consumer outlives ``close()``.
"""

from __future__ import annotations

import time

import anyio
import pytest

from kclient import KafkaError, TopicPartition
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce, wait_for

pytestmark = pytest.mark.anyio

TOPIC, GROUP, PARTITIONS = "c11", "c11-group", 2
BUDGET_S = 3.0
HOLD_S = 30.0


def from_client(cluster: MockCluster, api: int, client: str, after: int = 0) -> int:
    return len([r for r in cluster.requests_of(api)[after:] if r.client_id == client])


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
async def test_close_during_rebalance_with_commit_pending(strategy: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)
        coordinator = 2
        cluster.move_group_coordinator(GROUP, coordinator)
        for p in range(PARTITIONS):
            produce(cluster, TOPIC, p, [b"x"] * 20)
        settings = dict(
            group_id=GROUP,
            enable_auto_commit=True,
            auto_commit_interval_ms=60_000,  # only the final commit is automatic here
            partition_assignment_strategy=[strategy],
            session_timeout_ms=10_000,  # B must get the partitions by A's LeaveGroup
        )
        a = make_consumer(cluster, client_id="a", close_timeout_ms=60_000, **settings)
        b = make_consumer(cluster, client_id="b", **settings)
        async with b, anyio.create_task_group() as tg:
            await a.start()
            a.subscribe([TOPIC])
            await collect(a, 40)
            assert a.assignment() == {TopicPartition(TOPIC, p) for p in range(PARTITIONS)}
            # The coordinator stops answering commits.
            cluster.delay_next(ApiKey.OFFSET_COMMIT, HOLD_S, count=20, broker=coordinator)
            commits_before = len(cluster.requests_of(ApiKey.OFFSET_COMMIT))
            pending: list[BaseException | None] = []
            resolved = anyio.Event()

            async def app_commit() -> None:
                try:
                    await a.commit(timeout_ms=HOLD_S * 1000)
                    pending.append(None)
                except KafkaError as exc:
                    pending.append(exc)
                resolved.set()

            tg.start_soon(app_commit)
            await wait_for(
                lambda: from_client(cluster, ApiKey.OFFSET_COMMIT, "a", commits_before) == 1
            )
            b.subscribe([TOPIC])  # the group starts rebalancing
            await wait_for(lambda: from_client(cluster, ApiKey.JOIN_GROUP, "b") >= 2)
            journal_at_close = len(cluster.requests)
            started = time.monotonic()
            await a.close(timeout_ms=BUDGET_S * 1000)
            elapsed = time.monotonic() - started
            with anyio.fail_after(5):  # it resolves (when is not the point)
                await resolved.wait()
            after_close = len(cluster.requests_of(ApiKey.OFFSET_COMMIT))
            # Within the budget, not the 30 s hold: the slack is for a loaded machine
            # waking the last timer late, not for close() overrunning.
            assert elapsed <= BUDGET_S + 1.5, elapsed
            assert len(pending) == 1 and isinstance(pending[0], KafkaError)
            later = cluster.requests[journal_at_close:]
            final_commits = [
                r for r in later if r.api_key == ApiKey.OFFSET_COMMIT and r.client_id == "a"
            ]
            assert len(final_commits) <= 1
            assert after_close - commits_before <= 2  # the pending one + at most one final
            leaves = [r for r in later if r.api_key == ApiKey.LEAVE_GROUP and r.client_id == "a"]
            assert len(leaves) == 1
            # Every driver task ended: close() left the consumer's task group (anyio
            # waits for all of a group's children on exit).
            assert a._outer is None
            # B owns everything well before A's 10 s session would have expired.
            with anyio.fail_after(5):
                while len(b.assignment()) != PARTITIONS:
                    await b.getmany(timeout_ms=20)
            cluster.clear_faults()  # B's own final commit is not under test
        assert cluster.errors == []
