"""ApiVersions, Metadata, topic admin, DeleteRecords and FindCoordinator."""

from __future__ import annotations

import uuid

from kclient.testing.mock.codes import Err
from kclient.testing.mock.handlers.common import Ctx
from kclient.testing.mock.handlers.versions import SUPPORTED
from kclient.testing.mock.state import Topic
from protocol.messages.api_versions import ApiVersion, ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)
from protocol.messages.create_topics import (
    CreatableTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from protocol.messages.delete_records import (
    DeleteRecordsPartitionResult,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)
from protocol.messages.delete_topics import (
    DeletableTopicResult,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from protocol.messages.find_coordinator import (
    Coordinator,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from protocol.messages.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

__all__ = [
    "handle_api_versions",
    "handle_create_partitions",
    "handle_create_topics",
    "handle_delete_records",
    "handle_delete_topics",
    "handle_find_coordinator",
    "handle_metadata",
]

_ZERO_UUID = uuid.UUID(int=0)


def handle_api_versions(ctx: Ctx, req: ApiVersionsRequest) -> ApiVersionsResponse:
    keys = [
        ApiVersion(api_key=k, min_version=lo, max_version=hi) for k, (lo, hi) in SUPPORTED.items()
    ]
    error = ctx.request_error()
    return ApiVersionsResponse(
        error_code=error or 0, api_keys=sorted(keys, key=lambda a: a.api_key)
    )


def handle_metadata(ctx: Ctx, req: MetadataRequest) -> MetadataResponse:
    cluster = ctx.cluster
    brokers = [
        MetadataResponseBroker(node_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
        for b in cluster.brokers.values()
        if b.up
    ]
    topics: list[MetadataResponseTopic] = []
    if req.topics is None:
        names: list[str | uuid.UUID] = list(cluster.topics)
    else:
        names = [t.name if t.name is not None else t.topic_id for t in req.topics]
    auto = req.allow_auto_topic_creation and cluster.auto_create_topics and ctx.version >= 4
    for key in names:
        topics.append(
            _metadata_topic(ctx, key, auto or (ctx.version < 4 and cluster.auto_create_topics))
        )
    error = ctx.request_error()
    if error is not None:
        for t in topics:
            t.error_code = error
    return MetadataResponse(
        brokers=brokers,
        cluster_id=cluster.cluster_id,
        controller_id=cluster.controller_id,
        topics=topics,
    )


def _metadata_topic(ctx: Ctx, key: str | uuid.UUID, auto: bool) -> MetadataResponseTopic:
    cluster = ctx.cluster
    topic: Topic | None
    if isinstance(key, uuid.UUID):
        topic = cluster.topic_by_id(key)
        if topic is None:
            return MetadataResponseTopic(error_code=Err.UNKNOWN_TOPIC_ID, name=None, topic_id=key)
    else:
        topic = cluster.topics.get(key)
        if topic is None and auto and key:
            topic = cluster.create_topic(key)
        if topic is None:
            return MetadataResponseTopic(error_code=Err.UNKNOWN_TOPIC_OR_PARTITION, name=key)
    partitions = []
    for p in topic.partitions:
        leader_up = cluster.brokers[p.leader].up
        partitions.append(
            MetadataResponsePartition(
                error_code=0 if leader_up else Err.LEADER_NOT_AVAILABLE,
                partition_index=p.index,
                leader_id=p.leader if leader_up else -1,
                leader_epoch=p.log.leader_epoch,
                replica_nodes=list(p.replicas),
                isr_nodes=[r for r in p.replicas if cluster.brokers[r].up],
            )
        )
    return MetadataResponseTopic(
        error_code=0, name=topic.name, topic_id=topic.topic_id, partitions=partitions
    )


def handle_create_topics(ctx: Ctx, req: CreateTopicsRequest) -> CreateTopicsResponse:
    results = []
    for t in req.topics:
        error = ctx.request_error()
        if error is None:
            error = _create_topic_error(ctx, t.name, t.num_partitions, t.replication_factor)
        created = ctx.cluster.topics.get(t.name) if error == 0 else None
        if error == 0 and not req.validate_only:
            configs = {c.name: c.value or "" for c in t.configs}
            created = ctx.cluster.create_topic(
                t.name, t.num_partitions, t.replication_factor, configs
            )
        results.append(
            CreatableTopicResult(
                name=t.name,
                topic_id=created.topic_id if created else _ZERO_UUID,
                error_code=error,
                num_partitions=len(created.partitions) if created else -1,
                replication_factor=len(created.partitions[0].replicas) if created else -1,
            )
        )
    return CreateTopicsResponse(topics=results)


def _create_topic_error(ctx: Ctx, name: str, partitions: int, rf: int) -> int:
    if not name or len(name) > 249 or name in (".", ".."):
        return Err.INVALID_TOPIC_EXCEPTION
    if name in ctx.cluster.topics:
        return Err.TOPIC_ALREADY_EXISTS
    if partitions == 0 or partitions < -1:
        return Err.INVALID_PARTITIONS
    if rf == 0 or rf < -1 or rf > len(ctx.cluster.brokers):
        return Err.INVALID_REPLICATION_FACTOR
    return 0


def handle_delete_topics(ctx: Ctx, req: DeleteTopicsRequest) -> DeleteTopicsResponse:
    results = []
    keys: list[tuple[str | None, uuid.UUID]] = [(n, _ZERO_UUID) for n in req.topic_names]
    keys += [(t.name, t.topic_id) for t in req.topics]
    for name, topic_id in keys:
        if name is None:
            found = ctx.cluster.topic_by_id(topic_id)
            name = found.name if found else None
        error = ctx.request_error()
        if error is None:
            error = ctx.cluster.delete_topic(name) if name else Err.UNKNOWN_TOPIC_ID
        results.append(DeletableTopicResult(name=name, topic_id=topic_id, error_code=error))
    return DeleteTopicsResponse(responses=results)


def handle_create_partitions(ctx: Ctx, req: CreatePartitionsRequest) -> CreatePartitionsResponse:
    results = []
    for t in req.topics:
        error = ctx.request_error()
        if error is None:
            topic = ctx.cluster.topics.get(t.name)
            if req.validate_only:
                error = 0 if topic and t.count > len(topic.partitions) else Err.INVALID_PARTITIONS
            else:
                error = ctx.cluster.create_partitions(t.name, t.count)
        results.append(CreatePartitionsTopicResult(name=t.name, error_code=error))
    return CreatePartitionsResponse(results=results)


def handle_delete_records(ctx: Ctx, req: DeleteRecordsRequest) -> DeleteRecordsResponse:
    tps = [(t.name, p.partition_index) for t in req.topics for p in t.partitions]
    injected = ctx.partition_errors(tps)
    topics = []
    for t in req.topics:
        results = []
        for p in t.partitions:
            error, part = ctx.cluster.leader_check(t.name, p.partition_index, ctx.broker)
            low = -1
            error = injected.get((t.name, p.partition_index), error)
            if error == 0 and part is not None:
                try:
                    low = part.log.delete_records(p.offset)
                except ValueError:
                    error = Err.OFFSET_OUT_OF_RANGE
            results.append(
                DeleteRecordsPartitionResult(
                    partition_index=p.partition_index, low_watermark=low, error_code=error
                )
            )
        topics.append(DeleteRecordsTopicResult(name=t.name, partitions=results))
    return DeleteRecordsResponse(topics=topics)


def handle_find_coordinator(ctx: Ctx, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    keys = req.coordinator_keys if ctx.version >= 4 else [req.key]
    coordinators = [_coordinator(ctx, key, req.key_type) for key in keys]
    if ctx.version >= 4:
        return FindCoordinatorResponse(coordinators=coordinators)
    c = coordinators[0]
    return FindCoordinatorResponse(
        error_code=c.error_code,
        error_message=c.error_message,
        node_id=c.node_id,
        host=c.host,
        port=c.port,
    )


def _coordinator(ctx: Ctx, key: str, key_type: int) -> Coordinator:
    cluster = ctx.cluster
    if key_type == 1:
        node = cluster.txn_coordinator(key)
    elif key_type == 0:
        node = cluster.group_coordinator(key)
    else:
        return Coordinator(key=key, node_id=-1, error_code=Err.INVALID_REQUEST)
    error = ctx.request_error()
    broker = cluster.brokers[node]
    if error is None and not broker.up:
        error = Err.COORDINATOR_NOT_AVAILABLE
    if error:
        return Coordinator(key=key, node_id=-1, host="", port=-1, error_code=error)
    return Coordinator(key=key, node_id=node, host=broker.host, port=broker.port, error_code=0)
