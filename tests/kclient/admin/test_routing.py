"""Routing and retries of AsyncAdmin against local fake brokers: NOT_CONTROLLER,
NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS and leader moves, then success."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from kclient.admin import AsyncAdmin, NewPartitions, NewTopic, OffsetSpec
from kclient.errors import KafkaTimeoutError, UnsupportedVersionForApiError
from kclient.structs import TopicPartition
from protocol.messages.create_topics import CreatableTopicResult, CreateTopicsResponse
from protocol.messages.describe_groups import DescribedGroup, DescribeGroupsResponse
from protocol.messages.find_coordinator import Coordinator, FindCoordinatorResponse
from protocol.messages.list_offsets import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from protocol.messages.metadata import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from protocol.messages.offset_fetch import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopics,
)

from ..net.fake_broker import FakeBroker, api_versions_ok, running

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = dict(
    request_timeout_ms=2000,
    default_api_timeout_ms=3000,
    retry_backoff_ms=10,
    retry_backoff_max_ms=50,
    reconnect_backoff_ms=10,
)


def metadata(brokers: dict[int, FakeBroker], leader: Callable[[], int] = lambda: 1) -> Any:
    def handler(version: int, request: Any) -> MetadataResponse:
        return MetadataResponse(
            brokers=[
                MetadataResponseBroker(node_id=n, host="127.0.0.1", port=b.port)
                for n, b in brokers.items()
            ],
            cluster_id="fake",
            controller_id=1,
            topics=[
                MetadataResponseTopic(
                    name=t.name,
                    partitions=[
                        MetadataResponsePartition(
                            partition_index=0, leader_id=leader(), replica_nodes=[1], isr_nodes=[1]
                        )
                    ],
                )
                for t in request.topics or []
            ],
        )

    return handler


def sequence(*codes: int) -> Callable[[], int]:
    """Successive error codes, then 0 forever."""
    pending = list(codes)
    return lambda: pending.pop(0) if pending else 0


async def test_create_topics_retries_not_controller_for_that_topic_only() -> None:
    codes = sequence(41, 41)
    broker = FakeBroker()

    def create(version: int, request: Any) -> CreateTopicsResponse:
        return CreateTopicsResponse(
            topics=[
                CreatableTopicResult(name=t.name, error_code=codes() if t.name == "a" else 0)
                for t in request.topics
            ]
        )

    broker.handlers.update({3: metadata({1: broker}), 19: create})
    async with running(broker), AsyncAdmin(bootstrap_servers=broker.address, **FAST) as admin:
        result = await admin.create_topics([NewTopic("a", 1, 1), NewTopic("b", 1, 1)])
    assert result["a"].ok and result["b"].ok
    sent = [[t.name for t in r.topics] for k, _, r in broker.requests if k == 19]  # type: ignore[attr-defined]
    assert sent == [["a", "b"], ["a"], ["a"]]


async def test_not_controller_forever_times_out_that_item_only() -> None:
    broker = FakeBroker()

    def create(version: int, request: Any) -> CreateTopicsResponse:
        return CreateTopicsResponse(
            topics=[
                CreatableTopicResult(name=t.name, error_code=41 if t.name == "a" else 0)
                for t in request.topics
            ]
        )

    broker.handlers.update({3: metadata({1: broker}), 19: create})
    async with running(broker), AsyncAdmin(bootstrap_servers=broker.address, **FAST) as admin:
        started = time.monotonic()
        result = await admin.create_topics([NewTopic("a"), NewTopic("b")], timeout_ms=500)
    assert time.monotonic() - started < 2
    assert result["b"].ok
    assert isinstance(result["a"].error, KafkaTimeoutError)
    # names the last error (NOT_CONTROLLER, or the cut-short last request)
    assert "NOT_CONTROLLER" in str(result["a"].error) or "timeout" in str(result["a"].error)


async def test_group_ops_rediscover_coordinator_and_wait_for_load() -> None:
    broker = FakeBroker()
    fetch_codes = sequence(16, 14)  # NOT_COORDINATOR, then COORDINATOR_LOAD_IN_PROGRESS
    describe_codes = sequence(15)  # COORDINATOR_NOT_AVAILABLE

    def find(version: int, request: Any) -> FindCoordinatorResponse:
        c = Coordinator(key="g", node_id=1, host="127.0.0.1", port=broker.port)
        if version >= 4:
            return FindCoordinatorResponse(coordinators=[c])
        return FindCoordinatorResponse(node_id=1, host="127.0.0.1", port=broker.port)

    def fetch(version: int, request: Any) -> OffsetFetchResponse:
        part = OffsetFetchResponsePartitions(partition_index=0, committed_offset=3)
        topics = [OffsetFetchResponseTopics(name="t", partitions=[part])]
        group = OffsetFetchResponseGroup(group_id="g", topics=topics, error_code=fetch_codes())
        return OffsetFetchResponse(groups=[group])

    def describe(version: int, request: Any) -> DescribeGroupsResponse:
        group = DescribedGroup(group_id="g", error_code=describe_codes(), group_state="Empty")
        return DescribeGroupsResponse(groups=[group])

    broker.handlers.update({3: metadata({1: broker}), 10: find, 9: fetch, 15: describe})
    async with running(broker), AsyncAdmin(bootstrap_servers=broker.address, **FAST) as admin:
        offsets = await admin.list_consumer_group_offsets("g", with_lag=False)
        described = await admin.describe_consumer_groups(["g"])
    committed = offsets[TopicPartition("t", 0)].committed
    assert committed is not None and committed.offset == 3
    assert described["g"].ok and described["g"].state == "Empty"
    finds = [k for k, _, _ in broker.requests if k == 10]
    # first lookup, again after NOT_COORDINATOR (not after LOAD_IN_PROGRESS), again after
    # COORDINATOR_NOT_AVAILABLE
    assert len(finds) == 3
    assert len([k for k, _, _ in broker.requests if k == 9]) == 3


async def test_list_offsets_follows_a_leader_move() -> None:
    old, new = FakeBroker(), FakeBroker()
    leaders = [1]

    def list_offsets(code: int) -> Any:
        def handler(version: int, request: Any) -> ListOffsetsResponse:
            if code:
                leaders[0] = 2  # the partition moved; metadata now says so
            part = ListOffsetsPartitionResponse(partition_index=0, error_code=code, offset=42)
            return ListOffsetsResponse(
                topics=[ListOffsetsTopicResponse(name="t", partitions=[part])]
            )

        return handler

    brokers = {1: old, 2: new}
    for b, code in ((old, 6), (new, 0)):  # 6: NOT_LEADER_OR_FOLLOWER
        b.handlers.update({3: metadata(brokers, lambda: leaders[0]), 2: list_offsets(code)})
    async with running(old), running(new):
        async with AsyncAdmin(bootstrap_servers=old.address, **FAST) as admin:
            result = await admin.list_offsets({TopicPartition("t", 0): OffsetSpec.latest()})
    assert result[TopicPartition("t", 0)].offset == 42
    assert [k for k, _, _ in old.requests].count(2) == 1
    assert [k for k, _, _ in new.requests].count(2) == 1


async def test_missing_api_raises_typed_error_naming_it() -> None:
    broker = FakeBroker()
    broker.handlers.update(
        {18: lambda v, r: api_versions_ok(v, r, drop=(37,)), 3: metadata({1: broker})}
    )
    async with running(broker), AsyncAdmin(bootstrap_servers=broker.address, **FAST) as admin:
        with pytest.raises(UnsupportedVersionForApiError, match="CreatePartitions") as info:
            await admin.create_partitions({"t": NewPartitions(3)})
    assert info.value.api_name == "CreatePartitions" and info.value.theirs is None


async def test_uses_negotiated_versions() -> None:
    broker = FakeBroker()
    caps = {19: 2, 3: 5}  # an old broker: CreateTopics v2, Metadata v5
    broker.handlers.update(
        {
            18: lambda v, r: api_versions_ok(v, r, caps=caps),
            3: metadata({1: broker}),
            19: lambda v, r: CreateTopicsResponse(
                topics=[CreatableTopicResult(name=t.name) for t in r.topics]
            ),
        }
    )
    async with running(broker), AsyncAdmin(bootstrap_servers=broker.address, **FAST) as admin:
        assert (await admin.create_topics([NewTopic("x", 1, 1)]))["x"].ok
    versions = {k: v for k, v, _ in broker.requests if k in caps}
    assert versions == caps
