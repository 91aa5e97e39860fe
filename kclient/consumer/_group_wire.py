"""Pure mapping between the consumer cores' request descriptions and generated messages.

Each ``*_message(desc, version)`` fills only the fields the version has (the generated
encoder refuses non-default values for fields a version lacks); each ``read_*`` pulls
out what the cores' handlers take, across version layouts (FindCoordinator v4 and
OffsetFetch v8 batch several keys/groups per request).
"""

from __future__ import annotations

from collections.abc import Mapping

from kclient.consumer import group_types as gt
from kclient.consumer.membership import GroupMember
from kclient.consumer.offsets import FetchedOffset, OffsetCommitRequest, OffsetFetchRequest
from kclient.structs import TopicPartition
from protocol.api import Request
from protocol.messages import find_coordinator as fc
from protocol.messages import heartbeat as hb
from protocol.messages import join_group as jg
from protocol.messages import leave_group as lg
from protocol.messages import offset_commit as oc
from protocol.messages import offset_fetch as of
from protocol.messages import sync_group as sg

__all__ = [
    "MESSAGE_CLASS",
    "commit_message",
    "deliver_response",
    "group_message",
    "offset_fetch_message",
    "read_commit",
    "read_find_coordinator",
    "read_offset_fetch",
]

#: The generated message class of each group request description.
MESSAGE_CLASS: dict[type[gt.GroupRequest], type[Request]] = {
    gt.FindCoordinatorRequest: fc.FindCoordinatorRequest,
    gt.JoinGroupRequest: jg.JoinGroupRequest,
    gt.SyncGroupRequest: sg.SyncGroupRequest,
    gt.HeartbeatRequest: hb.HeartbeatRequest,
    gt.LeaveGroupRequest: lg.LeaveGroupRequest,
}


def deliver_response(
    member: GroupMember, request: gt.GroupRequest, response: object, version: int, now: int
) -> None:
    """Hand a group response to the member handler of its request (LeaveGroup answers
    need none)."""
    if isinstance(request, gt.FindCoordinatorRequest):
        assert isinstance(response, fc.FindCoordinatorResponse)
        code, node = read_find_coordinator(response, version)
        member.on_find_coordinator_response(request, now, error_code=code, node_id=node)
    elif isinstance(request, gt.JoinGroupRequest):
        r = response
        assert isinstance(r, jg.JoinGroupResponse)
        members = [gt.JoinedMember(x.member_id, x.group_instance_id, x.metadata) for x in r.members]
        member.on_join_group_response(
            request, now, error_code=r.error_code,
            generation_id=r.generation_id, protocol_name=r.protocol_name,
            leader=r.leader, member_id=r.member_id, members=members,
        )  # fmt: skip
    elif isinstance(request, gt.SyncGroupRequest):
        assert isinstance(response, sg.SyncGroupResponse)
        member.on_sync_group_response(
            request, now, error_code=response.error_code, assignment=response.assignment
        )
    elif isinstance(request, gt.HeartbeatRequest):
        assert isinstance(response, hb.HeartbeatResponse)
        member.on_heartbeat_response(request, now, error_code=response.error_code)


def group_message(desc: gt.GroupRequest, version: int) -> Request:
    if isinstance(desc, gt.FindCoordinatorRequest):
        if version >= 4:
            return fc.FindCoordinatorRequest(key_type=0, coordinator_keys=[desc.group_id])
        return fc.FindCoordinatorRequest(key=desc.group_id)
    if isinstance(desc, gt.JoinGroupRequest):
        return jg.JoinGroupRequest(
            group_id=desc.group_id,
            session_timeout_ms=desc.session_timeout_ms,
            rebalance_timeout_ms=desc.rebalance_timeout_ms if version >= 1 else -1,
            member_id=desc.member_id,
            group_instance_id=desc.group_instance_id if version >= 5 else None,
            protocol_type=desc.protocol_type,
            protocols=[jg.JoinGroupRequestProtocol(name=n, metadata=m) for n, m in desc.protocols],
            reason=desc.reason if version >= 8 else None,
        )
    if isinstance(desc, gt.SyncGroupRequest):
        return sg.SyncGroupRequest(
            group_id=desc.group_id,
            generation_id=desc.generation_id,
            member_id=desc.member_id,
            group_instance_id=desc.group_instance_id if version >= 3 else None,
            protocol_type=desc.protocol_type if version >= 5 else None,
            protocol_name=desc.protocol_name if version >= 5 else None,
            assignments=[
                sg.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in desc.assignments
            ],
        )
    if isinstance(desc, gt.HeartbeatRequest):
        return hb.HeartbeatRequest(
            group_id=desc.group_id,
            generation_id=desc.generation_id,
            member_id=desc.member_id,
            group_instance_id=desc.group_instance_id if version >= 3 else None,
        )
    return _leave_message(desc, version)


def _leave_message(desc: gt.LeaveGroupRequest, version: int) -> Request:
    if version >= 3:
        member = lg.MemberIdentity(
            member_id=desc.member_id,
            group_instance_id=desc.group_instance_id,
            reason=desc.reason if version >= 5 else None,
        )
        return lg.LeaveGroupRequest(group_id=desc.group_id, members=[member])
    return lg.LeaveGroupRequest(group_id=desc.group_id, member_id=desc.member_id)


def read_find_coordinator(response: fc.FindCoordinatorResponse, version: int) -> tuple[int, int]:
    """(error code, node id)."""
    if version >= 4:
        if not response.coordinators:
            return 15, -1  # COORDINATOR_NOT_AVAILABLE
        entry = response.coordinators[0]
        return entry.error_code, entry.node_id
    return response.error_code, response.node_id


def commit_message(req: OffsetCommitRequest, version: int) -> oc.OffsetCommitRequest:
    topics: dict[str, list[oc.OffsetCommitRequestPartition]] = {}
    for tp, om in sorted(req.offsets.items()):
        topics.setdefault(tp.topic, []).append(
            oc.OffsetCommitRequestPartition(
                partition_index=tp.partition,
                committed_offset=om.offset,
                committed_leader_epoch=om.leader_epoch if version >= 6 else -1,
                committed_metadata=om.metadata,
            )
        )
    return oc.OffsetCommitRequest(
        group_id=req.group_id,
        generation_id_or_member_epoch=req.generation_id if version >= 1 else -1,
        member_id=req.member_id if version >= 1 else "",
        group_instance_id=req.group_instance_id if version >= 7 else None,
        topics=[oc.OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in topics.items()],
    )


def read_commit(response: oc.OffsetCommitResponse) -> dict[TopicPartition, int]:
    return {
        TopicPartition(t.name, p.partition_index): p.error_code
        for t in response.topics
        for p in t.partitions
    }


def offset_fetch_message(req: OffsetFetchRequest, version: int) -> of.OffsetFetchRequest:
    by_topic: dict[str, list[int]] = {}
    for tp in req.partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    stable = req.require_stable if version >= 7 else False
    if version >= 8:
        group = of.OffsetFetchRequestGroup(
            group_id=req.group_id,
            topics=[
                of.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
                for t, ps in by_topic.items()
            ],
        )
        return of.OffsetFetchRequest(groups=[group], require_stable=stable)
    return of.OffsetFetchRequest(
        group_id=req.group_id,
        topics=[
            of.OffsetFetchRequestTopic(name=t, partition_indexes=ps) for t, ps in by_topic.items()
        ],
        require_stable=stable,
    )


def read_offset_fetch(
    response: of.OffsetFetchResponse, version: int
) -> tuple[int, Mapping[TopicPartition, FetchedOffset]]:
    """(group error code, per-partition answers)."""
    found: dict[TopicPartition, FetchedOffset] = {}
    if version >= 8:
        if not response.groups:
            return 15, found
        group = response.groups[0]
        for t in group.topics:
            for p in t.partitions:
                found[TopicPartition(t.name, p.partition_index)] = FetchedOffset(
                    p.committed_offset, p.committed_leader_epoch, p.metadata, p.error_code
                )
        return group.error_code, found
    for t2 in response.topics:
        for p2 in t2.partitions:
            found[TopicPartition(t2.name, p2.partition_index)] = FetchedOffset(
                p2.committed_offset, p2.committed_leader_epoch, p2.metadata, p2.error_code
            )
    return (response.error_code if version >= 2 else 0), found
