"""One broker-behaviour scenario, run through confluent-kafka against Tansu and MockCluster.

Both targets must produce exactly the same observations: the mock is only
useful if it behaves like a broker on the paths clients use every day.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from kclient.testing.mock import MockCluster

from .mock.peers import FAST, poll_values, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

EXPECTED: dict[str, Any] = {
    "delivery": [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)],
    "fetched": {0: [b"a0", b"a1", b"a2"], 1: [b"b0", b"b1", b"b2"]},
    "watermarks": [(0, 3), (0, 3)],
    "assignment_sizes": [[2], [1, 1], [2]],
    "committed": [2, 3],
}


def run_scenario(bootstrap: str) -> dict[str, Any]:
    topic = f"scenario-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(15)
    observed: dict[str, Any] = {}
    observed["delivery"] = _produce(bootstrap, topic)
    observed["fetched"] = _fetch(bootstrap, topic)
    c = _consumer(bootstrap, group)
    observed["watermarks"] = [
        c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in (0, 1)
    ]
    observed["assignment_sizes"] = _rebalance(bootstrap, topic, group, c)
    c.commit(offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 3)], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    observed["committed"] = [tp.offset for tp in committed]
    c.close()
    return observed


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 200,
            "partition.assignment.strategy": "range",
            **FAST,
        }
    )


def _produce(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", **FAST})
    reports: list[tuple[int, int]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        reports.append((msg.partition() or 0, msg.offset() or 0))

    # One record per batch (flush after each): Tansu 0.6 answers ListOffsets(latest)
    # with the last batch's base offset + 1, which is only right for 1-record batches
    # (see docs/design-notes/mock-cluster.md, "Differences from Tansu").
    for partition, prefix in ((0, b"a"), (1, b"b")):
        for i in range(3):
            p.produce(topic, prefix + b"%d" % i, partition=partition, on_delivery=on_delivery)
            p.flush(15)
    return sorted(reports)


def _fetch(bootstrap: str, topic: str) -> dict[int, list[bytes]]:
    c = _consumer(bootstrap, "unused")
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    fetched: dict[int, list[bytes]] = {0: [], 1: []}
    deadline_ok = wait_for(lambda: _poll_into(c, fetched) >= 6)
    c.close()
    assert deadline_ok, fetched
    return fetched


def _poll_into(c: Consumer, into: dict[int, list[bytes]]) -> int:
    msg = c.poll(0.1)
    if msg is not None and not msg.error():
        into[msg.partition() or 0].append(msg.value() or b"")
    return sum(len(v) for v in into.values())


def _rebalance(bootstrap: str, topic: str, group: str, a: Consumer) -> list[list[int]]:
    sizes: list[list[int]] = []
    a.subscribe([topic])
    assert wait_for(lambda: (a.poll(0.05), len(a.assignment()) == 2)[1])
    sizes.append([len(a.assignment())])
    b = _consumer(bootstrap, group)
    b.subscribe([topic])
    assert wait_for(
        lambda: (a.poll(0.05), b.poll(0.05), len(a.assignment()) == len(b.assignment()) == 1)[2]
    )
    sizes.append([len(a.assignment()), len(b.assignment())])
    b.close()
    assert wait_for(lambda: (a.poll(0.05), len(a.assignment()) == 2)[1])
    sizes.append([len(a.assignment())])
    poll_values(a, 0, timeout=0)
    return sizes


async def test_scenario_against_mock_cluster(anyio_backend: str) -> None:
    async with MockCluster(brokers=3) as cluster:
        observed = await anyio.to_thread.run_sync(run_scenario, cluster.bootstrap_servers)
        assert cluster.errors == []
    assert observed == EXPECTED


async def test_scenario_against_tansu(anyio_backend: str, tansu_bootstrap: str) -> None:
    observed = await anyio.to_thread.run_sync(run_scenario, tansu_bootstrap)
    assert observed == EXPECTED
