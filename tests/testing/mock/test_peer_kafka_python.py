"""kafka-python (a second, independent client) against MockCluster over loopback TCP."""

from __future__ import annotations

import warnings

import anyio
import pytest

from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

with warnings.catch_warnings():  # kafka-python uses importlib APIs deprecated on 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


def roundtrip(bootstrap: str) -> tuple[list[int], list[bytes], int | None]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    offsets = [producer.send("t", b"kp%d" % i).get(timeout=10).offset for i in range(5)]
    producer.close()
    consumer = KafkaConsumer(
        "t",
        bootstrap_servers=bootstrap,
        group_id="kp-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    values: list[bytes] = []
    for message in consumer:
        values.append(message.value)
        if len(values) == 5:
            break
    consumer.commit()
    committed = consumer.committed(TopicPartition("t", 0))
    consumer.close()
    return offsets, values, committed


async def test_kafka_python_produce_consume_commit(anyio_backend: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        offsets, values, committed = await anyio.to_thread.run_sync(
            roundtrip, cluster.bootstrap_servers
        )
        assert offsets == [0, 1, 2, 3, 4]
        assert values == [b"kp%d" % i for i in range(5)]
        assert committed == 5
        assert cluster.requests_of(ApiKey.JOIN_GROUP) and cluster.errors == []
