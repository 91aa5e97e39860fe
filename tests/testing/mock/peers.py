"""Synchronous confluent-kafka helpers, run from async tests with anyio.to_thread."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

FAST = {
    "retry.backoff.ms": 20,
    "retry.backoff.max.ms": 100,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
    "topic.metadata.refresh.interval.ms": 1000,
    "log_level": 0,
}


def producer(bootstrap: str, **extra: Any) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, **FAST, **extra})


def produce_all(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    *,
    partition: int | None = None,
    timeout: float = 15,
    **extra: Any,
) -> list[tuple[int, int, KafkaError | None]]:
    """Produce ``values``, flush, and return (partition, offset, error) per record."""
    p = producer(bootstrap, **extra)
    reports: list[tuple[int, int, KafkaError | None]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports.append((msg.partition() or 0, msg.offset() or -1, err))

    for value in values:
        kwargs: dict[str, Any] = {"value": value, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        p.produce(topic, **kwargs)
        p.poll(0)
    p.flush(timeout)
    return reports


def consumer(bootstrap: str, group: str | None = None, **extra: Any) -> Consumer:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "group.id": group or "unused",
        **FAST,
        **extra,
    }
    return Consumer(config)


def poll_values(c: Consumer, count: int, timeout: float = 15) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is None or msg.error():
            continue
        got.append(msg.value() or b"")
    return got


def consume_all(bootstrap: str, topic: str, count: int, **extra: Any) -> list[bytes]:
    """Read ``count`` records of every partition of ``topic`` with assign() (no group)."""
    from confluent_kafka import TopicPartition

    c = consumer(bootstrap, **extra)
    try:
        meta = c.list_topics(topic, timeout=10)
        parts = meta.topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        return poll_values(c, count)
    finally:
        c.close()


def wait_for(predicate: Any, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
