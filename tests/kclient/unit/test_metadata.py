"""Pure metadata rules: anomalies that look like success, stale epochs, broker validation."""

from __future__ import annotations

import uuid

from kclient.cluster.metadata import ClusterSnapshot, apply
from kclient.cluster.refresher import next_refresh_delay_ms
from protocol.messages.metadata import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

TID = uuid.UUID(int=7)


def part(i: int, leader: int = 1, epoch: int = 0, error: int = 0) -> MetadataResponsePartition:
    return MetadataResponsePartition(
        partition_index=i,
        leader_id=leader,
        leader_epoch=epoch,
        error_code=error,
        replica_nodes=[leader],
        isr_nodes=[leader],
    )


def response(
    *topics: MetadataResponseTopic, brokers: list[MetadataResponseBroker] | None = None
) -> MetadataResponse:
    return MetadataResponse(
        brokers=brokers
        if brokers is not None
        else [MetadataResponseBroker(node_id=1, host="127.0.0.1", port=9092)],
        topics=list(topics),
        cluster_id="c",
        controller_id=1,
    )


def topic(name: str, *parts: MetadataResponsePartition, error: int = 0) -> MetadataResponseTopic:
    return MetadataResponseTopic(name=name, topic_id=TID, partitions=list(parts), error_code=error)


def test_normal_load() -> None:
    update = apply(ClusterSnapshot(), response(topic("t", part(0), part(1))), 10, requested=["t"])
    snap = update.snapshot
    assert not update.needs_retry and snap.loaded and snap.cluster_id == "c"
    assert snap.partitions_for("t") == (0, 1)
    leader = snap.leader_for("t", 1)
    assert leader is not None and leader.port == 9092
    assert snap.topics["t"].topic_id == TID and snap.topic_by_id(TID) is not None


def test_zero_partitions_is_retried_not_taken() -> None:
    first = apply(ClusterSnapshot(), response(topic("t", part(0))), 1, requested=["t"]).snapshot
    update = apply(first, response(topic("t")), 2, requested=["t"])
    assert update.retry_topics == {"t"}
    assert update.snapshot.partitions_for("t") == (0,)  # old entry kept
    fresh = apply(ClusterSnapshot(), response(topic("t")), 2, requested=["t"])
    assert "t" not in fresh.snapshot.topics and fresh.needs_retry


def test_first_load_without_any_leader_is_retried() -> None:
    update = apply(
        ClusterSnapshot(),
        response(topic("t", part(0, -1, error=5), part(1, -1, error=5))),
        1,
        requested=["t"],
    )
    assert update.retry_topics == {"t"} and "t" not in update.snapshot.topics


def test_topic_level_errors() -> None:
    update = apply(
        ClusterSnapshot(),
        response(topic("a", error=5), topic("b", error=29), topic("c", error=3)),
        1,
        requested=["a", "b", "c"],
    )
    assert update.retry_topics == {"a"}
    assert set(update.topic_errors) == {"b"} and update.topic_errors["b"].errno == 29
    assert not update.snapshot.topics


def test_stale_leader_epoch_keeps_cached_partition() -> None:
    first = apply(
        ClusterSnapshot(), response(topic("t", part(0, epoch=5))), 1, requested=["t"]
    ).snapshot
    update = apply(first, response(topic("t", part(0, leader=1, epoch=3))), 2, requested=["t"])
    assert update.needs_retry
    assert update.snapshot.topics["t"].partitions[0].leader_epoch == 5


def test_partition_growth_and_vanishing_topic() -> None:
    snap = apply(ClusterSnapshot(), response(topic("t", part(0))), 1, requested=["t"]).snapshot
    snap = apply(snap, response(topic("t", part(0), part(1), part(2))), 2, requested=["t"]).snapshot
    assert snap.partitions_for("t") == (0, 1, 2)
    gone = apply(snap, response(topic("t", error=3)), 3, requested=["t"]).snapshot
    assert "t" not in gone.topics


def test_invalid_broker_addresses_are_dropped() -> None:
    brokers = [
        MetadataResponseBroker(node_id=1, host="127.0.0.1", port=9092),
        MetadataResponseBroker(node_id=2, host="", port=9092),
        MetadataResponseBroker(node_id=3, host="h", port=0),
        MetadataResponseBroker(node_id=4, host="h", port=70000),
    ]
    update = apply(
        ClusterSnapshot(),
        response(topic("t", part(0, leader=2), part(1)), brokers=brokers),
        1,
        requested=["t"],
    )
    assert set(update.snapshot.brokers) == {1} and len(update.dropped_brokers) == 3
    assert update.snapshot.leader_for("t", 0) is None  # leader on a dropped broker
    assert update.needs_retry


def test_refresh_delay_is_pure() -> None:
    assert next_refresh_delay_ms(1000, -1, 300000, False, 0) == 0
    assert next_refresh_delay_ms(1000, 900, 300000, False, 0) == 299900
    assert next_refresh_delay_ms(1000, 900, 300000, True, 50) == 50
