"""AsyncProducer against the real Tansu broker, read back by confluent-kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from kclient.producer.batch import DeliveryFuture, DeliveryState
from kclient.testing.chaos import ChaosProxy

from ._helpers import make_producer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BASE_TS = 1_700_000_000_000


def new_topic(bootstrap: str, partitions: int) -> str:
    topic = f"producer-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result()
    return topic


def read_back(bootstrap: str, topic: str, partitions: int, expected: int) -> list[Any]:
    """Every message of ``topic`` via confluent-kafka (a guard deadline, not an assertion)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([CTopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Any] = []
    deadline = time.monotonic() + 120
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=0.5):
                assert message.error() is None, message.error()
                messages.append(message)
        # anything beyond `expected` would be a duplicate: look a little longer
        messages.extend(consumer.consume(10_000, timeout=0.5))
    finally:
        consumer.close()
    return messages


def check_round_trip(
    messages: Sequence[Any], futures: Sequence[DeliveryFuture], n: int, *, chaos: bool = False
) -> None:
    assert len(messages) == n, "every record exactly once"
    unknown_offsets = sum(1 for f in futures if f.result().offset < 0)
    assert chaos or unknown_offsets == 0
    by_partition: dict[int, list[int]] = {}
    for m in messages:
        i = int(m.value()[:8])
        assert m.key() == b"key-%d" % (i % 97)
        assert m.value() == b"%08d" % i + b"-" * 92
        assert m.timestamp()[1] == BASE_TS + i
        assert m.headers() == [("i", b"%d" % i), ("none", None)]
        assert futures[i].result().partition == m.partition()
        # -1: the broker answered a retry as a duplicate without the original offset
        # (Tansu does), or a later acknowledgement covered it (implicit ack)
        assert futures[i].result().offset in (m.offset(), -1)
        by_partition.setdefault(m.partition(), []).append(i)
    for indexes in by_partition.values():
        assert indexes == sorted(indexes), "send order per partition"
    assert len(by_partition) == 8


async def produce_keyed(
    bootstrap: str, topic: str, n: int, **settings: Any
) -> list[DeliveryFuture]:
    async with make_producer(bootstrap, **settings) as producer:
        futures = [
            await producer.send(
                topic,
                b"%08d" % i + b"-" * 92,
                key=b"key-%d" % (i % 97),
                timestamp_ms=BASE_TS + i,
                headers=[("i", b"%d" % i), ("none", None)],
            )
            for i in range(n)
        ]
        await producer.flush()
    assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
    return futures


@pytest.mark.parametrize("codec", CODECS)
async def test_round_trip_per_codec(tansu_bootstrap: str, codec: str) -> None:
    n = 20_000
    topic = new_topic(tansu_bootstrap, 8)
    futures = await produce_keyed(tansu_bootstrap, topic, n, compression_type=codec)
    check_round_trip(read_back(tansu_bootstrap, topic, 8, n), futures, n)


@pytest.mark.slow
@pytest.mark.parametrize("codec", CODECS)
async def test_round_trip_per_codec_one_million(tansu_bootstrap: str, codec: str) -> None:
    n = 1_000_000
    topic = new_topic(tansu_bootstrap, 8)
    futures = await produce_keyed(tansu_bootstrap, topic, n, compression_type=codec)
    check_round_trip(read_back(tansu_bootstrap, topic, 8, n), futures, n)


class _ViaProxy:
    """Connect every broker address through the proxy: Tansu advertises its own
    address, so without this only the bootstrap connection would cross the proxy."""

    def __init__(self, proxy: str) -> None:
        host, _, port = proxy.rpartition(":")
        self.host, self.port = host, int(port)

    async def connect(self, address: Any, ssl_context: Any) -> Any:
        return await anyio.connect_tcp(self.host, self.port)


async def test_p1_through_chaos_proxy(tansu_bootstrap: str) -> None:
    """P1 against Tansu: the proxy cuts mid-request and mid-response alternately."""
    n = 20_000
    topic = new_topic(tansu_bootstrap, 8)
    async with ChaosProxy(tansu_bootstrap, cut_every_requests=15, max_cuts=30, seed=3) as proxy:
        futures = await produce_keyed(
            proxy.address,
            topic,
            n,
            request_timeout_ms=3000,
            batch_size=4096,
            transport=_ViaProxy(proxy.address),
        )
        assert proxy.stats.cuts > 0
    check_round_trip(read_back(tansu_bootstrap, topic, 8, n), futures, n, chaos=True)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # kafka-python's own imports
async def test_default_partitioner_matches_confluent_and_kafka_python(
    tansu_bootstrap: str,
) -> None:
    from kafka import KafkaProducer  # type: ignore[import-untyped]

    keys = [b"key-%d" % i for i in range(200)] + [b"", b"\x00\xff" * 7, "ключ".encode()]
    topic = new_topic(tansu_bootstrap, 7)
    ours: dict[bytes, int] = {}
    async with make_producer(tansu_bootstrap) as producer:
        for key in keys:
            ours[key] = (await producer.send_and_wait(topic, b"v", key=key)).partition
    theirs: dict[bytes, int] = {}
    confluent = Producer(
        {"bootstrap.servers": tansu_bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )
    for key in keys:
        confluent.produce(
            topic,
            b"v",
            key=key,
            on_delivery=lambda e, m: theirs.__setitem__(m.key(), m.partition()),
        )
    confluent.flush(30)
    kafka_python = KafkaProducer(bootstrap_servers=tansu_bootstrap)
    kp = {key: kafka_python.send(topic, b"v", key=key) for key in keys}
    kafka_python.flush()
    kp_partitions = {key: f.get(timeout=30).partition for key, f in kp.items()}
    kafka_python.close()
    assert theirs == ours
    assert kp_partitions == ours
