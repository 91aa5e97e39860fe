"""Regression tests for consumer bugs found by the reliability scenarios.

1. membership: a SyncGroup held by the broker past the session timeout (Tansu does)
   expired the member locally the moment the answer arrived; it rejoined under a new
   id and left a ghost member behind (root cause of the cooperative Tansu flake).
2. consumer: ``getmany`` yielded between taking records and returning them, so a
   revocation could finish its listener (and commit) before records of the revoked
   partitions reached the application (C7; seen as C1 duplicates).
3. consumer: cancelling the task that owns the consumer killed the drivers before
   ``close()`` could commit and leave, so close waited its whole timeout and sent no
   LeaveGroup (C11).
4. consumer: leaving ``async with`` on an exception committed (auto-commit) the records
   of the poll being processed (C1 auto-commit variant).
"""

from __future__ import annotations

import pytest

from kclient.consumer.group_types import JoinGroupRequest, RebalanceEventKind, SyncGroupRequest
from kclient.consumer.membership import MemberState
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey
from tests.kclient.unit.test_membership import CONFIG, join_alone, make_member, only

from ._helpers import make_consumer, produce

LATE = CONFIG.session_timeout_ms + 500


@pytest.mark.parametrize("error_code", [0, 27])
def test_sync_held_past_session_timeout_keeps_membership(error_code: int) -> None:
    member = make_member()
    join_alone(member, now=0)
    member.poll(0)  # the ASSIGNED event
    member.request_rejoin("test")
    member.poll(10)  # eager: REVOKED goes out alone, JoinGroup next
    join = only(member.poll(10), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    meta = dict(join.protocols)["range"]
    member.on_join_group_response(
        join, 20, error_code=0, generation_id=2, protocol_name="range",
        leader="other", member_id=join.member_id, members=[],
    )  # fmt: skip
    sync = only(member.poll(20), SyncGroupRequest)
    assert isinstance(sync, SyncGroupRequest) and meta
    member.on_sync_group_response(sync, 20 + LATE, error_code=error_code, assignment=b"")
    result = member.poll(20 + LATE)
    assert RebalanceEventKind.LOST not in [e.kind for e in result.events]
    assert member.member_id == join.member_id and member.generation_id == 2
    if error_code:  # REBALANCE_IN_PROGRESS: rejoin at once, same id
        rejoin = only(result, JoinGroupRequest)
        assert isinstance(rejoin, JoinGroupRequest) and rejoin.member_id == join.member_id
    else:
        assert member.state is MemberState.STABLE


pytestmark_async = pytest.mark.anyio


@pytestmark_async
async def test_cancelling_the_owner_task_still_leaves_the_group() -> None:
    import anyio

    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic("t", partitions=2)
        produce(cluster, "t", 0, [b"x"] * 10)

        async def owner(task_status: anyio.abc.TaskStatus[None]) -> None:
            async with make_consumer(cluster, group_id="g", close_timeout_ms=5000) as c:
                c.subscribe(["t"])
                while not c.assignment():
                    await c.getmany(timeout_ms=50)
                task_status.started()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            await tg.start(owner)
            started = anyio.current_time()
            tg.cancel_scope.cancel()
        assert anyio.current_time() - started < 2  # not the close timeout
        assert len(cluster.requests_of(ApiKey.LEAVE_GROUP)) == 1
        assert cluster.errors == []


@pytestmark_async
async def test_exception_in_handler_commits_only_earlier_polls() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic("t", partitions=1)
        produce(cluster, "t", 0, [b"x"] * 30, per_batch=10)
        settings = dict(group_id="g", enable_auto_commit=True, auto_commit_interval_ms=60_000)
        with pytest.raises(RuntimeError):
            async with make_consumer(cluster, **settings) as c:
                c.subscribe(["t"])
                got = 0
                while got < 10:
                    got += sum(
                        len(v)
                        for v in (await c.getmany(timeout_ms=50, max_records=10 - got)).values()
                    )
                # The next poll marks those 10 processed; the handler dies on this batch.
                while not (batch := await c.getmany(timeout_ms=50, max_records=5)):
                    pass
                raise RuntimeError("handler failed mid-batch")
        group = cluster.state.group("g", create=False)
        assert group is not None
        assert group.offsets[("t", 0)].offset == 10
        assert batch
