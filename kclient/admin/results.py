"""Inputs and typed results of the admin client.

Every operation on several items (topics, groups, partitions, config resources)
returns a ``dict`` from the item to a frozen result whose ``error`` is None on
success, or the error that concerns that item alone (a broker error class from
``kclient.errors``, or a :class:`~kclient.errors.KafkaTimeoutError` when the
item could not be done within the timeout). One failed item never fails the
others; ``result.raise_on_error()`` turns it into an exception when wanted.
Names follow the Java AdminClient / aiokafka where natural.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from kclient.errors import KafkaError
from kclient.structs import OffsetAndMetadata, TopicPartition

NO_TOPIC_ID: Final = uuid.UUID(int=0)

__all__ = [
    "AlterConfigOp",
    "AlterConfigOpType",
    "AlterConfigsResult",
    "ClusterDescription",
    "ConfigEntry",
    "ConfigResource",
    "ConfigResourceType",
    "ConfigsDescription",
    "CreatePartitionsResult",
    "CreateTopicResult",
    "DeleteGroupResult",
    "DeleteRecordsResult",
    "DeleteTopicResult",
    "GroupDescription",
    "GroupListing",
    "GroupOffset",
    "ItemResult",
    "ListOffsetsResult",
    "MemberDescription",
    "NewPartitions",
    "NewTopic",
    "Node",
    "OffsetAndMetadata",
    "OffsetSpec",
    "PartitionDescription",
    "PartitionResult",
    "TopicDescription",
    "TopicListing",
    "TopicPartition",
]


@dataclass(frozen=True, kw_only=True)
class ItemResult:
    """Base of per-item results: ``error`` is None when the item succeeded."""

    error: KafkaError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_on_error(self) -> None:
        if self.error is not None:
            raise self.error


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTopic:
    """A topic to create. ``num_partitions``/``replication_factor`` -1: broker default.

    ``replica_assignment`` (partition -> broker ids) replaces both counts when given.
    """

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    replica_assignment: Mapping[int, Sequence[int]] | None = None
    topic_configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class NewPartitions:
    """Grow a topic to ``total_count`` partitions (optionally placing the new ones)."""

    total_count: int
    new_assignments: Sequence[Sequence[int]] | None = None


class ConfigResourceType(enum.IntEnum):
    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


@dataclass(frozen=True, order=True)
class ConfigResource:
    """A thing that has configs: a topic by name, a broker by node id ("1"), ..."""

    type: ConfigResourceType
    name: str

    @classmethod
    def topic(cls, name: str) -> ConfigResource:
        return cls(ConfigResourceType.TOPIC, name)

    @classmethod
    def broker(cls, node_id: int | str) -> ConfigResource:
        return cls(ConfigResourceType.BROKER, str(node_id))


class AlterConfigOpType(enum.IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True)
class AlterConfigOp:
    name: str
    value: str | None = None
    op: AlterConfigOpType = AlterConfigOpType.SET


@dataclass(frozen=True)
class OffsetSpec:
    """Which offset :meth:`AsyncAdmin.list_offsets` looks up (the ListOffsets timestamp)."""

    timestamp: int

    EARLIEST_TIMESTAMP = -2
    LATEST_TIMESTAMP = -1
    MAX_TIMESTAMP = -3

    @classmethod
    def earliest(cls) -> OffsetSpec:
        return cls(cls.EARLIEST_TIMESTAMP)

    @classmethod
    def latest(cls) -> OffsetSpec:
        return cls(cls.LATEST_TIMESTAMP)

    @classmethod
    def max_timestamp(cls) -> OffsetSpec:
        return cls(cls.MAX_TIMESTAMP)

    @classmethod
    def for_timestamp(cls, timestamp_ms: int) -> OffsetSpec:
        """The first offset whose timestamp is >= ``timestamp_ms``."""
        if timestamp_ms < 0:
            raise ValueError("timestamp_ms must be >= 0; use earliest()/latest()")
        return cls(timestamp_ms)


# -- cluster and topics ---------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class ClusterDescription:
    cluster_id: str | None
    controller: Node | None
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class TopicListing:
    name: str
    topic_id: uuid.UUID
    is_internal: bool = False


@dataclass(frozen=True)
class PartitionDescription:
    partition: int
    leader: int  # -1: none
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TopicDescription(ItemResult):
    name: str
    topic_id: uuid.UUID = NO_TOPIC_ID
    is_internal: bool = False
    partitions: tuple[PartitionDescription, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CreateTopicResult(ItemResult):
    name: str
    topic_id: uuid.UUID = NO_TOPIC_ID
    num_partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DeleteTopicResult(ItemResult):
    name: str
    topic_id: uuid.UUID = NO_TOPIC_ID


@dataclass(frozen=True, kw_only=True)
class CreatePartitionsResult(ItemResult):
    name: str


# -- configs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: int = -1  # DescribeConfigs ConfigSource (1 topic, 4 static broker, 5 default, ...)
    is_default: bool = False
    read_only: bool = False
    is_sensitive: bool = False
    synonyms: tuple[tuple[str, str | None, int], ...] = ()  # (name, value, source)


@dataclass(frozen=True, kw_only=True)
class ConfigsDescription(ItemResult):
    resource: ConfigResource
    entries: Mapping[str, ConfigEntry] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AlterConfigsResult(ItemResult):
    resource: ConfigResource


# -- groups and offsets --------------------------------------------------------------------


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str = ""  # "" when the broker predates ListGroups v4
    group_type: str = ""


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None = None
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GroupDescription(ItemResult):
    group_id: str
    state: str = ""
    protocol_type: str = ""
    protocol: str = ""  # the assignor chosen for a "consumer" group
    members: tuple[MemberDescription, ...] = ()
    coordinator: Node | None = None


@dataclass(frozen=True, kw_only=True)
class DeleteGroupResult(ItemResult):
    group_id: str


@dataclass(frozen=True, kw_only=True)
class GroupOffset(ItemResult):
    """A group's committed offset of one partition, and how far it lags behind the end.

    ``committed`` is None when the group has no offset for the partition; ``lag`` is
    ``end_offset - committed.offset`` when both are known.
    """

    committed: OffsetAndMetadata | None = None
    end_offset: int | None = None

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.end_offset is None:
            return None
        return max(0, self.end_offset - self.committed.offset)


@dataclass(frozen=True, kw_only=True)
class PartitionResult(ItemResult):
    """Outcome of an operation on one partition that returns nothing else."""


@dataclass(frozen=True, kw_only=True)
class ListOffsetsResult(ItemResult):
    offset: int = -1
    timestamp: int = -1
    leader_epoch: int = -1


@dataclass(frozen=True, kw_only=True)
class DeleteRecordsResult(ItemResult):
    low_watermark: int = -1
