"""``AsyncAdmin``: the admin client facade.

Each method is the same three steps: pick the route (controller, coordinator,
partition leader, any broker), let :meth:`Router.fan_out` send and retry, and
turn the keys that still failed into result objects carrying ``error``. The
request building and response reading are pure functions in ``_topics`` and
``_groups``; the only awaiting code is here and in ``_routing``.

    async with AsyncAdmin(bootstrap_servers="localhost:9092") as admin:
        results = await admin.create_topics([NewTopic("orders", 3, 1)])
        results["orders"].raise_on_error()
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kclient.admin import _groups, _topics
from kclient.admin._base import expect, finish, one
from kclient.admin._offsets import OffsetOps
from kclient.admin._routing import (
    ControllerRoute,
    CoordinatorRoute,
    FixedRoute,
)
from kclient.admin.results import (
    AlterConfigOp,
    AlterConfigsResult,
    ClusterDescription,
    ConfigResource,
    ConfigsDescription,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteGroupResult,
    DeleteTopicResult,
    GroupDescription,
    GroupListing,
    NewPartitions,
    NewTopic,
    TopicDescription,
    TopicListing,
)
from protocol.messages.create_partitions import CreatePartitionsRequest, CreatePartitionsResponse
from protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from protocol.messages.describe_cluster import DescribeClusterRequest, DescribeClusterResponse
from protocol.messages.describe_configs import DescribeConfigsRequest, DescribeConfigsResponse
from protocol.messages.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse

__all__ = ["AsyncAdmin"]

log = logging.getLogger("kclient.admin")


class AsyncAdmin(OffsetOps):
    """Administer topics, configs, consumer groups and offsets of a Kafka cluster.

    Use as ``async with AsyncAdmin(bootstrap_servers=...) as admin:``; keyword
    arguments are :class:`~kclient.config.AdminConfig` keys.
    """

    # -- topics ---------------------------------------------------------------------------

    async def create_topics(
        self,
        new_topics: Sequence[NewTopic],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[str, CreateTopicResult]:
        """Create topics (through the controller); one result per topic name."""
        deadline = self._r.deadline(timeout_ms)
        by_name = {t.name: t for t in new_topics}

        async def send(node: int, names: Sequence[str]) -> Mapping[str, Any]:
            topics = [by_name[n] for n in names]
            timeout = self._broker_timeout(deadline)
            response = await self._call(
                node,
                CreateTopicsRequest,
                lambda v: _topics.create_topics_request(topics, validate_only, timeout, v),
                deadline,
            )
            return _topics.create_topics_outcomes(expect(response, CreateTopicsResponse), names)

        raw = await self._r.fan_out(by_name, ControllerRoute(self._r), send, deadline)
        return finish(raw, lambda n, e: CreateTopicResult(name=n, error=e))

    async def delete_topics(
        self, topics: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, DeleteTopicResult]:
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, names: Sequence[str]) -> Mapping[str, Any]:
            timeout = self._broker_timeout(deadline)
            response = await self._call(
                node,
                DeleteTopicsRequest,
                lambda v: _topics.delete_topics_request(names, timeout, v),
                deadline,
            )
            return _topics.delete_topics_outcomes(expect(response, DeleteTopicsResponse), names)

        raw = await self._r.fan_out(topics, ControllerRoute(self._r), send, deadline)
        return finish(raw, lambda n, e: DeleteTopicResult(name=n, error=e))

    async def create_partitions(
        self,
        topics: Mapping[str, NewPartitions],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[str, CreatePartitionsResult]:
        """Grow topics to ``NewPartitions.total_count`` partitions."""
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, names: Sequence[str]) -> Mapping[str, Any]:
            wanted = {n: topics[n] for n in names}
            timeout = self._broker_timeout(deadline)
            response = await self._call(
                node,
                CreatePartitionsRequest,
                lambda v: _topics.create_partitions_request(wanted, validate_only, timeout, v),
                deadline,
            )
            return _topics.create_partitions_outcomes(
                expect(response, CreatePartitionsResponse), names
            )

        raw = await self._r.fan_out(topics, ControllerRoute(self._r), send, deadline)
        return finish(raw, lambda n, e: CreatePartitionsResult(name=n, error=e))

    async def list_topics(
        self, *, include_internal: bool = False, timeout_ms: float | None = None
    ) -> list[TopicListing]:
        response = await self._r.topic_metadata(None, self._r.deadline(timeout_ms))
        return _topics.topic_listings(response, include_internal)

    async def describe_topics(
        self, topics: Sequence[str] | None = None, *, timeout_ms: float | None = None
    ) -> dict[str, TopicDescription]:
        """Partitions, leaders, replicas and ISR; None describes every topic."""
        response = await self._r.topic_metadata(topics, self._r.deadline(timeout_ms))
        return _topics.topic_descriptions(response, topics)

    async def describe_cluster(self, *, timeout_ms: float | None = None) -> ClusterDescription:
        deadline = self._r.deadline(timeout_ms)
        node = await self._r.any_node(deadline)
        versions = (await self._r.pool.get(node)).versions
        if versions is not None and versions.supports(DescribeClusterRequest.API_KEY):
            response = await self._r.call_any(
                DescribeClusterRequest, lambda v: DescribeClusterRequest(), deadline
            )
            return _topics.cluster_from_describe(expect(response, DescribeClusterResponse))
        metadata = await self._r.topic_metadata((), deadline)
        return _topics.cluster_from_metadata(metadata)

    # -- configs --------------------------------------------------------------------------

    async def describe_configs(
        self,
        resources: Sequence[ConfigResource],
        *,
        include_synonyms: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[ConfigResource, ConfigsDescription]:
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, keys: Sequence[ConfigResource]) -> Mapping[ConfigResource, Any]:
            response = await self._call(
                node,
                DescribeConfigsRequest,
                lambda v: _topics.describe_configs_request(keys, include_synonyms, v),
                deadline,
            )
            return _topics.describe_configs_outcomes(
                expect(response, DescribeConfigsResponse), keys
            )

        route = FixedRoute(self._r, _topics.broker_node)
        raw = await self._r.fan_out(resources, route, send, deadline)
        return finish(raw, lambda r, e: ConfigsDescription(resource=r, error=e))

    async def incremental_alter_configs(
        self,
        changes: Mapping[ConfigResource, Sequence[AlterConfigOp]],
        *,
        validate_only: bool = False,
        timeout_ms: float | None = None,
    ) -> dict[ConfigResource, AlterConfigsResult]:
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, keys: Sequence[ConfigResource]) -> Mapping[ConfigResource, Any]:
            wanted = {k: changes[k] for k in keys}
            response = await self._call(
                node,
                IncrementalAlterConfigsRequest,
                lambda v: _topics.alter_configs_request(wanted, validate_only, v),
                deadline,
            )
            return _topics.alter_configs_outcomes(
                expect(response, IncrementalAlterConfigsResponse), keys
            )

        route = FixedRoute(self._r, _topics.broker_node)
        raw = await self._r.fan_out(changes, route, send, deadline)
        return finish(raw, lambda r, e: AlterConfigsResult(resource=r, error=e))

    # -- consumer groups ------------------------------------------------------------------

    async def list_consumer_groups(
        self, *, states: Sequence[str] | None = None, timeout_ms: float | None = None
    ) -> list[GroupListing]:
        """Groups of every broker (each broker knows the groups it coordinates).

        A broker that cannot be asked within the timeout fails the call: a partial
        list would silently hide groups.
        """
        deadline = self._r.deadline(timeout_ms)
        brokers = await self._r.snapshot_brokers(deadline, fresh=True)

        async def send(node: int, keys: Sequence[int]) -> Mapping[int, Any]:
            response = await self._call(
                node, ListGroupsRequest, lambda v: _groups.list_groups_request(states, v), deadline
            )
            return {node: _groups.list_groups_outcome(expect(response, ListGroupsResponse), node)}

        raw = await self._r.fan_out(brokers, FixedRoute(self._r, lambda n: n), send, deadline)
        listings: dict[str, GroupListing] = {}
        for node in brokers:
            for listing in one(raw, node):
                listings[listing.group_id] = listing
        wanted = set(states or ())
        return sorted(
            (g for g in listings.values() if not wanted or not g.state or g.state in wanted),
            key=lambda g: g.group_id,
        )

    async def describe_consumer_groups(
        self, group_ids: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, GroupDescription]:
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, groups: Sequence[str]) -> Mapping[str, Any]:
            response = await self._call(
                node,
                DescribeGroupsRequest,
                lambda v: DescribeGroupsRequest(groups=list(groups)),
                deadline,
            )
            found = _groups.describe_groups_outcomes(
                expect(response, DescribeGroupsResponse), groups
            )
            coordinator = self._node(node)
            return {
                g: dataclasses.replace(d, coordinator=coordinator)
                if isinstance(d, GroupDescription)
                else d
                for g, d in found.items()
            }

        route = CoordinatorRoute(self._r, lambda g: g)
        raw = await self._r.fan_out(group_ids, route, send, deadline)
        return finish(raw, lambda g, e: GroupDescription(group_id=g, error=e))

    async def delete_consumer_groups(
        self, group_ids: Sequence[str], *, timeout_ms: float | None = None
    ) -> dict[str, DeleteGroupResult]:
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, groups: Sequence[str]) -> Mapping[str, Any]:
            response = await self._call(
                node,
                DeleteGroupsRequest,
                lambda v: DeleteGroupsRequest(groups_names=list(groups)),
                deadline,
            )
            return _groups.delete_groups_outcomes(expect(response, DeleteGroupsResponse), groups)

        route = CoordinatorRoute(self._r, lambda g: g)
        raw = await self._r.fan_out(group_ids, route, send, deadline)
        return finish(raw, lambda g, e: DeleteGroupResult(group_id=g, error=e))
