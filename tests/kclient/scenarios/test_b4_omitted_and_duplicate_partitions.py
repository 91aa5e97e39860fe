"""Reliability scenario B4 (reliability guide 2e), the structural half that needs a client:
a partition omitted from a Produce or OffsetFetch response, and duplicate partition entries.

An omitted partition must become a retriable condition (retried, or a timeout error if it
never comes back), never a silent success or a silent "nothing committed". Duplicate
entries are processed once. The byte-level half of B4 (lengths, varints, bombs) is covered
by the codec tests listed in docs/design-notes/scenario-coverage.md.
"""

from __future__ import annotations

import copy
from typing import Any

import anyio
import pytest

from kclient import TopicPartition
from kclient.errors import DeliveryTimeoutError, KafkaTimeoutError
from kclient.producer.batch import DeliveryState
from kclient.testing.mock import MockCluster
from protocol.api import Response
from protocol.messages import ApiKey
from protocol.messages.offset_fetch import OffsetFetchResponse
from protocol.messages.produce import ProduceResponse

from ..consumer.scenarios._helpers import collect, make_consumer, produce
from ..producer._helpers import log_values, make_producer

pytestmark = pytest.mark.anyio


class Rewrite:
    """Counts how often it changed a response (it only changes ones that carry ``tp``)."""

    def __init__(self, topic: str, partition: int, action: str) -> None:
        self.tp, self.action, self.hits = (topic, partition), action, 0

    def _edit(self, partitions: list[Any], index_of: Any) -> list[Any]:
        keep = [p for p in partitions if index_of(p) != self.tp[1]]
        if len(keep) == len(partitions):
            return partitions
        self.hits += 1
        if self.action == "omit":
            return keep
        return partitions + [copy.deepcopy(p) for p in partitions if index_of(p) == self.tp[1]]

    def __call__(self, response: Response) -> Response:
        if isinstance(response, ProduceResponse):
            for t in response.responses:
                if t.name == self.tp[0]:
                    t.partition_responses = self._edit(t.partition_responses, lambda p: p.index)
        elif isinstance(response, OffsetFetchResponse):
            for t1 in response.topics:  # v0-v7 layout
                if t1.name == self.tp[0]:
                    t1.partitions = self._edit(t1.partitions, lambda p: p.partition_index)
            for g in response.groups:  # v8+ layout
                for t2 in g.topics:
                    if t2.name == self.tp[0]:
                        t2.partitions = self._edit(t2.partitions, lambda p: p.partition_index)
        return response


async def test_b4_partition_omitted_from_produce_response_is_retried_not_succeeded() -> None:
    """B4: the broker appended p0 and p1 but its answer leaves p1 out (twice)."""
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        omit = Rewrite("t", 1, "omit")
        async with make_producer(cluster.bootstrap_servers, linger_ms=20) as producer:
            await producer.partitions_for("t")
            cluster.rewrite_next(ApiKey.PRODUCE, omit, count=2)
            f0 = await producer.send("t", b"a", partition=0)
            f1 = await producer.send("t", b"b", partition=1)
            meta0 = await f0
            meta1 = await f1
        assert omit.hits == 2
        assert meta0.offset == 0 and meta1.offset == 0
        # The retry carried the same sequence: the broker recognised it as a duplicate,
        # so the record is in the log once although it was written on the first attempt.
        assert log_values(cluster, "t", 1) == [b"b"]
        produce_requests = cluster.requests_of(ApiKey.PRODUCE)
        assert len(produce_requests) == 3  # one with both partitions, two retries of p1
        assert cluster.errors == []


async def test_b4_partition_always_omitted_fails_as_possibly_persisted() -> None:
    """B4: if the broker never answers for the partition, the send fails by its
    delivery timeout as POSSIBLY_PERSISTED: never reported as a success."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        omit = Rewrite("t", 0, "omit")
        settings = dict(request_timeout_ms=200, linger_ms=0, delivery_timeout_ms=400)
        async with make_producer(cluster.bootstrap_servers, **settings) as producer:
            await producer.partitions_for("t")
            cluster.rewrite_next(ApiKey.PRODUCE, omit, count=10_000)
            future = await producer.send("t", b"x")
            with anyio.fail_after(5), pytest.raises(DeliveryTimeoutError):
                await future
            assert future.state is DeliveryState.POSSIBLY_PERSISTED
            cluster.clear_faults()
            # The producer is still usable afterwards.
            assert (await producer.send_and_wait("t", b"y")).offset >= 0
        assert omit.hits >= 1
        assert cluster.errors == []


async def test_b4_duplicate_partition_entry_in_produce_response_is_processed_once() -> None:
    """B4: the response lists the partition twice; its batch completes once."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        dup = Rewrite("t", 0, "duplicate")
        async with make_producer(cluster.bootstrap_servers) as producer:
            await producer.partitions_for("t")
            cluster.rewrite_next(ApiKey.PRODUCE, dup, count=1)
            completions: list[int] = []
            future = await producer.send("t", b"a")
            future.add_done_callback(lambda f: completions.append(f.result().offset))
            await future
            later = [await producer.send_and_wait("t", b"%d" % i) for i in range(3)]
        assert dup.hits == 1
        assert completions == [0]
        assert [m.offset for m in later] == [1, 2, 3]
        assert log_values(cluster, "t", 0) == [b"a", b"0", b"1", b"2"]


async def test_b4_partition_omitted_from_offset_fetch_is_retried_then_a_timeout() -> None:
    """B4: committed() never turns "the broker did not mention the partition" into
    "nothing committed"; it retries and, if the omission persists, times out."""
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
        consumer = make_consumer(cluster, group_id="b4")
        async with consumer:
            # No assign(): the consumer's own position lookups would take rewrites too.
            await consumer.commit({tp0: 5, tp1: 7})
            omit = Rewrite("t", 1, "omit")
            cluster.rewrite_next(ApiKey.OFFSET_FETCH, omit, count=2)
            assert await consumer.committed(tp1, timeout_ms=5000) == 7
            assert omit.hits == 2
            cluster.rewrite_next(ApiKey.OFFSET_FETCH, omit, count=10_000)
            with pytest.raises(KafkaTimeoutError):
                await consumer.committed_offsets(tp0, tp1, timeout_ms=300)
            cluster.clear_faults()
            dup = Rewrite("t", 0, "duplicate")
            cluster.rewrite_next(ApiKey.OFFSET_FETCH, dup, count=1000)
            both = await consumer.committed_offsets(tp0, tp1, timeout_ms=5000)
            assert dup.hits == 1  # one request, answered with tp0 listed twice
            assert {tp: om.offset if om else None for tp, om in both.items()} == {tp0: 5, tp1: 7}
        assert cluster.errors == []


async def test_b4_omitted_offset_fetch_does_not_reset_the_starting_position() -> None:
    """B4: a consumer whose first OffsetFetch leaves its partition out starts at the
    committed offset, not at auto_offset_reset=earliest."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        produce(cluster, "t", 0, [b"%d" % i for i in range(10)])
        tp = TopicPartition("t", 0)
        first = make_consumer(cluster, group_id="b4-start")
        async with first:
            first.assign([tp])
            await first.commit({tp: 6})
        omit = Rewrite("t", 0, "omit")
        cluster.rewrite_next(ApiKey.OFFSET_FETCH, omit, count=3)
        again = make_consumer(cluster, group_id="b4-start")
        async with again:
            again.assign([tp])
            records = await collect(again, 4)
        assert omit.hits == 3
        assert [r.offset for r in records] == [6, 7, 8, 9]
