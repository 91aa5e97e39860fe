"""GroupMember: the generation sent with the owned partitions in JoinGroup (KIP-792).

It is the generation whose SyncGroup handed the partitions over, not the generation of
the latest JoinGroup answer: a follower whose SyncGroup fails with REBALANCE_IN_PROGRESS
was confirmed nothing in that generation. Claiming it anyway made the rejoin's metadata
differ from what the coordinator held, and on Tansu (which starts a new rebalance for a
member that rejoins with changed metadata) the cooperative group kept rebalancing
(docs/design-notes/tansu-quirks.md, "cooperative rebalance").
"""

from __future__ import annotations

from kclient.consumer._errors import ErrorCode
from kclient.consumer.assignors import CooperativeStickyAssignor, RangeAssignor
from kclient.consumer.group_protocol import ConsumerGroupProtocol
from kclient.consumer.group_types import (
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinedMember,
    JoinGroupRequest,
    RebalanceEventKind,
    SyncGroupRequest,
)
from kclient.consumer.membership import GroupMember, MemberState
from kclient.structs import TopicPartition as TP
from protocol.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolAssignmentTopicPartition,
    decode_subscription,
    encode_assignment,
)

from .test_membership import ALL, COUNTS, join_alone, kinds, make_member, only

COOP = "cooperative-sticky"


def claim(join: JoinGroupRequest) -> tuple[int, frozenset[TP]]:
    """(generation, owned partitions) as the JoinGroup's first protocol states them."""
    sub = decode_subscription(join.protocols[0][1])
    owned = frozenset(TP(t.topic, p) for t in sub.owned_partitions for p in t.partitions)
    return sub.generation_id, owned


def assignment(partitions: list[int]) -> bytes:
    topics = [ConsumerProtocolAssignmentTopicPartition(topic="t", partitions=partitions)]
    return encode_assignment(ConsumerProtocolAssignment(assigned_partitions=topics), 1)


def rebalance_as_follower(m: GroupMember, now: int, generation: int) -> SyncGroupRequest:
    """The group rebalances (heartbeat says so); m rejoins and is answered as a follower."""
    join = only(m.poll(now), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    m.on_join_group_response(
        join,
        now,
        error_code=0,
        generation_id=generation,
        protocol_name=COOP,
        leader="leader",
        member_id=m.member_id,
    )
    sync = only(m.poll(now), SyncGroupRequest)
    assert isinstance(sync, SyncGroupRequest) and sync.generation_id == generation
    return sync


def stable_cooperative_member() -> GroupMember:
    m = make_member(CooperativeStickyAssignor())
    join_alone(m, generation=1)
    assert kinds(m.poll(0)) == [(RebalanceEventKind.ASSIGNED, ALL)]
    hb = only(m.poll(1_000), HeartbeatRequest)
    assert isinstance(hb, HeartbeatRequest)
    m.on_heartbeat_response(hb, 1_000, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    return m


def test_failed_sync_keeps_the_generation_the_partitions_came_from() -> None:
    m = stable_cooperative_member()
    sync = rebalance_as_follower(m, 1_000, generation=2)
    assert m.generation_id == 2
    # The leader raced ahead into generation 3: this follower's SyncGroup fails.
    m.on_sync_group_response(sync, 3_000, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    result = m.poll(3_000)
    assert result.events == []  # cooperative: nothing revoked or lost, keep consuming
    join = only(result, JoinGroupRequest)  # at once, no backoff
    assert isinstance(join, JoinGroupRequest) and join.member_id == m.member_id
    # Same claim as before the failed round (unchanged metadata), not generation 2.
    assert claim(join) == (1, ALL)
    assert m.owned == ALL and m.state is MemberState.PREPARING_REBALANCE


def test_successful_sync_moves_the_claim_to_its_generation() -> None:
    m = stable_cooperative_member()
    sync = rebalance_as_follower(m, 1_000, generation=2)
    m.on_sync_group_response(sync, 1_000, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    sync = rebalance_as_follower(m, 1_000, generation=3)
    m.on_sync_group_response(sync, 1_100, error_code=0, assignment=assignment([0, 1]))
    moved = ALL - {TP("t", 0), TP("t", 1)}
    assert kinds(m.poll(1_100)) == [(RebalanceEventKind.REVOKED, moved)]
    join = only(m.poll(1_100), JoinGroupRequest)  # KIP-429: rejoin after revoking
    assert isinstance(join, JoinGroupRequest)
    assert claim(join) == (3, ALL - moved)
    assert m.owned_generation == 3


def test_new_member_whose_first_sync_fails_claims_no_generation() -> None:
    m = make_member(CooperativeStickyAssignor())
    find = only(m.poll(0), FindCoordinatorRequest)
    assert isinstance(find, FindCoordinatorRequest)
    m.on_find_coordinator_response(find, 0, error_code=0, node_id=7)
    first = only(m.poll(0), JoinGroupRequest)
    assert isinstance(first, JoinGroupRequest)
    m.on_join_group_response(first, 0, error_code=ErrorCode.MEMBER_ID_REQUIRED, member_id="m2")
    sync = rebalance_as_follower(m, 0, generation=5)
    m.on_sync_group_response(sync, 2_000, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    join = only(m.poll(2_000), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest)
    assert claim(join) == (-1, frozenset())


def test_lost_partitions_drop_the_claimed_generation() -> None:
    m = stable_cooperative_member()
    join = only(m.poll(1_000), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest) and claim(join) == (1, ALL)
    m.on_join_group_response(join, 1_200, error_code=ErrorCode.UNKNOWN_MEMBER_ID)
    assert kinds(m.poll(1_200)) == [(RebalanceEventKind.LOST, ALL)]
    rejoin = only(m.poll(1_200), JoinGroupRequest)
    assert isinstance(rejoin, JoinGroupRequest) and claim(rejoin) == (-1, frozenset())


def test_the_leader_ranks_a_stale_claim_below_a_confirmed_one() -> None:
    """Why the generation matters to the assignor: b missed generation 2's SyncGroup and
    still claims p0-p3 from generation 1, while a was handed p2-p3 in generation 2. The
    confirmed, newer claim wins those two; had b claimed generation 2 as well, both
    claims would tie and neither member would keep p2-p3."""
    protocol = ConsumerGroupProtocol([CooperativeStickyAssignor()], lambda: COUNTS)
    b_claim = protocol.join_protocols(frozenset({"t"}), ALL, 1)[0][1]
    a_claim = protocol.join_protocols(frozenset({"t"}), frozenset({TP("t", 2), TP("t", 3)}), 2)
    members = [JoinedMember("a", None, a_claim[0][1]), JoinedMember("b", None, b_claim)]
    result = protocol.assign(COOP, members)
    got = {mid: protocol.on_assignment(COOP, data, 3) for mid, data in result.items()}
    assert got["a"] == {TP("t", 2), TP("t", 3)}
    assert got["b"] == {TP("t", 0), TP("t", 1)}


def test_eager_members_claim_nothing_after_revoking() -> None:
    m = make_member(RangeAssignor())
    join_alone(m, generation=4)
    m.poll(0)
    m.request_rejoin("test")
    assert kinds(m.poll(100)) == [(RebalanceEventKind.REVOKED, ALL)]
    join = only(m.poll(100), JoinGroupRequest)
    assert isinstance(join, JoinGroupRequest) and claim(join) == (-1, frozenset())
