"""AsyncAdmin against the real Tansu broker: every admin operation Tansu supports, the
typed error for the ones it lacks, and per-item errors next to successes."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kclient.admin import (
    AlterConfigOp,
    AsyncAdmin,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kclient.errors import (
    KafkaTimeoutError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
    UnsupportedVersionForApiError,
)
from kclient.structs import OffsetAndMetadata, TopicPartition

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

FAST: dict[str, Any] = dict(
    request_timeout_ms=5000,
    default_api_timeout_ms=8000,
    retry_backoff_ms=50,
    retry_backoff_max_ms=200,
)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def admin(tansu_bootstrap: str) -> AsyncIterator[AsyncAdmin]:
    async with AsyncAdmin(bootstrap_servers=tansu_bootstrap, **FAST) as client:
        yield client


async def test_create_describe_delete_topics(admin: AsyncAdmin) -> None:
    a, b, missing = name("adm-a"), name("adm-b"), name("adm-missing")
    created = await admin.create_topics(
        [NewTopic(a, 3, 1, topic_configs={"retention.ms": "100000"}), NewTopic(b, 1, 1)]
    )
    assert all(r.ok for r in created.values()) and created[a].num_partitions == 3
    # one existing topic among new ones: only that item fails
    c = name("adm-c")
    again = await admin.create_topics([NewTopic(a, 3, 1), NewTopic(c, 2, 1)])
    assert isinstance(again[a].error, TopicExistsError) and again[c].ok

    names = {t.name for t in await admin.list_topics()}
    assert {a, b, c} <= names
    described = await admin.describe_topics([a, missing])
    assert [p.partition for p in described[a].partitions] == [0, 1, 2]
    part = described[a].partitions[0]
    assert part.leader == 111 and part.replicas == (111,) and part.isr == (111,)
    assert described[a].topic_id == created[a].topic_id
    assert isinstance(described[missing].error, UnknownTopicOrPartitionError)

    deleted = await admin.delete_topics([a, b, c, missing])
    assert deleted[a].ok and deleted[b].ok and deleted[c].ok
    assert isinstance(deleted[missing].error, UnknownTopicOrPartitionError)
    assert not {a, b, c} & {t.name for t in await admin.list_topics()}


async def test_cluster_and_configs(admin: AsyncAdmin, tansu_bootstrap: str) -> None:
    cluster = await admin.describe_cluster()
    assert cluster.cluster_id and cluster.controller is not None
    assert [(n.node_id, f"{n.host}:{n.port}") for n in cluster.nodes] == [(111, tansu_bootstrap)]

    topic = name("adm-cfg")
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "100000"})])
    resource = ConfigResource.topic(topic)
    described = await admin.describe_configs([resource, ConfigResource.broker(111)])
    assert described[resource].entries["retention.ms"].value == "100000"
    assert described[ConfigResource.broker(111)].ok

    altered = await admin.incremental_alter_configs(
        {resource: [AlterConfigOp("retention.ms", "200000")]}
    )
    assert altered[resource].ok
    after = await admin.describe_configs([resource])
    assert after[resource].entries["retention.ms"].value == "200000"
    await admin.delete_topics([topic])


async def test_list_offsets_and_unsupported_operations(admin: AsyncAdmin) -> None:
    topic = name("adm-off")
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await anyio.to_thread.run_sync(_produce, admin.config.bootstrap_servers[0], topic, 0, 5)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    missing = TopicPartition(name("adm-none"), 0)
    offsets = await admin.list_offsets(
        {
            tp0: OffsetSpec.latest(),
            tp1: OffsetSpec.earliest(),
            TopicPartition(topic, 9): OffsetSpec.latest(),
            missing: OffsetSpec.latest(),
        }
    )
    assert offsets[tp0].offset == 5 and offsets[tp1].offset == 0
    assert isinstance(offsets[TopicPartition(topic, 9)].error, UnknownTopicOrPartitionError)
    assert isinstance(offsets[missing].error, UnknownTopicOrPartitionError)
    by_time = await admin.list_offsets({tp0: OffsetSpec.for_timestamp(0)})
    assert by_time[tp0].ok and by_time[tp0].offset == 0

    with pytest.raises(UnsupportedVersionForApiError, match="CreatePartitions"):
        await admin.create_partitions({topic: NewPartitions(4)})
    with pytest.raises(UnsupportedVersionForApiError, match="OffsetDelete"):
        await admin.delete_consumer_group_offsets(name("g"), [tp0])
    # Tansu advertises DeleteRecords but its memory engine panics on it and drops the
    # connection (see the quirks file): the item fails, bounded by the timeout
    started = time.monotonic()
    deleted = await admin.delete_records({tp0: 1}, timeout_ms=1000)
    assert isinstance(deleted[tp0].error, KafkaTimeoutError)
    assert "connection" in str(deleted[tp0].error)
    assert time.monotonic() - started < 3
    await admin.delete_topics([topic])


async def test_consumer_group_offsets_lag_describe_delete(admin: AsyncAdmin) -> None:
    topic, group = name("adm-grp"), name("adm-group")
    bootstrap = admin.config.bootstrap_servers[0]
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await anyio.to_thread.run_sync(_produce, bootstrap, topic, 0, 10)
    consumer = await anyio.to_thread.run_sync(_consumer_committing, bootstrap, topic, group, 4)
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        offsets = await admin.list_consumer_group_offsets(group)
        committed = offsets[tp0].committed
        assert committed is not None and committed.offset == 4
        assert offsets[tp0].end_offset == 10 and offsets[tp0].lag == 6
        described = await admin.describe_consumer_groups([group])
        assert described[group].ok and described[group].coordinator is not None

        altered = await admin.alter_consumer_group_offsets(
            group, {tp0: 7, tp1: OffsetAndMetadata(0, "admin")}
        )
        assert all(r.ok for r in altered.values())
        offsets = await admin.list_consumer_group_offsets(group, [tp0, tp1])
        assert offsets[tp0].lag == 3 and offsets[tp1].lag == 0
        assert offsets[tp1].committed is not None  # (Tansu drops the commit metadata string)
        listed = await admin.list_consumer_groups()
        assert group in [listing.group_id for listing in listed]
    finally:
        await anyio.to_thread.run_sync(consumer.close)
    deleted = await admin.delete_consumer_groups([group])
    assert deleted[group].ok
    assert await admin.list_consumer_group_offsets(group) == {}
    await admin.delete_topics([topic])


def _produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    from confluent_kafka import Producer

    # one record per batch: Tansu's "latest" offset is the last batch's base offset + 1
    # (see the quirks file), which is the high watermark only for 1-record batches
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, value=b"v%d" % i, partition=partition)
        assert producer.flush(10) == 0


def _consumer_committing(bootstrap: str, topic: str, group: str, offset: int) -> Any:
    """A confluent-kafka consumer that commits ``offset`` on partition 0 through assign()
    (Tansu's subscribe() join takes ~23 s, see the quirks file)."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as CTopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    consumer.assign([CTopicPartition(topic, 0, 0)])
    consumer.commit(offsets=[CTopicPartition(topic, 0, offset)], asynchronous=False)
    return consumer
