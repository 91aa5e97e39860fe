"""Pure request builders and response readers for topic, cluster and config operations.

Builders take the negotiated version (fields that moved between versions are
filled for that version only: encoding a field a version lacks is an error).
Readers map a response to ``key -> result | KafkaError | Retry``; the routing
errors (NOT_CONTROLLER, ...) become :class:`Retry`, every other error is final
for its key only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kclient.admin._routing import (
    Retry,
    broker_error,
    missing_error,
    retry_or_error,
)
from kclient.admin.results import (
    AlterConfigOp,
    AlterConfigsResult,
    ClusterDescription,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConfigsDescription,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteTopicResult,
    NewPartitions,
    NewTopic,
    Node,
    PartitionDescription,
    TopicDescription,
    TopicListing,
)
from kclient.errors import KafkaError
from protocol.messages.create_partitions import (
    CreatePartitionsAssignment,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopic,
)
from protocol.messages.create_topics import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from protocol.messages.delete_topics import (
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DeleteTopicState,
)
from protocol.messages.describe_cluster import DescribeClusterResponse
from protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
    DescribeConfigsResponse,
)
from protocol.messages.incremental_alter_configs import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from protocol.messages.metadata import MetadataResponse

# -- CreateTopics ---------------------------------------------------------------------------


def create_topics_request(
    topics: Sequence[NewTopic], validate_only: bool, timeout_ms: int, version: int
) -> CreateTopicsRequest:
    return CreateTopicsRequest(
        topics=[_creatable(t) for t in topics],
        timeout_ms=timeout_ms,
        validate_only=validate_only if version >= 1 else False,
    )


def _creatable(topic: NewTopic) -> CreatableTopic:
    assignment = topic.replica_assignment
    return CreatableTopic(
        name=topic.name,
        num_partitions=-1 if assignment else topic.num_partitions,
        replication_factor=-1 if assignment else topic.replication_factor,
        assignments=[
            CreatableReplicaAssignment(partition_index=p, broker_ids=list(ids))
            for p, ids in sorted((assignment or {}).items())
        ],
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in topic.topic_configs.items()],
    )


def create_topics_outcomes(
    response: CreateTopicsResponse, names: Sequence[str]
) -> dict[str, CreateTopicResult | KafkaError | Retry]:
    out: dict[str, CreateTopicResult | KafkaError | Retry] = {}
    for t in response.topics:
        what = f"topic {t.name!r}"
        failure = retry_or_error(t.error_code, what, t.error_message)
        if failure is not None:
            out[t.name] = failure
            continue
        out[t.name] = CreateTopicResult(
            name=t.name,
            topic_id=t.topic_id,
            num_partitions=t.num_partitions,
            replication_factor=t.replication_factor,
            configs={c.name: c.value for c in t.configs or []},
        )
    return {n: out.get(n, missing_error(f"topic {n!r}")) for n in names}


# -- DeleteTopics ---------------------------------------------------------------------------


def delete_topics_request(
    names: Sequence[str], timeout_ms: int, version: int
) -> DeleteTopicsRequest:
    if version >= 6:
        return DeleteTopicsRequest(
            topics=[DeleteTopicState(name=n) for n in names], timeout_ms=timeout_ms
        )
    return DeleteTopicsRequest(topic_names=list(names), timeout_ms=timeout_ms)


def delete_topics_outcomes(
    response: DeleteTopicsResponse, names: Sequence[str]
) -> dict[str, DeleteTopicResult | KafkaError | Retry]:
    out: dict[str, DeleteTopicResult | KafkaError | Retry] = {}
    for t in response.responses:
        name = t.name or ""
        failure = retry_or_error(t.error_code, f"topic {name!r}", t.error_message)
        out[name] = failure or DeleteTopicResult(name=name, topic_id=t.topic_id)
    return {n: out.get(n, missing_error(f"topic {n!r}")) for n in names}


# -- CreatePartitions -----------------------------------------------------------------------


def create_partitions_request(
    topics: Mapping[str, NewPartitions], validate_only: bool, timeout_ms: int, version: int
) -> CreatePartitionsRequest:
    return CreatePartitionsRequest(
        topics=[
            CreatePartitionsTopic(
                name=name,
                count=p.total_count,
                assignments=None
                if p.new_assignments is None
                else [CreatePartitionsAssignment(broker_ids=list(a)) for a in p.new_assignments],
            )
            for name, p in topics.items()
        ],
        timeout_ms=timeout_ms,
        validate_only=validate_only,
    )


def create_partitions_outcomes(
    response: CreatePartitionsResponse, names: Sequence[str]
) -> dict[str, CreatePartitionsResult | KafkaError | Retry]:
    out: dict[str, CreatePartitionsResult | KafkaError | Retry] = {}
    for t in response.results:
        failure = retry_or_error(t.error_code, f"topic {t.name!r}", t.error_message)
        out[t.name] = failure or CreatePartitionsResult(name=t.name)
    return {n: out.get(n, missing_error(f"topic {n!r}")) for n in names}


# -- Metadata-based descriptions ------------------------------------------------------------


def topic_listings(response: MetadataResponse, include_internal: bool) -> list[TopicListing]:
    listings = [
        TopicListing(t.name or "", t.topic_id, t.is_internal)
        for t in response.topics
        if t.error_code == 0 and t.name and (include_internal or not t.is_internal)
    ]
    return sorted(listings, key=lambda t: t.name)


def topic_descriptions(
    response: MetadataResponse, names: Sequence[str] | None
) -> dict[str, TopicDescription]:
    out: dict[str, TopicDescription] = {}
    for t in response.topics:
        name = t.name or ""
        error = broker_error(t.error_code, f"topic {name!r}")
        if error is not None:
            out[name] = TopicDescription(name=name, error=error)
            continue
        parts = tuple(
            PartitionDescription(
                partition=p.partition_index,
                leader=p.leader_id,
                leader_epoch=p.leader_epoch,
                replicas=tuple(p.replica_nodes),
                isr=tuple(p.isr_nodes),
                offline_replicas=tuple(p.offline_replicas),
            )
            for p in sorted(t.partitions, key=lambda p: p.partition_index)
        )
        out[name] = TopicDescription(
            name=name, topic_id=t.topic_id, is_internal=t.is_internal, partitions=parts
        )
    if names is None:
        return dict(sorted(out.items()))
    return {
        n: out.get(n, TopicDescription(name=n, error=missing_error(f"topic {n!r}"))) for n in names
    }


def cluster_from_metadata(response: MetadataResponse) -> ClusterDescription:
    nodes = tuple(Node(b.node_id, b.host, b.port, b.rack) for b in response.brokers)
    return _cluster(response.cluster_id, response.controller_id, nodes)


def cluster_from_describe(response: DescribeClusterResponse) -> ClusterDescription:
    error = broker_error(response.error_code, "DescribeCluster", response.error_message)
    if error is not None:
        raise error
    nodes = tuple(Node(b.broker_id, b.host, b.port, b.rack) for b in response.brokers)
    return _cluster(response.cluster_id or None, response.controller_id, nodes)


def _cluster(
    cluster_id: str | None, controller_id: int, nodes: tuple[Node, ...]
) -> ClusterDescription:
    ordered = tuple(sorted(nodes, key=lambda n: n.node_id))
    controller = next((n for n in ordered if n.node_id == controller_id), None)
    return ClusterDescription(cluster_id, controller, ordered)


# -- configs --------------------------------------------------------------------------------


def _resource(type_code: int, name: str) -> ConfigResource:
    try:
        return ConfigResource(ConfigResourceType(type_code), name)
    except ValueError:  # a resource type newer than this client
        return ConfigResource(ConfigResourceType.UNKNOWN, name)


def broker_node(resource: ConfigResource) -> int | None:
    """Broker resources must be asked of that broker; the rest of any broker."""
    broker_types = (ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER)
    if resource.type in broker_types and resource.name.isdigit():
        return int(resource.name)
    return None


def describe_configs_request(
    resources: Sequence[ConfigResource], include_synonyms: bool, version: int
) -> DescribeConfigsRequest:
    return DescribeConfigsRequest(
        resources=[
            DescribeConfigsResource(
                resource_type=int(r.type), resource_name=r.name, configuration_keys=None
            )
            for r in resources
        ],
        include_synonyms=include_synonyms and version >= 1,
    )


def describe_configs_outcomes(
    response: DescribeConfigsResponse, resources: Sequence[ConfigResource]
) -> dict[ConfigResource, ConfigsDescription | KafkaError | Retry]:
    out: dict[ConfigResource, ConfigsDescription | KafkaError | Retry] = {}
    for r in response.results:
        resource = _resource(r.resource_type, r.resource_name)
        failure = retry_or_error(r.error_code, f"{resource}", r.error_message)
        if failure is not None:
            out[resource] = failure
            continue
        entries = {
            c.name: ConfigEntry(
                name=c.name,
                value=c.value,
                source=c.config_source,
                is_default=c.is_default or c.config_source == 5,
                read_only=c.read_only,
                is_sensitive=c.is_sensitive,
                synonyms=tuple((s.name, s.value, s.source) for s in c.synonyms),
            )
            for c in r.configs
        }
        out[resource] = ConfigsDescription(resource=resource, entries=entries)
    return {r: out.get(r, missing_error(str(r))) for r in resources}


def alter_configs_request(
    changes: Mapping[ConfigResource, Sequence[AlterConfigOp]], validate_only: bool, version: int
) -> IncrementalAlterConfigsRequest:
    return IncrementalAlterConfigsRequest(
        resources=[
            AlterConfigsResource(
                resource_type=int(r.type),
                resource_name=r.name,
                configs=[
                    AlterableConfig(name=o.name, config_operation=int(o.op), value=o.value)
                    for o in ops
                ],
            )
            for r, ops in changes.items()
        ],
        validate_only=validate_only,
    )


def alter_configs_outcomes(
    response: IncrementalAlterConfigsResponse, resources: Sequence[ConfigResource]
) -> dict[ConfigResource, AlterConfigsResult | KafkaError | Retry]:
    out: dict[ConfigResource, AlterConfigsResult | KafkaError | Retry] = {}
    for r in response.responses:
        resource = _resource(r.resource_type, r.resource_name)
        failure = retry_or_error(r.error_code, f"{resource}", r.error_message)
        out[resource] = failure or AlterConfigsResult(resource=resource)
    return {r: out.get(r, missing_error(str(r))) for r in resources}
