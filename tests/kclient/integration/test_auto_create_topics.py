"""Topic auto-creation: producers and subscribing consumers ask the broker to create a
missing topic (``allow_auto_create_topics``, default True, like the Java client; the
broker's own setting decides), the admin client never does."""

from __future__ import annotations

import uuid

import anyio
import pytest

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer
from kclient.errors import KafkaTimeoutError
from kclient.testing.mock import MockCluster
from protocol.errors import UnknownTopicOrPartitionError

from ..consumer.scenarios._helpers import make_consumer
from ..producer._helpers import log_values, make_producer

pytestmark = pytest.mark.anyio


async def test_producer_creates_a_missing_topic_by_default() -> None:
    async with MockCluster(default_partitions=3) as cluster:
        assert "fresh" not in cluster.state.topics
        async with make_producer(cluster.bootstrap_servers) as producer:
            metadata = await producer.send_and_wait("fresh", b"v", partition=2)
            assert (metadata.topic, metadata.partition, metadata.offset) == ("fresh", 2, 0)
            assert await producer.partitions_for("fresh") == {0, 1, 2}
        assert log_values(cluster, "fresh", 2) == [b"v"]


async def test_producer_with_auto_create_off_times_out_and_creates_nothing() -> None:
    async with MockCluster() as cluster:
        producer = make_producer(
            cluster.bootstrap_servers, allow_auto_create_topics=False, max_block_ms=300
        )
        async with producer:
            with pytest.raises(KafkaTimeoutError, match="absent"):
                await producer.send("absent", b"v")
        assert "absent" not in cluster.state.topics


async def test_broker_refusal_wins_over_the_client_setting() -> None:
    async with MockCluster(auto_create_topics=False) as cluster:
        async with make_producer(cluster.bootstrap_servers, max_block_ms=300) as producer:
            with pytest.raises(KafkaTimeoutError):
                await producer.send("absent", b"v")
        assert "absent" not in cluster.state.topics


async def test_admin_never_creates_topics() -> None:
    async with MockCluster() as cluster:
        async with AsyncAdmin(bootstrap_servers=cluster.bootstrap_servers) as admin:
            described = await admin.describe_topics(["absent"], timeout_ms=2000)
        assert isinstance(described["absent"].error, UnknownTopicOrPartitionError)
        assert "absent" not in cluster.state.topics


@pytest.mark.parametrize("allow", [True, False])
async def test_subscribing_consumer_follows_its_setting(allow: bool) -> None:
    async with MockCluster() as cluster:
        consumer = make_consumer(cluster, group_id="g", allow_auto_create_topics=allow)
        async with consumer:
            consumer.subscribe(["wanted"])
            with anyio.move_on_after(1.5):
                while "wanted" not in cluster.state.topics:
                    await consumer.getmany(timeout_ms=100)
        assert ("wanted" in cluster.state.topics) is allow


@pytest.mark.integration
async def test_producer_auto_creates_on_tansu(tansu_bootstrap: str) -> None:
    topic = f"auto-{uuid.uuid4().hex[:8]}"
    async with AsyncProducer(bootstrap_servers=tansu_bootstrap) as producer:
        metadata = await producer.send_and_wait(topic, b"v")
    assert metadata.topic == topic and metadata.offset == 0
    consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(
        bootstrap_servers=tansu_bootstrap, auto_offset_reset="earliest"
    )
    async with consumer:
        assert metadata.partition in (consumer.partitions_for_topic(topic) or set())
