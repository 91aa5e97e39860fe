"""Shared helpers for the producer tests on the MockCluster."""

from __future__ import annotations

from typing import Any

from kclient import AsyncProducer
from kclient.producer.batch import DeliveryFuture, DeliveryState
from kclient.testing.mock import MockCluster
from protocol.records import read_batches

# Short timers so fault scenarios converge in well under a second each.
FAST: dict[str, Any] = dict(
    retry_backoff_ms=10,
    retry_backoff_max_ms=100,
    reconnect_backoff_ms=10,
    reconnect_backoff_max_ms=100,
    request_timeout_ms=3000,
    metadata_max_age_ms=1000,
    linger_ms=2,
)


def make_producer(bootstrap: str, **settings: Any) -> AsyncProducer:
    return AsyncProducer(bootstrap_servers=bootstrap, **{**FAST, **settings})


def log_records(cluster: MockCluster, topic: str, partition: int) -> list[Any]:
    """Every record in the mock partition's log, in offset order."""
    part = cluster.state.partition(topic, partition)
    assert part is not None
    out = []
    for stored in part.log.batches:
        for batch in read_batches(stored.data):
            out.extend(batch.records())  # type: ignore[union-attr]
    return out


def log_values(cluster: MockCluster, topic: str, partition: int) -> list[bytes | None]:
    return [r.value for r in log_records(cluster, topic, partition)]


def assert_exactly_once_in_order(
    cluster: MockCluster, topic: str, partition: int, sent: list[bytes]
) -> None:
    got = log_values(cluster, topic, partition)
    assert len(got) == len(set(got)), "duplicates in the log"
    assert got == sent


def states(futures: list[DeliveryFuture]) -> dict[DeliveryState, int]:
    out: dict[DeliveryState, int] = {}
    for f in futures:
        out[f.state] = out.get(f.state, 0) + 1
    return out
