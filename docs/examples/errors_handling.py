"""How kclient reports errors, shown on an in-process MockCluster with injected faults.

Usage: python errors_handling.py      (needs no broker: it starts its own MockCluster)
"""

import anyio

from kclient import AsyncConsumer, AsyncProducer, ProducerConfig, TopicPartition
from kclient.errors import (
    BrokerResponseError,
    ConfigError,
    DeliveryTimeoutError,
    InvalidRecordError,
    KafkaError,
    OffsetOutOfRangeError,
)
from kclient.testing import Err, MockCluster
from protocol.messages import ApiKey

TOPIC = "orders"


def bad_config() -> None:
    # Contradicting keys fail when the config is built, naming the key to fix.
    try:
        ProducerConfig(bootstrap_servers="127.0.0.1:9092", acks=1, enable_idempotence=True)
    except ConfigError as exc:
        print(f"ConfigError on key {exc.key!r}: {exc}")


async def produce_errors(cluster: MockCluster) -> None:
    async with AsyncProducer(bootstrap_servers=cluster.bootstrap_servers) as producer:
        # Retriable broker errors are retried inside the producer: the send succeeds.
        cluster.fail_next(ApiKey.PRODUCE, Err.NOT_LEADER_OR_FOLLOWER, count=2)
        metadata = await producer.send_and_wait(TOPIC, b"retried")
        print(f"delivered after 2 retriable errors at offset {metadata.offset}")

        # A non-retriable one fails that record's delivery with the broker's error class.
        cluster.fail_next(ApiKey.PRODUCE, Err.INVALID_RECORD)
        delivery = await producer.send(TOPIC, b"rejected")
        try:
            await delivery
        except InvalidRecordError as exc:
            assert isinstance(exc, BrokerResponseError) and not exc.retriable
            print(f"rejected, not retried: {exc}")


async def delivery_timeout(cluster: MockCluster) -> None:
    # The broker holds the answer longer than delivery_timeout_ms: the outcome is unknown.
    settings = dict(request_timeout_ms=500, linger_ms=0, delivery_timeout_ms=800)
    async with AsyncProducer(bootstrap_servers=cluster.bootstrap_servers, **settings) as producer:
        await producer.send_and_wait(TOPIC, b"warm-up")  # metadata and producer id first
        cluster.delay_next(ApiKey.PRODUCE, seconds=2.0, count=10)
        try:
            await producer.send_and_wait(TOPIC, b"slow")
        except DeliveryTimeoutError as exc:
            print(f"DeliveryTimeoutError, delivery_state={exc.delivery_state.name}")


async def consumer_errors(cluster: MockCluster) -> None:
    # With auto_offset_reset="none" a position outside the log is the application's call.
    async with AsyncConsumer(
        bootstrap_servers=cluster.bootstrap_servers, auto_offset_reset="none"
    ) as consumer:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, 1_000)
        try:
            await consumer.getmany(tp, timeout_ms=5_000)
        except OffsetOutOfRangeError as exc:
            print(f"OffsetOutOfRangeError: {exc}")
            await consumer.seek_to_beginning(tp)
            records = (await consumer.getmany(tp, timeout_ms=5_000)).get(tp, [])
            # "slow" timed out as POSSIBLY_PERSISTED, and here it is: it was written.
            print("in the log:", [r.value for r in records])


async def main() -> None:
    bad_config()
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        await produce_errors(cluster)
        await delivery_timeout(cluster)
        await consumer_errors(cluster)
    print("every error above is a", KafkaError.__name__)


if __name__ == "__main__":
    anyio.run(main)
