"""Pure request builders and response readers for groups, group offsets and partition offsets.

Same shape as ``_topics``: builders take the negotiated version, readers return
``key -> result | KafkaError | Retry`` where a routing error (NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, a leader that moved) is a :class:`Retry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kclient.admin._routing import (
    Retry,
    broker_error,
    missing_error,
    retry_for_code,
    retry_or_error,
)
from kclient.admin.results import (
    DeleteGroupResult,
    DeleteRecordsResult,
    GroupDescription,
    GroupListing,
    GroupOffset,
    ListOffsetsResult,
    MemberDescription,
    OffsetSpec,
    PartitionResult,
)
from kclient.errors import KafkaError, KafkaProtocolError
from kclient.structs import OffsetAndMetadata, TopicPartition
from protocol.messages.consumer_protocol import decode_assignment
from protocol.messages.delete_groups import DeleteGroupsResponse
from protocol.messages.delete_records import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteRecordsTopic,
)
from protocol.messages.describe_groups import DescribedGroup, DescribeGroupsResponse
from protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse
from protocol.messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetCommitResponse,
)
from protocol.messages.offset_delete import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
    OffsetDeleteResponse,
)
from protocol.messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
    OffsetFetchResponse,
)

_UNKNOWN_TOPIC_OR_PARTITION = 3
_READ_COMMITTED = {"read_uncommitted": 0, "read_committed": 1}


def _by_topic(partitions: Sequence[TopicPartition]) -> dict[str, list[int]]:
    topics: dict[str, list[int]] = {}
    for tp in sorted(set(partitions)):
        topics.setdefault(tp.topic, []).append(tp.partition)
    return topics


# -- ListGroups -----------------------------------------------------------------------------


def list_groups_request(states: Sequence[str] | None, version: int) -> ListGroupsRequest:
    return ListGroupsRequest(states_filter=list(states or []) if version >= 4 else [])


def list_groups_outcome(
    response: ListGroupsResponse, node: int
) -> list[GroupListing] | KafkaError | Retry:
    failure = retry_or_error(response.error_code, f"ListGroups on node {node}")
    if failure is not None:
        return failure
    return [
        GroupListing(g.group_id, g.protocol_type, g.group_state, g.group_type)
        for g in response.groups
    ]


# -- DescribeGroups / DeleteGroups ----------------------------------------------------------


def describe_groups_outcomes(
    response: DescribeGroupsResponse, groups: Sequence[str]
) -> dict[str, GroupDescription | KafkaError | Retry]:
    out: dict[str, GroupDescription | KafkaError | Retry] = {}
    for g in response.groups:
        failure = retry_or_error(g.error_code, f"group {g.group_id!r}")
        out[g.group_id] = failure or _description(g)
    return {g: out.get(g, missing_error(f"group {g!r}")) for g in groups}


def _description(g: DescribedGroup) -> GroupDescription:
    members = tuple(
        MemberDescription(
            member_id=m.member_id,
            client_id=m.client_id,
            client_host=m.client_host,
            group_instance_id=m.group_instance_id,
            assignment=_assignment(m.member_assignment) if g.protocol_type == "consumer" else (),
        )
        for m in g.members
    )
    return GroupDescription(
        group_id=g.group_id,
        state=g.group_state,
        protocol_type=g.protocol_type,
        protocol=g.protocol_data,
        members=members,
    )


def _assignment(data: bytes) -> tuple[TopicPartition, ...]:
    if not data:
        return ()
    try:
        decoded = decode_assignment(data)
    except KafkaProtocolError:
        return ()  # a member with a custom assignment format: nothing we can show
    return tuple(
        sorted(
            TopicPartition(t.topic, p) for t in decoded.assigned_partitions for p in t.partitions
        )
    )


def delete_groups_outcomes(
    response: DeleteGroupsResponse, groups: Sequence[str]
) -> dict[str, DeleteGroupResult | KafkaError | Retry]:
    out: dict[str, DeleteGroupResult | KafkaError | Retry] = {}
    for r in response.results:
        failure = retry_or_error(r.error_code, f"group {r.group_id!r}")
        out[r.group_id] = failure or DeleteGroupResult(group_id=r.group_id)
    return {g: out.get(g, missing_error(f"group {g!r}")) for g in groups}


# -- OffsetFetch ----------------------------------------------------------------------------


def offset_fetch_request(
    group_id: str, partitions: Sequence[TopicPartition] | None, version: int
) -> OffsetFetchRequest:
    topics = None if partitions is None else _by_topic(partitions)
    if version >= 8:
        wanted = None
        if topics is not None:
            wanted = [
                OffsetFetchRequestTopics(name=t, partition_indexes=p) for t, p in topics.items()
            ]
        return OffsetFetchRequest(
            groups=[OffsetFetchRequestGroup(group_id=group_id, topics=wanted)]
        )
    old = None
    if topics is not None:
        old = [OffsetFetchRequestTopic(name=t, partition_indexes=p) for t, p in topics.items()]
    return OffsetFetchRequest(group_id=group_id, topics=old)


def offset_fetch_outcome(
    response: OffsetFetchResponse, group_id: str
) -> dict[TopicPartition, GroupOffset] | KafkaError | Retry:
    """Committed offsets of one group (v8+ answers per group, older versions at top level)."""
    code, rows = (
        response.error_code,
        [
            (
                t.name,
                p.partition_index,
                p.committed_offset,
                p.metadata,
                p.committed_leader_epoch,
                p.error_code,
            )
            for t in response.topics
            for p in t.partitions
        ],
    )
    for g in response.groups:
        if g.group_id == group_id:
            code = g.error_code
            rows = [
                (
                    t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.metadata,
                    p.committed_leader_epoch,
                    p.error_code,
                )
                for t in g.topics
                for p in t.partitions
            ]
    failure = retry_or_error(code, f"group {group_id!r}")
    if failure is not None:
        return failure
    out: dict[TopicPartition, GroupOffset] = {}
    for topic, partition, offset, metadata, epoch, error_code in rows:
        tp = TopicPartition(topic, partition)
        error = broker_error(error_code, f"group {group_id!r} {tp}")
        committed = None if offset < 0 else OffsetAndMetadata(offset, metadata or "", epoch)
        out[tp] = GroupOffset(committed=committed, error=error)
    return dict(sorted(out.items()))


def with_end_offsets(
    offsets: Mapping[TopicPartition, GroupOffset], ends: Mapping[TopicPartition, ListOffsetsResult]
) -> dict[TopicPartition, GroupOffset]:
    """Attach the log end offsets (for lag); a failed end-offset lookup leaves lag None."""
    out = {}
    for tp, g in offsets.items():
        end = ends.get(tp)
        end_offset = end.offset if end is not None and end.ok else None
        out[tp] = GroupOffset(committed=g.committed, end_offset=end_offset, error=g.error)
    return out


# -- OffsetCommit / OffsetDelete ------------------------------------------------------------


def offset_commit_request(
    group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata], version: int
) -> OffsetCommitRequest:
    topics: dict[str, list[OffsetCommitRequestPartition]] = {}
    for tp, om in sorted(offsets.items()):
        topics.setdefault(tp.topic, []).append(
            OffsetCommitRequestPartition(
                partition_index=tp.partition,
                committed_offset=om.offset,
                committed_leader_epoch=om.leader_epoch if version >= 6 else -1,
                committed_metadata=om.metadata,
            )
        )
    # generation -1 and no member id: a commit from outside the group (only to an empty group)
    return OffsetCommitRequest(
        group_id=group_id,
        topics=[OffsetCommitRequestTopic(name=t, partitions=p) for t, p in topics.items()],
    )


def offset_commit_outcome(
    response: OffsetCommitResponse, group_id: str
) -> dict[TopicPartition, PartitionResult] | Retry:
    out: dict[TopicPartition, PartitionResult] = {}
    for t in response.topics:
        for p in t.partitions:
            tp = TopicPartition(t.name, p.partition_index)
            retry = retry_for_code(p.error_code, f"group {group_id!r} {tp}")
            if retry is not None:
                return retry  # the coordinator moved: the whole commit goes again
            out[tp] = PartitionResult(error=broker_error(p.error_code, f"group {group_id!r} {tp}"))
    return dict(sorted(out.items()))


def offset_delete_request(
    group_id: str, partitions: Sequence[TopicPartition]
) -> OffsetDeleteRequest:
    return OffsetDeleteRequest(
        group_id=group_id,
        topics=[
            OffsetDeleteRequestTopic(
                name=t, partitions=[OffsetDeleteRequestPartition(partition_index=p) for p in ps]
            )
            for t, ps in _by_topic(partitions).items()
        ],
    )


def offset_delete_outcome(
    response: OffsetDeleteResponse, group_id: str
) -> dict[TopicPartition, PartitionResult] | KafkaError | Retry:
    failure = retry_or_error(response.error_code, f"group {group_id!r}")
    if failure is not None:
        return failure
    return {
        TopicPartition(t.name, p.partition_index): PartitionResult(
            error=broker_error(p.error_code, f"group {group_id!r} {t.name}-{p.partition_index}")
        )
        for t in response.topics
        for p in t.partitions
    }


# -- ListOffsets / DeleteRecords ------------------------------------------------------------


def list_offsets_request(
    specs: Mapping[TopicPartition, OffsetSpec], isolation_level: str, version: int
) -> ListOffsetsRequest:
    topics: dict[str, list[ListOffsetsPartition]] = {}
    for tp, spec in sorted(specs.items()):
        topics.setdefault(tp.topic, []).append(
            ListOffsetsPartition(partition_index=tp.partition, timestamp=spec.timestamp)
        )
    return ListOffsetsRequest(
        replica_id=-1,
        isolation_level=_READ_COMMITTED[isolation_level] if version >= 2 else 0,
        topics=[ListOffsetsTopic(name=t, partitions=p) for t, p in topics.items()],
    )


def list_offsets_outcomes(
    response: ListOffsetsResponse, keys: Sequence[TopicPartition]
) -> dict[TopicPartition, ListOffsetsResult | KafkaError | Retry]:
    out: dict[TopicPartition, ListOffsetsResult | KafkaError | Retry] = {}
    for t in response.topics:
        for p in t.partitions:
            tp = TopicPartition(t.name, p.partition_index)
            out[tp] = _partition_failure(p.error_code, tp) or ListOffsetsResult(
                offset=p.old_style_offsets[0] if p.old_style_offsets else p.offset,
                timestamp=p.timestamp,
                leader_epoch=p.leader_epoch,
            )
    return {k: out.get(k, missing_error(str(k))) for k in keys}


def _partition_failure(code: int, tp: TopicPartition) -> Retry | KafkaError | None:
    what = f"{tp.topic}-{tp.partition}"
    if code == _UNKNOWN_TOPIC_OR_PARTITION:
        # the leader does not know it (yet): metadata decides next round whether it exists
        return Retry(broker_error(code, what) or missing_error(what))
    return retry_or_error(code, what)


def delete_records_request(
    offsets: Mapping[TopicPartition, int], timeout_ms: int
) -> DeleteRecordsRequest:
    topics: dict[str, list[DeleteRecordsPartition]] = {}
    for tp, offset in sorted(offsets.items()):
        topics.setdefault(tp.topic, []).append(
            DeleteRecordsPartition(partition_index=tp.partition, offset=offset)
        )
    return DeleteRecordsRequest(
        topics=[DeleteRecordsTopic(name=t, partitions=p) for t, p in topics.items()],
        timeout_ms=timeout_ms,
    )


def delete_records_outcomes(
    response: DeleteRecordsResponse, keys: Sequence[TopicPartition]
) -> dict[TopicPartition, DeleteRecordsResult | KafkaError | Retry]:
    out: dict[TopicPartition, DeleteRecordsResult | KafkaError | Retry] = {}
    for t in response.topics:
        for p in t.partitions:
            tp = TopicPartition(t.name, p.partition_index)
            failure = _partition_failure(p.error_code, tp)
            out[tp] = failure or DeleteRecordsResult(low_watermark=p.low_watermark)
    return {k: out.get(k, missing_error(str(k))) for k in keys}
