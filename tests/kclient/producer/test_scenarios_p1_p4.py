"""Reliability scenarios P1-P4 (reliability.md 2a) on the MockCluster, reduced scale.

P1 runs through a ChaosProxy that cuts the connection every N requests, alternating
mid-request (the broker never saw it) and mid-response (applied, answer lost).
"""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from kclient.producer.batch import DeliveryFuture, DeliveryState
from kclient.testing.chaos import ChaosProxy
from kclient.testing.mock import MockCluster
from kclient.testing.mock.codes import Err
from kclient.testing.mock.producers import ProducerEntry, WindowEntry
from protocol.errors import OutOfOrderSequenceError
from protocol.messages import ApiKey
from protocol.records import read_batches

from ._helpers import assert_exactly_once_in_order, log_records, log_values, make_producer

pytestmark = pytest.mark.anyio

VALUE = b"v" * 100
# One record is estimated at 17 + 100 bytes and a batch header at 61: this batch_size
# holds exactly ten 100-byte records, so the scenarios control batch boundaries.
TEN_RECORDS = 61 + 10 * 117


def produce_sequences(cluster: MockCluster, partition: int = 0) -> list[int]:
    """Base sequences of the Produce requests for ``partition``, in arrival order."""
    out = []
    for req in cluster.requests_of(ApiKey.PRODUCE):
        for topic in req.request.topic_data:  # type: ignore[attr-defined]
            for part in topic.partition_data:
                if part.index == partition:
                    batch = next(iter(read_batches(part.records)))
                    out.append(batch.base_sequence)  # type: ignore[union-attr]
    return out


# -- P1 ---------------------------------------------------------------------------------


async def run_p1(upstream: str, records: int, cluster: MockCluster) -> dict[int, list[bytes]]:
    """Produce ``records`` keyed records through a cutting proxy; return the sent
    values per partition (in send order) after checking every future resolved once."""
    resolved: Counter[int] = Counter()
    sent: dict[int, list[bytes]] = {}
    async with ChaosProxy(upstream, cut_every_requests=15, max_cuts=40, seed=7) as proxy:
        cluster.advertise(1, proxy.address)
        futures: list[DeliveryFuture] = []
        async with make_producer(
            proxy.address, request_timeout_ms=2000, linger_ms=5, batch_size=4096
        ) as producer:
            for i in range(records):
                future = await producer.send("p1", b"%d" % i, key=b"key-%d" % (i % 60))
                future.add_done_callback(lambda f, i=i: resolved.update([i]))
                futures.append(future)
            await producer.flush()
        assert proxy.stats.cuts > 0
    assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
    assert set(resolved.values()) == {1} and len(resolved) == records
    for i, future in enumerate(futures):
        sent.setdefault(future.result().partition, []).append(b"%d" % i)
    return sent


async def test_p1_disconnects_during_a_long_run() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("p1", partitions=6)
        sent = await run_p1(cluster.listen_address(1), 20_000, cluster)
        for partition in range(6):
            assert_exactly_once_in_order(cluster, "p1", partition, sent.get(partition, []))
            offsets = [r.offset for r in log_records(cluster, "p1", partition)]
            assert offsets == list(range(len(offsets)))
        assert cluster.errors == []


# -- P2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lost_at", [1, 3, 5])
async def test_p2a_lost_responses_then_not_enough_replicas(lost_at: int) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        sent = [b"%03d" % i for i in range(100)]
        async with make_producer(
            cluster.bootstrap_servers, batch_size=TEN_RECORDS, linger_ms=1000
        ) as producer:
            futures = []
            for i, value in enumerate(sent):
                if i == (lost_at - 1) * 10:
                    await producer.flush()
                    # this batch is appended, its answer lost; the retry first meets
                    # NOT_ENOUGH_REPLICAS, then the broker's duplicate detection
                    cluster.drop_next(ApiKey.PRODUCE, "after")
                    cluster.fail_next(ApiKey.PRODUCE, Err.NOT_ENOUGH_REPLICAS)
                futures.append(await producer.send("t", value.ljust(100), partition=0))
            await producer.flush()
        assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
        assert_exactly_once_in_order(cluster, "t", 0, [v.ljust(100) for v in sent])
        # the duplicate retry reports the original offsets
        assert [f.result().offset for f in futures] == list(range(100))


@pytest.mark.parametrize("timeouts", [5, 8])
async def test_p2b_responses_time_out_after_append(timeouts: int) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.delay_next(ApiKey.PRODUCE, 1.0, count=timeouts)
        sent = [(b"%03d" % i).ljust(100) for i in range(100)]
        async with make_producer(
            cluster.bootstrap_servers, batch_size=TEN_RECORDS, request_timeout_ms=150
        ) as producer:
            futures = [await producer.send("t", v, partition=0) for v in sent]
            await producer.flush()
        assert producer._sender is not None and producer._sender.fatal_error is None
        got = log_values(cluster, "t", 0)
        assert len(got) == len(set(got)), "duplicates"
        delivered = [
            v for v, f in zip(sent, futures, strict=True) if f.state is DeliveryState.SUCCEEDED
        ]
        assert [v for v in got if v in set(delivered)] == delivered
        assert all(v in set(got) for v in delivered)
        # nothing failed as "not persisted" that is in the log
        missing = {
            v for v, f in zip(sent, futures, strict=True) if f.state is DeliveryState.NOT_PERSISTED
        }
        assert not missing & set(got)
        assert got == sent  # within the delivery timeout everything goes through, in order
        assert len(cluster.requests_of(ApiKey.PRODUCE)) > 10 + timeouts // 5  # retries happened


# 20: NOT_ENOUGH_REPLICAS_AFTER_APPEND (the mock has no name for it)
@pytest.mark.parametrize("code", [20, Err.REQUEST_TIMED_OUT])
async def test_p2c_ambiguous_error_and_cancelled_await(code: int) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with make_producer(cluster.bootstrap_servers) as producer:
            await producer.send_and_wait("t", b"first", partition=0)
            cluster.fail_next(ApiKey.PRODUCE, code)
            future = await producer.send("t", b"second", partition=0)
            with anyio.move_on_after(0):
                await future  # the user gives up waiting: the delivery goes on
            later = await producer.send_and_wait("t", b"third", partition=0)
            await producer.flush()
        assert future.state is DeliveryState.SUCCEEDED
        assert future.result().offset == 1 and later.offset == 2
        assert log_values(cluster, "t", 0) == [b"first", b"second", b"third"]


# -- P3 ---------------------------------------------------------------------------------


async def test_p3_retriable_error_then_out_of_order_retried_in_order() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        sent = [(b"%03d" % i).ljust(100) for i in range(60)]
        async with make_producer(
            cluster.bootstrap_servers, batch_size=TEN_RECORDS, linger_ms=0
        ) as producer:
            await producer.partitions_for("t")
            # hold the first response so that the following requests pile up behind it
            cluster.delay_next(ApiKey.PRODUCE, 0.2)
            cluster.fail_next(ApiKey.PRODUCE, Err.NOT_LEADER_OR_FOLLOWER)
            futures = await producer.send_many("t", sent, partition=0)
            await producer.flush()
        assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
        assert_exactly_once_in_order(cluster, "t", 0, sent)
        seqs = produce_sequences(cluster)
        first_retry = seqs.index(0, 1)
        assert len(set(seqs[:first_retry])) >= 3, "several requests were in flight"
        # after the error: batches resent in order, each once (one in flight)
        assert seqs[first_retry:] == sorted(set(seqs[first_retry:]))


async def test_p3_sequence_wraps() -> None:
    start = 2**31 - 10
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        part = cluster.state.partition("t", 0)
        assert part is not None
        # the broker already knows producer 1000 (the mock's first id) up to start - 1
        entry = ProducerEntry(epoch=0, last_offset=10**9)
        entry.window.append(WindowEntry(start - 10, start - 1, 0))
        part.log.producers.entries[1000] = entry
        sent = [b"%03d" % i for i in range(100)]
        async with make_producer(cluster.bootstrap_servers, _first_sequence=start) as producer:
            futures = await producer.send_many("t", sent, partition=0)
            await producer.flush()
            assert producer._idem.producer_id == 1000
            assert producer._idem.producer_epoch == 0  # no bump was needed
        assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
        assert log_values(cluster, "t", 0) == sent
        assert producer._idem.next_sequence(("t", 0)) == 90


# -- P4 ---------------------------------------------------------------------------------


async def test_p4_head_of_line_out_of_order_fails_and_bumps() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with make_producer(cluster.bootstrap_servers) as producer:
            await producer.send_and_wait("t", b"ok", partition=0)
            epoch = producer._idem.producer_epoch
            cluster.fail_next(ApiKey.PRODUCE, Err.OUT_OF_ORDER_SEQUENCE_NUMBER)
            lost = await producer.send("t", b"lost", partition=0)
            with pytest.raises(OutOfOrderSequenceError) as info:
                await lost
            assert info.value.delivery_state is DeliveryState.NOT_PERSISTED  # type: ignore[attr-defined]
            after = await producer.send_and_wait("t", b"after", partition=0)
            assert producer._idem.producer_epoch == epoch + 1
        assert lost.state is DeliveryState.NOT_PERSISTED
        assert after.offset == 1
        assert log_values(cluster, "t", 0) == [b"ok", b"after"]
