"""GroupMember: table-style scenarios on a manual clock, plus a simulated group."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from kclient.consumer._errors import CommitFailedError, ErrorCode, MaxPollIntervalExceededError
from kclient.consumer.assignors import CooperativeStickyAssignor, RangeAssignor
from kclient.consumer.assignors.base import PartitionAssignor
from kclient.consumer.group_protocol import ConsumerGroupProtocol
from kclient.consumer.group_types import (
    ExponentialBackoff,
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinedMember,
    JoinGroupRequest,
    LeaveGroupRequest,
    MemberConfig,
    PollResult,
    RebalanceEventKind,
    SyncGroupRequest,
)
from kclient.consumer.membership import GroupMember, MemberState
from kclient.errors import IllegalStateError
from kclient.structs import TopicPartition as TP
from protocol.errors import FencedInstanceIdError, RebalanceInProgressError

COUNTS = {"t": 4}
CONFIG = MemberConfig(
    group_id="g", session_timeout_ms=6_000, heartbeat_interval_ms=1_000, max_poll_interval_ms=10_000
)


def make_member(
    assignor: PartitionAssignor | None = None, config: MemberConfig = CONFIG, now: int = 0
) -> GroupMember:
    protocol = ConsumerGroupProtocol([assignor or RangeAssignor()], lambda: COUNTS)
    member = GroupMember(config, protocol, now=now, rng=random.Random(1))
    member.set_subscription({"t"})
    return member


def only(result: PollResult, kind: type[object]) -> object:
    assert len(result.requests) == 1, result.requests
    request = result.requests[0]
    assert isinstance(request, kind), request
    return request


def join_alone(member: GroupMember, now: int = 0, generation: int = 1) -> None:
    """Drive a lone member (its own leader) to STABLE."""
    if member.coordinator is None:
        find = only(member.poll(now), FindCoordinatorRequest)
        assert isinstance(find, FindCoordinatorRequest)
        member.on_find_coordinator_response(find, now, error_code=0, node_id=7)
    result = member.poll(now)
    if result.events:
        result = member.poll(now)
    join = only(result, JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    mid = join.member_id or "m1"
    meta = dict(join.protocols)[join.protocols[0][0]]
    member.on_join_group_response(
        join,
        now,
        error_code=0,
        generation_id=generation,
        protocol_name=join.protocols[0][0],
        leader=mid,
        member_id=mid,
        members=[JoinedMember(mid, join.group_instance_id, meta)],
    )
    sync = only(member.poll(now), SyncGroupRequest)
    assert isinstance(sync, SyncGroupRequest)
    member.on_sync_group_response(sync, now, error_code=0, assignment=dict(sync.assignments)[mid])
    assert member.state is MemberState.STABLE


def kinds(result: PollResult) -> list[tuple[RebalanceEventKind, frozenset[TP]]]:
    return [(e.kind, e.partitions) for e in result.events]


ALL = frozenset(TP("t", p) for p in range(4))


def test_happy_path_and_heartbeat_schedule() -> None:
    m = make_member()
    join_alone(m)
    assert kinds(m.poll(0)) == [(RebalanceEventKind.ASSIGNED, ALL)]
    assert m.poll(500).requests == []
    assert m.poll(500).deadline == 1_000
    hb = only(m.poll(1_000), HeartbeatRequest)
    assert isinstance(hb, HeartbeatRequest) and hb.generation_id == 1 and hb.node_id == 7
    m.on_heartbeat_response(hb, 1_010, error_code=0)
    assert m.commit_identity().generation_id == 1


def test_member_id_required_costs_exactly_one_extra_join() -> None:
    m = make_member()
    find = only(m.poll(0), FindCoordinatorRequest)
    assert isinstance(find, FindCoordinatorRequest)
    m.on_find_coordinator_response(find, 0, error_code=0, node_id=1)
    first = only(m.poll(0), JoinGroupRequest)
    assert isinstance(first, JoinGroupRequest) and first.member_id == ""
    m.on_join_group_response(first, 0, error_code=ErrorCode.MEMBER_ID_REQUIRED, member_id="abc")
    second = only(m.poll(0), JoinGroupRequest)  # immediately, no backoff
    assert isinstance(second, JoinGroupRequest) and second.member_id == "abc"
    assert m.join_count == 2


@pytest.mark.parametrize("assignor", [RangeAssignor(), CooperativeStickyAssignor()])
def test_rebalance_in_progress_on_heartbeat_rejoins(assignor: PartitionAssignor) -> None:
    m = make_member(assignor)
    join_alone(m)
    m.poll(0)
    hb = only(m.poll(1_000), HeartbeatRequest)
    assert isinstance(hb, HeartbeatRequest)
    m.on_heartbeat_response(hb, 1_000, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    result = m.poll(1_000)
    if isinstance(assignor, RangeAssignor):
        # Eager: revoke first, alone, while a commit is still allowed ...
        assert kinds(result) == [(RebalanceEventKind.REVOKED, ALL)] and result.requests == []
        assert m.commit_identity().generation_id == 1
        result = m.poll(1_000)
    join = only(result, JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    # ... but not once JoinGroup is out (C2: fail fast, no blind retry).
    with pytest.raises(RebalanceInProgressError):
        m.commit_identity()
    # Cooperative keeps its partitions through the join.
    assert m.owned == (ALL if isinstance(assignor, CooperativeStickyAssignor) else frozenset())


@pytest.mark.parametrize(
    ("code", "member_id_after"),
    [(ErrorCode.ILLEGAL_GENERATION, "m1"), (ErrorCode.UNKNOWN_MEMBER_ID, "")],
)
def test_membership_errors_on_heartbeat_lose_partitions(code: int, member_id_after: str) -> None:
    m = make_member(CooperativeStickyAssignor())
    join_alone(m)
    m.poll(0)
    hb = only(m.poll(1_000), HeartbeatRequest)
    assert isinstance(hb, HeartbeatRequest)
    m.on_heartbeat_response(hb, 1_000, error_code=code)
    assert kinds(m.poll(1_000)) == [(RebalanceEventKind.LOST, ALL)]
    assert (m.generation_id, m.member_id, m.state) == (-1, member_id_after, MemberState.UNJOINED)
    with pytest.raises(CommitFailedError):
        m.commit_identity()
    join = only(m.poll(1_000), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest) and join.member_id == member_id_after


def test_late_response_from_old_generation_is_ignored() -> None:
    m = make_member(CooperativeStickyAssignor())
    join_alone(m)
    m.poll(0)
    old_hb = only(m.poll(1_000), HeartbeatRequest)
    assert isinstance(old_hb, HeartbeatRequest)
    # Before the answer arrives the member rebalances into generation 2.
    m.on_commit_error(ErrorCode.REBALANCE_IN_PROGRESS, 1, 1_000)
    m._hb_in_flight = None  # the driver gave up on the old heartbeat (timeout)
    join_alone(m, now=1_100, generation=2)
    m.poll(1_100)
    m._hb_in_flight = old_hb  # ...and now its answer shows up anyway
    m.on_heartbeat_response(old_hb, 1_200, error_code=ErrorCode.ILLEGAL_GENERATION)
    assert m.generation_id == 2 and m.state is MemberState.STABLE and m.owned == ALL
    m.on_commit_error(ErrorCode.ILLEGAL_GENERATION, 1, 1_200)  # old commit: ignored too
    assert m.generation_id == 2


def test_session_expiry_marks_partitions_lost_within_session_timeout() -> None:
    m = make_member()
    join_alone(m)
    m.poll(0)
    lost_at = None
    for now in range(1_000, 9_000, 100):
        m.on_app_poll(now)
        result = m.poll(now)
        for req in result.requests:
            if isinstance(req, HeartbeatRequest):
                m.on_heartbeat_response(req, now, error_code=ErrorCode.NOT_COORDINATOR)
            elif isinstance(req, FindCoordinatorRequest):
                m.on_request_failed(req, now)  # coordinator unreachable
        if any(e.kind is RebalanceEventKind.LOST for e in result.events):
            lost_at = now
            break
    assert lost_at is not None and lost_at <= 6_000
    assert m.member_id == "" and m.generation_id == -1


def test_max_poll_interval_leaves_and_next_app_poll_raises_once() -> None:
    m = make_member()
    join_alone(m)
    m.poll(0)
    now, leave = 0, None
    while leave is None:
        now += 1_000
        result = m.poll(now)
        for req in result.requests:
            if isinstance(req, HeartbeatRequest):
                m.on_heartbeat_response(req, now, error_code=0)
            elif isinstance(req, LeaveGroupRequest):
                leave = req
        if result.events:
            assert kinds(result) == [(RebalanceEventKind.LOST, ALL)]
            leave_result = m.poll(now)
            leave = next(r for r in leave_result.requests if isinstance(r, LeaveGroupRequest))
    assert now == 10_000 and leave.member_id == "m1"
    assert m.poll(now + 5_000).requests == []  # stays out while the app is stalled
    with pytest.raises(MaxPollIntervalExceededError):
        m.on_app_poll(now + 5_000)
    m.on_app_poll(now + 5_001)  # only once
    assert isinstance(only(m.poll(now + 5_001), JoinGroupRequest), JoinGroupRequest)


def test_static_member_join_carries_instance_id_and_close_does_not_leave() -> None:
    config = MemberConfig(group_id="g", group_instance_id="host-1")
    m = make_member(config=config)
    join_alone(m)
    assert m.close() is None
    dynamic = make_member()
    join_alone(dynamic)
    dynamic.poll(0)  # deliver ASSIGNED
    assert [(e.kind, e.partitions) for e in dynamic.prepare_close()] == [
        (RebalanceEventKind.REVOKED, ALL)
    ]
    leave = dynamic.close()
    assert isinstance(leave, LeaveGroupRequest) and leave.member_id == "m1"


def test_fenced_instance_id_is_fatal() -> None:
    m = make_member(config=MemberConfig(group_id="g", group_instance_id="host-1"))
    join_alone(m)
    m.poll(0)
    hb = only(m.poll(3_000), HeartbeatRequest)
    assert isinstance(hb, HeartbeatRequest)
    m.on_heartbeat_response(hb, 3_000, error_code=ErrorCode.FENCED_INSTANCE_ID)
    assert m.state is MemberState.FATAL
    assert kinds(m.poll(3_000)) == [(RebalanceEventKind.LOST, ALL)]
    with pytest.raises(FencedInstanceIdError):
        m.on_app_poll(3_000)


def test_coordinator_discovery_backs_off_exponentially_with_cap() -> None:
    config = MemberConfig(group_id="g", retry_backoff_ms=100, retry_backoff_max_ms=1_000)
    m = make_member(config=config)
    now, sent = 0, []
    while now < 10_000:
        for req in m.poll(now).requests:
            assert isinstance(req, FindCoordinatorRequest)
            sent.append(now)
            m.on_find_coordinator_response(
                req, now, error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE, node_id=-1
            )
        now += 10
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert 80 <= gaps[0] <= 130 and 160 <= gaps[1] <= 250
    assert max(gaps) <= 1_210 and gaps[-1] >= 800  # capped, jittered
    assert len(sent) < 20  # no hot loop


def test_backoff_jitter_bounds() -> None:
    backoff = ExponentialBackoff(100, 1_000, random.Random(3))
    assert backoff.delay(0) == 0
    assert all(80 <= backoff.delay(1) <= 120 for _ in range(100))
    assert all(800 <= backoff.delay(30) <= 1_200 for _ in range(100))


def test_cooperative_revokes_only_moving_partitions() -> None:
    a = make_member(CooperativeStickyAssignor())
    join_alone(a)
    a.poll(0)
    # A second member appears: a rejoins with its owned partitions; a is the leader.
    a.request_rejoin("new member")
    join = only(a.poll(100), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    b_meta = ConsumerGroupProtocol([CooperativeStickyAssignor()], lambda: COUNTS).join_protocols(
        frozenset({"t"}), frozenset(), -1
    )[0][1]
    members = [
        JoinedMember("m1", None, dict(join.protocols)["cooperative-sticky"]),
        JoinedMember("m2", None, b_meta),
    ]
    a.on_join_group_response(
        join,
        100,
        error_code=0,
        generation_id=2,
        protocol_name="cooperative-sticky",
        leader="m1",
        member_id="m1",
        members=members,
    )
    sync = only(a.poll(100), SyncGroupRequest)
    assert isinstance(sync, SyncGroupRequest)
    decoded = {
        mid: a._protocol.on_assignment("cooperative-sticky", data, 2)
        for mid, data in sync.assignments
    }
    assert decoded["m2"] == frozenset()  # phase 1: nothing moves directly
    a.on_sync_group_response(sync, 100, error_code=0, assignment=dict(sync.assignments)["m1"])
    result = a.poll(100)
    revoked = [e.partitions for e in result.events if e.kind is RebalanceEventKind.REVOKED]
    assert len(revoked) == 1 and len(revoked[0]) == 2
    assert a.owned == ALL - revoked[0]
    assert a.commit_identity().generation_id == 2  # commit in on_partitions_revoked works
    assert isinstance(only(a.poll(100), JoinGroupRequest), JoinGroupRequest)  # phase 2


def test_illegal_transition_raises() -> None:
    m = make_member()
    with pytest.raises(IllegalStateError):
        m._transition_to(MemberState.STABLE)


# -- simulated group with fault injection -------------------------------------------------

from tests.kclient.unit._group_sim import run_simulation  # noqa: E402


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("assignor_factory", [RangeAssignor, CooperativeStickyAssignor])
def test_simulated_group_never_has_two_owners(
    seed: int, assignor_factory: Callable[[], PartitionAssignor]
) -> None:
    run_simulation(seed, assignor_factory)
