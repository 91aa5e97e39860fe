"""``GroupMember.hold_join``: a revocation waiting for the application's next poll
(docs/design-notes/consumer-revocation.md), on the pure member."""

from __future__ import annotations

from kclient.consumer.group_types import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    RebalanceEventKind,
)
from kclient.consumer.membership import GroupMember, MemberState
from tests.kclient.unit.test_membership import CONFIG, join_alone, kinds, make_member, only


def eager_member_revoking() -> tuple[GroupMember, int]:
    """A stable eager member told to rejoin: its REVOKED event is out, JoinGroup next."""
    m = make_member()
    join_alone(m)
    m.poll(0)  # ASSIGNED
    m.request_rejoin("test")
    result = m.poll(100)
    assert [k for k, _ in kinds(result)] == [RebalanceEventKind.REVOKED]
    return m, 100


def test_holding_sends_heartbeats_not_join_until_released() -> None:
    m, now = eager_member_revoking()
    m.hold_join = True
    assert m.state is MemberState.PREPARING_REBALANCE
    for _ in range(3):
        now += CONFIG.heartbeat_interval_ms
        beat = only(m.poll(now), HeartbeatRequest)
        assert isinstance(beat, HeartbeatRequest) and beat.generation_id == 1
        m.on_heartbeat_response(beat, now, error_code=27)  # the group is rebalancing
    assert m.commit_refusal() is None  # the revoke listener may still commit
    result = m.poll(now)
    assert result.requests == [] and result.deadline == now + CONFIG.heartbeat_interval_ms
    m.hold_join = False
    assert isinstance(only(m.poll(now), JoinGroupRequest), JoinGroupRequest)


def test_holding_past_max_poll_interval_leaves_the_group() -> None:
    m, now = eager_member_revoking()
    m.hold_join = True
    leave = None
    while leave is None:
        now += CONFIG.heartbeat_interval_ms
        for req in m.poll(now).requests:
            if isinstance(req, HeartbeatRequest):
                m.on_heartbeat_response(req, now, error_code=27)
            elif isinstance(req, LeaveGroupRequest):
                leave = req
        assert now <= CONFIG.max_poll_interval_ms + CONFIG.heartbeat_interval_ms
    # The application last polled at 0: the first poll past the interval leaves.
    assert CONFIG.max_poll_interval_ms <= now < CONFIG.max_poll_interval_ms + 1_000
    assert m.generation_id == -1 and leave.member_id == "m1"
