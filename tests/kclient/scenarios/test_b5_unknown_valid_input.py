"""Reliability scenario B5 (reliability guide 2e): unknown but valid input, through the clients.

The codec half (``error_for_code(32000)``, unknown tagged fields kept, ApiVersions fallback)
is tested in tests/protocol; here the same input arrives from a broker and must reach the
user as a typed error carrying its number (never a bare ValueError or KeyError), or be
tolerated (tagged fields, newer version ranges).
"""

from __future__ import annotations

import pytest

from kclient import AsyncAdmin, TopicPartition
from kclient.errors import KafkaError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.versions import our_range
from kclient.testing.mock import MockCluster
from protocol.api import Response
from protocol.errors import UnknownServerError
from protocol.messages import ApiKey
from protocol.messages.api_versions import ApiVersion, ApiVersionsResponse
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from protocol.messages.offset_fetch import OffsetFetchResponse

from ..consumer.scenarios._helpers import collect, make_consumer, produce
from ..producer._helpers import make_producer

pytestmark = pytest.mark.anyio

CODE = 32000


def assert_unknown_code(exc: BaseException) -> None:
    assert isinstance(exc, UnknownServerError) and isinstance(exc, KafkaError)
    assert exc.errno == CODE
    assert str(CODE) in str(exc)


async def test_b5_unknown_error_code_on_produce_reaches_the_future_typed() -> None:
    """B5: a Produce partition error 32000 fails that send with UnknownServerError(32000)."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with make_producer(cluster.bootstrap_servers) as producer:
            await producer.partitions_for("t")
            cluster.fail_next(ApiKey.PRODUCE, error=CODE, topic="t", partition=0)
            future = await producer.send("t", b"x")
            with pytest.raises(UnknownServerError) as info:
                await future
            assert_unknown_code(info.value)
        assert cluster.errors == []


async def test_b5_unknown_error_code_on_metadata_topic_is_raised_at_send() -> None:
    """B5: a Metadata topic error 32000 is reported for that topic, typed, at once."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.fail_next(ApiKey.METADATA, error=CODE, count=1000)
        async with make_producer(cluster.bootstrap_servers, max_block_ms=5000) as producer:
            with pytest.raises(UnknownServerError) as info:
                await producer.send("t", b"x")
            assert_unknown_code(info.value)


async def test_b5_unknown_error_code_on_offset_fetch_is_raised_typed() -> None:
    """B5: an OffsetFetch group error 32000 reaches committed() as UnknownServerError."""

    def group_error(response: Response) -> Response:
        assert isinstance(response, OffsetFetchResponse)
        response.error_code = CODE
        for group in response.groups:
            group.error_code = CODE
        return response

    async with MockCluster() as cluster:
        cluster.create_topic("t")
        consumer = make_consumer(cluster, group_id="b5")
        async with consumer:
            tp = TopicPartition("t", 0)
            cluster.rewrite_next(ApiKey.OFFSET_FETCH, group_error)
            with pytest.raises(UnknownServerError) as info:
                await consumer.committed(tp, timeout_ms=5000)
            assert_unknown_code(info.value)


async def test_b5_unknown_error_code_on_admin_call_is_a_typed_result() -> None:
    """B5: an admin per-topic error 32000 is that topic's typed error."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with AsyncAdmin(bootstrap_servers=cluster.bootstrap_servers) as admin:
            cluster.fail_next(ApiKey.DELETE_TOPICS, error=CODE)
            results = await admin.delete_topics(["t"])
        error = results["t"].error
        assert error is not None
        assert_unknown_code(error)


async def test_b5_unknown_tagged_fields_in_responses_are_tolerated() -> None:
    """B5: unknown tagged fields at every level of Metadata and OffsetFetch replies."""

    def tag(response: Response) -> Response:
        assert isinstance(response, (MetadataResponse, OffsetFetchResponse))
        response.unknown_tagged_fields = {999: b"\x01\x02"}
        if isinstance(response, MetadataResponse):
            for b in response.brokers:
                b.unknown_tagged_fields = {1000: b""}
            for t in response.topics:
                t.unknown_tagged_fields = {1001: b"zz"}
                for p in t.partitions:
                    p.unknown_tagged_fields = {1002: b"\xff" * 8}
        return response

    async with MockCluster() as cluster:
        cluster.create_topic("t")
        produce(cluster, "t", 0, [b"a", b"b"])
        cluster.rewrite_next(ApiKey.METADATA, tag, count=1000)
        cluster.rewrite_next(ApiKey.OFFSET_FETCH, tag, count=1000)
        async with make_producer(cluster.bootstrap_servers) as producer:
            assert (await producer.send_and_wait("t", b"c")).offset == 2
        consumer = make_consumer(cluster, group_id="b5-tags")
        async with consumer:
            consumer.assign([TopicPartition("t", 0)])
            assert [r.value for r in await collect(consumer, 3)] == [b"a", b"b", b"c"]
        assert cluster.errors == []


async def test_b5_newer_api_versions_range_negotiates_our_maximum() -> None:
    """B5: the broker advertises versions above ours and an API key we do not know."""

    def newer(response: Response) -> Response:
        assert isinstance(response, ApiVersionsResponse)
        for k in response.api_keys:
            k.max_version += 5
        response.api_keys.append(ApiVersion(api_key=4242, min_version=0, max_version=3))
        return response

    async with MockCluster() as cluster:
        cluster.rewrite_next(ApiKey.API_VERSIONS, newer)
        settings = ConnectionSettings(request_timeout_ms=5000, connect_timeout_ms=5000)
        async with connect(cluster.listen_address(1), settings) as conn:
            assert conn.versions is not None
            version = conn.versions.version_for(MetadataRequest)
            assert version == our_range(ApiKey.METADATA)[1]
            response = await conn.request(MetadataRequest(topics=None))
            assert isinstance(response, MetadataResponse)
        assert cluster.errors == []
