"""Reliability scenario N4 (reliability guide 2d): metadata anomalies, end to end on the mock.

The pure rules live in ``kclient.cluster.metadata.apply`` (tests/kclient/unit/test_metadata.py);
these tests check that the producer and the consumer built on them behave: a reply that
only looks like success is never taken, a topic that vanishes and returns costs nothing
(no fake delivery, no new sequences), and grown partitions are used.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kclient import AsyncProducer, TopicPartition
from kclient.producer.batch import DeliveryFuture
from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from kclient.testing.mock.codes import Err
from protocol.api import Response
from protocol.messages import ApiKey
from protocol.messages.metadata import MetadataRequest, MetadataResponse

from ..consumer.scenarios._helpers import collect, make_consumer, produce, wait_for
from ..producer._helpers import log_records, make_producer

pytestmark = pytest.mark.anyio


class MetadataTamper:
    """A rewrite for MockCluster.rewrite_next: change topic ``name`` in the first
    ``limit`` Metadata replies that carry it (replies without it pass unchanged)."""

    def __init__(self, name: str, mode: str, limit: int = 3) -> None:
        self.name, self.mode, self.limit, self.calls = name, mode, limit, 0

    def __call__(self, response: Response) -> Response:
        assert isinstance(response, MetadataResponse)
        for topic in response.topics:
            if topic.name != self.name or self.calls >= self.limit:
                continue
            self.calls += 1
            if self.mode == "vanish":
                topic.error_code, topic.partitions = Err.UNKNOWN_TOPIC_OR_PARTITION, []
            elif self.mode == "zero_partitions":
                topic.error_code, topic.partitions = 0, []
            elif self.mode == "no_leaders":
                for p in topic.partitions:
                    p.error_code, p.leader_id = Err.LEADER_NOT_AVAILABLE, -1
        return response


def _names(request: object) -> set[str | None]:
    """Topics a MetadataRequest asked for ({None}: all topics)."""
    assert isinstance(request, MetadataRequest)
    return {None} if request.topics is None else {t.name for t in request.topics}


def log_batches(cluster: MockCluster, topic: str, partition: int) -> list[Any]:
    part = cluster.state.partition(topic, partition)
    assert part is not None
    return [parse_header(b.data) for b in part.log.batches]


async def assert_delivered_as_logged(
    cluster: MockCluster, topic: str, futures: list[DeliveryFuture], values: list[bytes]
) -> None:
    """Every future succeeded, and the offset it reported holds exactly its record:
    a delivery report can only come from a ProduceResponse that wrote the record."""
    logged = {r.offset: r.value for r in log_records(cluster, topic, 0)}
    for future, value in zip(futures, values, strict=True):
        meta = await future
        assert meta.offset >= 0, "delivered without an offset from the broker"
        assert logged.get(meta.offset) == value


async def test_n4_topic_vanishes_for_three_refreshes_while_idempotent_producer_sends() -> None:
    """N4: topic missing from 3 metadata replies, then back; sends continue throughout."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        vanish = MetadataTamper("t", "vanish")
        async with make_producer(cluster.bootstrap_servers, metadata_max_age_ms=20) as producer:
            values = [b"v%03d" % i for i in range(40)]
            futures: list[DeliveryFuture] = []
            for value in values[:10]:
                futures.append(await producer.send("t", value))
            await producer.flush()
            # The next produce is held back so a batch is in flight across the vanish.
            sent_before = len(cluster.requests_of(ApiKey.PRODUCE))
            cluster.delay_next(ApiKey.PRODUCE, 0.3)
            futures.append(await producer.send("t", values[10]))
            await wait_for(lambda: len(cluster.requests_of(ApiKey.PRODUCE)) > sent_before)
            cluster.rewrite_next(ApiKey.METADATA, vanish, count=1000)
            await wait_for(lambda: vanish.calls >= 1)
            for value in values[11:]:  # some of these wait in send() for the topic to return
                futures.append(await producer.send("t", value))
                await anyio.sleep(0.005)
            with anyio.fail_after(10):
                await producer.flush()
        assert vanish.calls == 3
        await assert_delivered_as_logged(cluster, "t", futures, values)
        assert [r.value for r in log_records(cluster, "t", 0)] == values  # once, in order
        batches = log_batches(cluster, "t", 0)
        assert len({(b.producer_id, b.producer_epoch) for b in batches}) == 1  # no reset
        expected_sequence = 0
        for b in batches:  # sequences carry on across the vanish, no gap, no restart
            assert b.base_sequence == expected_sequence
            expected_sequence += b.record_count
        assert cluster.errors == []


async def test_n4_zero_partitions_with_error_zero_is_retried_not_taken() -> None:
    """N4: a Metadata reply with 0 partitions and error 0 looks like success; it is not."""
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        empty = MetadataTamper("t", "zero_partitions")
        cluster.rewrite_next(ApiKey.METADATA, empty, count=1000)
        async with make_producer(cluster.bootstrap_servers) as producer:
            meta = await producer.send_and_wait("t", b"x", partition=1)
            assert await producer.partitions_for("t") == {0, 1}
        assert empty.calls == 3  # every anomalous reply was followed by another request
        assert meta.partition == 1 and meta.offset == 0
        assert cluster.errors == []


async def test_n4_first_load_with_leader_not_available_everywhere_is_retried() -> None:
    """N4: LEADER_NOT_AVAILABLE on every partition at first load: wait, then deliver."""
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=3)
        leaderless = MetadataTamper("t", "no_leaders")
        cluster.rewrite_next(ApiKey.METADATA, leaderless, count=1000)
        async with make_producer(cluster.bootstrap_servers) as producer:
            metas = [await producer.send_and_wait("t", b"k", key=b"%d" % i) for i in range(6)]
        assert leaderless.calls == 3
        assert all(m.offset >= 0 for m in metas)
        assert sum(len(log_records(cluster, "t", p)) for p in range(3)) == 6
        # Nothing was produced before a reply with real leaders: the 3 tampered replies
        # for "t" and then one untampered one all came before the first Produce request.
        first_produce = next(
            i for i, r in enumerate(cluster.requests) if r.api_key == ApiKey.PRODUCE
        )
        asked_for_t = [
            r
            for r in cluster.requests[:first_produce]
            if r.api_key == ApiKey.METADATA and _names(r.request) & {"t", None}
        ]
        assert len(asked_for_t) >= 4

    # The consumer side of the same anomaly: assign() on a leaderless topic waits, then reads.
    async with MockCluster() as cluster:
        cluster.create_topic("c", partitions=1)
        produce(cluster, "c", 0, [b"a", b"b"])
        leaderless = MetadataTamper("c", "no_leaders")
        cluster.rewrite_next(ApiKey.METADATA, leaderless, count=1000)
        consumer = make_consumer(cluster)
        async with consumer:
            consumer.assign([TopicPartition("c", 0)])
            records = await collect(consumer, 2)
        assert [r.value for r in records] == [b"a", b"b"]
        assert leaderless.calls >= 3


async def _sticky_spread(producer: AsyncProducer, topic: str, n: int) -> set[int]:
    partitions = set()
    for i in range(n):
        meta = await producer.send_and_wait(topic, b"x" * 64, key=b"key-%d" % i)
        partitions.add(meta.partition)
    return partitions


async def test_n4_partition_growth_is_picked_up_by_producer_and_consumer() -> None:
    """N4: the partition count grows from 1 to 4; producer and group consumer use the new ones."""
    async with MockCluster() as cluster:
        cluster.create_topic("g", partitions=1)
        consumer = make_consumer(cluster, group_id="n4", metadata_max_age_ms=50)
        async with make_producer(cluster.bootstrap_servers, metadata_max_age_ms=50) as producer:
            assert await _sticky_spread(producer, "g", 4) == {0}
            async with consumer:
                consumer.subscribe(["g"])
                first = await collect(consumer, 4)
                assert {r.partition for r in first} == {0}
                cluster.create_partitions("g", 4)
                with anyio.fail_after(10):
                    while await producer.partitions_for("g") != {0, 1, 2, 3}:
                        await anyio.sleep(0.02)
                for p in (1, 2, 3):  # an explicit partition that did not exist before
                    await producer.send_and_wait("g", b"new-%d" % p, partition=p)
                spread = await _sticky_spread(producer, "g", 40)  # keyed: murmur2 over 4
                assert spread == {0, 1, 2, 3}
                later = await collect(consumer, 43)
                assert {r.partition for r in later} == {0, 1, 2, 3}
                assert consumer.assignment() == {TopicPartition("g", p) for p in range(4)}
        assert cluster.errors == []
