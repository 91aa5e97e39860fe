"""Group APIs: Join/Sync/Heartbeat/Leave, offsets, List/Describe/DeleteGroups.

Every group request goes to the group's coordinator; elsewhere it gets
NOT_COORDINATOR (and COORDINATOR_NOT_AVAILABLE if that broker is down).
JoinGroup and SyncGroup may park (see :mod:`kclient.testing.mock.groups`).
"""

from __future__ import annotations

from kclient.testing.mock.codes import Err
from kclient.testing.mock.groups import CommittedOffset, Group, JoinResult, Reply, SyncResult
from kclient.testing.mock.handlers.common import Ctx, Parked
from protocol.messages.delete_groups import (
    DeletableGroupResult,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
)
from protocol.messages.describe_groups import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
)
from protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from protocol.messages.join_group import (
    JoinGroupRequest,
    JoinGroupResponse,
    JoinGroupResponseMember,
)
from protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse, MemberResponse
from protocol.messages.list_groups import ListedGroup, ListGroupsRequest, ListGroupsResponse
from protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)
from protocol.messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)
from protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse

__all__ = [
    "coordinator_error",
    "handle_delete_groups",
    "handle_describe_groups",
    "handle_heartbeat",
    "handle_join_group",
    "handle_leave_group",
    "handle_list_groups",
    "handle_offset_commit",
    "handle_offset_fetch",
    "handle_sync_group",
]


def coordinator_error(ctx: Ctx, group_id: str) -> int:
    injected = ctx.request_error()
    if injected is not None:
        return injected
    node = ctx.cluster.group_coordinator(group_id)
    if node != ctx.broker:
        return Err.NOT_COORDINATOR
    if not group_id:
        return Err.INVALID_GROUP_ID
    return 0


def _join_response(result: JoinResult | SyncResult) -> JoinGroupResponse:
    assert isinstance(result, JoinResult)
    return JoinGroupResponse(
        error_code=result.error,
        generation_id=result.generation,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        leader=result.leader,
        skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=[
            JoinGroupResponseMember(member_id=m, group_instance_id=i, metadata=meta)
            for m, i, meta in result.members
        ],
    )


def _sync_response(result: JoinResult | SyncResult) -> SyncGroupResponse:
    assert isinstance(result, SyncResult)
    return SyncGroupResponse(
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


def handle_join_group(ctx: Ctx, req: JoinGroupRequest, token: object) -> tuple[Parked, list[Reply]]:
    error = coordinator_error(ctx, req.group_id)
    if not error and not 1 <= req.session_timeout_ms <= 30 * 60_000:
        error = Err.INVALID_SESSION_TIMEOUT
    if error:
        return Parked(token, _join_response), [Reply(token, JoinResult(Err(error), req.member_id))]
    group = ctx.cluster.group(req.group_id)
    assert group is not None
    replies = group.join(
        token,
        member_id=req.member_id,
        instance_id=req.group_instance_id,
        protocol_type=req.protocol_type,
        protocols=[(p.name, p.metadata) for p in req.protocols],
        session_timeout_ms=req.session_timeout_ms,
        rebalance_timeout_ms=req.rebalance_timeout_ms
        if ctx.version >= 1
        else req.session_timeout_ms,
        client_id=ctx.client_id or "",
        client_host=ctx.client_host,
        require_known_member=ctx.version >= 4,
        now=ctx.now,
    )
    return Parked(token, _join_response), replies


def handle_sync_group(ctx: Ctx, req: SyncGroupRequest, token: object) -> tuple[Parked, list[Reply]]:
    error = coordinator_error(ctx, req.group_id)
    group = ctx.cluster.group(req.group_id, create=False)
    if not error and group is None:
        error = Err.UNKNOWN_MEMBER_ID
    if error or group is None:
        return Parked(token, _sync_response), [Reply(token, SyncResult(Err(error)))]
    replies = group.sync(
        token,
        member_id=req.member_id,
        instance_id=req.group_instance_id,
        generation=req.generation_id,
        assignments={a.member_id: a.assignment for a in req.assignments},
        now=ctx.now,
    )
    return Parked(token, _sync_response), replies


def handle_heartbeat(ctx: Ctx, req: HeartbeatRequest) -> HeartbeatResponse:
    error = coordinator_error(ctx, req.group_id)
    group = ctx.cluster.group(req.group_id, create=False)
    if not error:
        error = (
            Err.UNKNOWN_MEMBER_ID
            if group is None
            else group.heartbeat(req.member_id, req.group_instance_id, req.generation_id, ctx.now)
        )
    return HeartbeatResponse(error_code=error)


def handle_leave_group(ctx: Ctx, req: LeaveGroupRequest) -> tuple[LeaveGroupResponse, list[Reply]]:
    error = coordinator_error(ctx, req.group_id)
    group = ctx.cluster.group(req.group_id, create=False)
    identities = [(m.member_id, m.group_instance_id) for m in req.members]
    if ctx.version < 3:
        identities = [(req.member_id, None)]
    if error or group is None:
        return LeaveGroupResponse(error_code=error or Err.UNKNOWN_MEMBER_ID), []
    members, replies = [], []
    for member_id, instance_id in identities:
        member_error, more = group.leave(member_id, instance_id, ctx.now)
        replies += more
        members.append(
            MemberResponse(
                member_id=member_id, group_instance_id=instance_id, error_code=member_error
            )
        )
    top = members[0].error_code if ctx.version < 3 and members else 0
    return LeaveGroupResponse(error_code=top, members=members), replies


def handle_offset_commit(ctx: Ctx, req: OffsetCommitRequest) -> OffsetCommitResponse:
    error = coordinator_error(ctx, req.group_id)
    group = ctx.cluster.group(req.group_id) if not error else None
    if group is not None:
        generation = req.generation_id_or_member_epoch if ctx.version >= 1 else -1
        error = group.check_commit(req.member_id, req.group_instance_id, generation)
    topics = []
    for t in req.topics:
        parts = []
        for p in t.partitions:
            perror = error
            if not perror and ctx.cluster.partition(t.name, p.partition_index) is None:
                perror = Err.UNKNOWN_TOPIC_OR_PARTITION
            if not perror and group is not None:
                group.offsets[(t.name, p.partition_index)] = CommittedOffset(
                    p.committed_offset, p.committed_leader_epoch, p.committed_metadata
                )
            parts.append(
                OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=perror)
            )
        topics.append(OffsetCommitResponseTopic(name=t.name, partitions=parts))
    return OffsetCommitResponse(topics=topics)


def handle_offset_fetch(ctx: Ctx, req: OffsetFetchRequest) -> OffsetFetchResponse:
    if ctx.version >= 8:
        groups = [
            _fetch_group(
                ctx,
                g.group_id,
                None if g.topics is None else [(t.name, t.partition_indexes) for t in g.topics],
                req.require_stable,
            )
            for g in req.groups
        ]
        return OffsetFetchResponse(groups=groups)
    wanted = None if req.topics is None else [(t.name, t.partition_indexes) for t in req.topics]
    g = _fetch_group(ctx, req.group_id, wanted, req.require_stable)
    topics = [
        OffsetFetchResponseTopic(
            name=t.name,
            partitions=[
                OffsetFetchResponsePartition(
                    partition_index=p.partition_index,
                    committed_offset=p.committed_offset,
                    committed_leader_epoch=p.committed_leader_epoch,
                    metadata=p.metadata,
                    error_code=p.error_code,
                )
                for p in t.partitions
            ],
        )
        for t in g.topics
    ]
    return OffsetFetchResponse(topics=topics, error_code=g.error_code)


def _fetch_group(
    ctx: Ctx, group_id: str, wanted: list[tuple[str, list[int]]] | None, require_stable: bool
) -> OffsetFetchResponseGroup:
    error = coordinator_error(ctx, group_id)
    if error:
        return OffsetFetchResponseGroup(group_id=group_id, error_code=error)
    group = ctx.cluster.group(group_id, create=False)
    offsets = group.offsets if group else {}
    if wanted is None:
        grouped: dict[str, list[int]] = {}
        for topic, index in sorted(offsets):
            grouped.setdefault(topic, []).append(index)
        wanted = list(grouped.items())
    topics = []
    for name, indexes in wanted:
        parts = []
        for index in indexes:
            committed = offsets.get((name, index))
            perror = 0
            if require_stable and group and ctx.cluster.has_pending_txn_offset(group, name, index):
                perror, committed = Err.UNSTABLE_OFFSET_COMMIT, None
            parts.append(
                OffsetFetchResponsePartitions(
                    partition_index=index,
                    committed_offset=committed.offset if committed else -1,
                    committed_leader_epoch=committed.leader_epoch if committed else -1,
                    metadata=committed.metadata if committed else "",
                    error_code=perror,
                )
            )
        topics.append(OffsetFetchResponseTopics(name=name, partitions=parts))
    return OffsetFetchResponseGroup(group_id=group_id, topics=topics, error_code=0)


def handle_list_groups(ctx: Ctx, req: ListGroupsRequest) -> ListGroupsResponse:
    error = ctx.request_error()
    if error:
        return ListGroupsResponse(error_code=error)
    states = set(req.states_filter)
    groups = [
        ListedGroup(
            group_id=g.group_id,
            protocol_type=g.protocol_type or "",
            group_state=g.state.value,
            group_type="classic",
        )
        for g in ctx.cluster.groups.values()
        if ctx.cluster.group_coordinator(g.group_id) == ctx.broker
        and (not states or g.state.value in states)
    ]
    return ListGroupsResponse(error_code=0, groups=groups)


def handle_describe_groups(ctx: Ctx, req: DescribeGroupsRequest) -> DescribeGroupsResponse:
    return DescribeGroupsResponse(groups=[_describe(ctx, gid) for gid in req.groups])


def _describe(ctx: Ctx, group_id: str) -> DescribedGroup:
    error = coordinator_error(ctx, group_id)
    group: Group | None = ctx.cluster.group(group_id, create=False) if not error else None
    if group is None:
        state = "Dead" if not error else ""
        return DescribedGroup(error_code=error, group_id=group_id, group_state=state)
    stable = group.state.value in ("Stable", "CompletingRebalance")
    members = [
        DescribedGroupMember(
            member_id=m.member_id,
            group_instance_id=m.instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            member_metadata=dict(m.protocols).get(group.protocol_name or "", b""),
            member_assignment=m.assignment if stable else b"",
        )
        for m in group.members.values()
    ]
    return DescribedGroup(
        error_code=0,
        group_id=group_id,
        group_state=group.state.value,
        protocol_type=group.protocol_type or "",
        protocol_data=group.protocol_name or "",
        members=members,
    )


def handle_delete_groups(ctx: Ctx, req: DeleteGroupsRequest) -> DeleteGroupsResponse:
    results = []
    for gid in req.groups_names:
        error = coordinator_error(ctx, gid) or ctx.cluster.delete_group(gid)
        results.append(DeletableGroupResult(group_id=gid, error_code=error))
    return DeleteGroupsResponse(results=results)
