"""``Admin``: the blocking twin of :class:`~kclient.admin.AsyncAdmin`.

Every method forwards to the async method of the same name and signature through the
shared portal (``_portal.py``); the results are the same typed objects. The client
opens in the constructor (a script has no ``async with``), so ``with Admin(...) as
admin:`` and ``admin = Admin(...); ...; admin.close()`` are equivalent. One ``Admin``
may be shared by several threads.

    with Admin(bootstrap_servers="localhost:9092") as admin:
        admin.create_topics([NewTopic("orders", 3, 1)])["orders"].raise_on_error()
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from kclient.admin.admin import AsyncAdmin
from kclient.admin.results import (
    AlterConfigOp,
    AlterConfigsResult,
    ClusterDescription,
    ConfigResource,
    ConfigsDescription,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteGroupResult,
    DeleteRecordsResult,
    DeleteTopicResult,
    GroupDescription,
    GroupListing,
    GroupOffset,
    ListOffsetsResult,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    PartitionResult,
    TopicDescription,
    TopicListing,
)
from kclient.config import AdminConfig
from kclient.net.transport import Transport
from kclient.structs import OffsetAndMetadata, TopicPartition
from kclient.sync._portal import PortalClient

__all__ = ["Admin"]


class Admin(PortalClient[AsyncAdmin]):
    """Administer topics, configs, consumer groups and offsets (blocking calls).

    Keyword arguments are :class:`~kclient.config.AdminConfig` keys.
    """

    _async_name = "AsyncAdmin"

    def __init__(
        self,
        config: AdminConfig | None = None,
        *,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        self._open(functools.partial(AsyncAdmin, config, transport=transport, **settings))

    @property
    def config(self) -> AdminConfig:
        return self._impl.config

    # -- topics ---------------------------------------------------------------------------

    def create_topics(
        self,
        new_topics: Sequence[NewTopic],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[str, CreateTopicResult]:
        return self._call(
            self._impl.create_topics,
            new_topics, validate_only=validate_only, timeout_ms=timeout_ms,
        )  # fmt: skip

    def delete_topics(
        self, topics: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, DeleteTopicResult]:
        return self._call(self._impl.delete_topics, topics, timeout_ms=timeout_ms)

    def create_partitions(
        self,
        topics: Mapping[str, NewPartitions],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[str, CreatePartitionsResult]:
        return self._call(
            self._impl.create_partitions,
            topics, validate_only=validate_only, timeout_ms=timeout_ms,
        )  # fmt: skip

    def list_topics(
        self, *, include_internal: bool = False, timeout_ms: float | None = None
    ) -> list[TopicListing]:
        return self._call(
            self._impl.list_topics, include_internal=include_internal, timeout_ms=timeout_ms
        )

    def describe_topics(
        self, topics: Sequence[str] | None = None, *, timeout_ms: float | None = None
    ) -> dict[str, TopicDescription]:
        return self._call(self._impl.describe_topics, topics, timeout_ms=timeout_ms)

    def describe_cluster(self, *, timeout_ms: float | None = None) -> ClusterDescription:
        return self._call(self._impl.describe_cluster, timeout_ms=timeout_ms)

    # -- configs --------------------------------------------------------------------------

    def describe_configs(
        self,
        resources: Sequence[ConfigResource],
        *,
        include_synonyms: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[ConfigResource, ConfigsDescription]:
        return self._call(
            self._impl.describe_configs,
            resources, include_synonyms=include_synonyms, timeout_ms=timeout_ms,
        )  # fmt: skip

    def incremental_alter_configs(
        self,
        changes: Mapping[ConfigResource, Sequence[AlterConfigOp]],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[ConfigResource, AlterConfigsResult]:
        return self._call(
            self._impl.incremental_alter_configs,
            changes, validate_only=validate_only, timeout_ms=timeout_ms,
        )  # fmt: skip

    # -- consumer groups ------------------------------------------------------------------

    def list_consumer_groups(
        self, *, states: Sequence[str] | None = None, timeout_ms: float | None = None
    ) -> list[GroupListing]:
        return self._call(self._impl.list_consumer_groups, states=states, timeout_ms=timeout_ms)

    def describe_consumer_groups(
        self, group_ids: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, GroupDescription]:
        return self._call(self._impl.describe_consumer_groups, group_ids, timeout_ms=timeout_ms)

    def delete_consumer_groups(
        self, group_ids: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, DeleteGroupResult]:
        return self._call(self._impl.delete_consumer_groups, group_ids, timeout_ms=timeout_ms)

    # -- offsets --------------------------------------------------------------------------

    def list_offsets(
        self,
        specs: Mapping[TopicPartition, OffsetSpec],
        *,
        isolation_level: str = "read_uncommitted",
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, ListOffsetsResult]:
        return self._call(
            self._impl.list_offsets,
            specs, isolation_level=isolation_level, timeout_ms=timeout_ms,
        )  # fmt: skip

    def delete_records(
        self, before: Mapping[TopicPartition, int], *, timeout_ms: float | None = None
    ) -> dict[TopicPartition, DeleteRecordsResult]:
        return self._call(self._impl.delete_records, before, timeout_ms=timeout_ms)

    def list_consumer_group_offsets(
        self,
        group_id: str,
        partitions: Sequence[TopicPartition] | None = None,
        *,
        with_lag: bool = True,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, GroupOffset]:
        return self._call(
            self._impl.list_consumer_group_offsets,
            group_id, partitions, with_lag=with_lag, timeout_ms=timeout_ms,
        )  # fmt: skip

    def alter_consumer_group_offsets(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
        *,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, PartitionResult]:
        return self._call(
            self._impl.alter_consumer_group_offsets, group_id, offsets, timeout_ms=timeout_ms
        )

    def delete_consumer_group_offsets(
        self,
        group_id: str,
        partitions: Sequence[TopicPartition],
        *,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, PartitionResult]:
        return self._call(
            self._impl.delete_consumer_group_offsets, group_id, partitions, timeout_ms=timeout_ms
        )

    def close(self) -> None:
        """Close connections and stop the background tasks; a second call is a no-op."""
        self._shutdown()
