"""send()'s fast path for keyless bytes records keeps every guarantee of the general one:
sticky stints of batch_size bytes, buffer FIFO, closed and fatal checks, metadata."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kclient.errors import IllegalStateError
from kclient.producer.batch import RECORD_OVERHEAD, DeliveryFuture
from kclient.testing.mock import MockCluster

from ._helpers import log_values, make_producer

pytestmark = pytest.mark.anyio


def count_general_appends(producer: Any) -> list[int]:
    """Counts the accumulator's general ``append`` calls (the fast path bypasses it)."""
    calls = [0]
    general = producer._acc.append

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return general(*args)

    producer._acc.append = counted
    return calls


async def test_keyless_loop_takes_the_fast_path_in_stints_of_batch_size() -> None:
    value_size, batch_size, n = 50, 1024, 400
    per_stint = -(-batch_size // (RECORD_OVERHEAD + value_size))  # the crossing record counts
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=3)
        async with make_producer(cluster.bootstrap_servers, batch_size=batch_size) as producer:
            await producer.partitions_for("t")
            general = count_general_appends(producer)
            values = [b"%04d" % i + b"v" * (value_size - 4) for i in range(n)]
            futures = [await producer.send("t", v) for v in values]
            await producer.flush()
        partitions = [f.result().partition for f in futures]
        batches = sum(len(cluster.state.partition("t", p).log.batches) for p in range(3))  # type: ignore[union-attr]
    # The general append takes only a stint's first record and the records that start
    # or fill a batch; every other record took the fast path.
    stints = -(-n // per_stint)
    assert general[0] <= stints + 2 * batches < n // 2
    # Consecutive stints may pick the same partition again: runs are whole stints.
    runs, start = [], 0
    for i in range(1, n + 1):
        if i == n or partitions[i] != partitions[start]:
            runs.append(i - start)
            start = i
    assert all(run % per_stint == 0 for run in runs[:-1]), runs
    for p in range(3):  # exactly once, in send order, per partition
        assert log_values(cluster, "t", p) == [
            v for v, q in zip(values, partitions, strict=True) if q == p
        ]


async def test_closed_or_failed_producer_refuses_keyless_records() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        producer = make_producer(cluster.bootstrap_servers)
        async with producer:
            for _ in range(3):
                await producer.send("t", b"x")
            assert producer._lanes  # the fast path is set up
            assert producer._sender is not None
            producer._sender._fail_fatally(RuntimeError("fatal for the test"))
            with pytest.raises(RuntimeError, match="fatal for the test"):
                await producer.send("t", b"x")
        with pytest.raises(IllegalStateError):
            await producer.send("t", b"x")

        async with make_producer(cluster.bootstrap_servers) as producer:
            for _ in range(3):
                await producer.send("t", b"x")
            assert producer._lanes
            await producer.close()
            with pytest.raises(IllegalStateError):
                await producer.send("t", b"x")


async def test_no_record_is_taken_once_close_has_begun() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")  # led by broker 1
        producer = make_producer(cluster.bootstrap_servers)
        async with producer:
            await producer.partitions_for("t")
            await cluster.broker_down(1)  # close() cannot finish: batches stay open
            for _ in range(3):
                await producer.send("t", b"x")
            assert producer._lanes
            async with anyio.create_task_group() as tg:
                tg.start_soon(producer.close, 0.3)
                await anyio.sleep(0.01)
                with pytest.raises(IllegalStateError):
                    await producer.send("t", b"x")


async def test_blocked_sender_is_not_overtaken_by_a_record_that_would_fit() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")  # one partition, led by broker 1
        settings = dict(buffer_memory=64 * 1024, batch_size=16 * 1024, max_block_ms=5000)
        async with make_producer(cluster.bootstrap_servers, **settings) as producer:
            await producer.partitions_for("t")
            await cluster.broker_down(1)
            small = [await producer.send("t", b"s%03d" % i + b"x" * 96) for i in range(400)]
            assert producer._lanes  # the fast path is set up, with room left for more
            order: list[str] = []

            async def send(name: str, value: bytes) -> DeliveryFuture:
                future = await producer.send("t", value)
                order.append(name)
                return future

            big = b"B" * 30_000  # does not fit: waits for space
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send, "big", big)
                    while producer._blocked == 0:
                        await anyio.sleep(0.001)
                    tg.start_soon(send, "late", b"late")  # would fit, but must queue behind
                    with anyio.fail_after(5):
                        while producer._blocked < 2 and not order:
                            await anyio.sleep(0.001)
                    assert order == []
                    await cluster.broker_up(1)
            finally:  # a failure above must not leave close() waiting for the broker
                await cluster.broker_up(1)
            await producer.flush()
        assert order == ["big", "late"]
        assert all(f.done() for f in small)
        assert log_values(cluster, "t", 0)[-2:] == [big, b"late"]


async def test_new_metadata_drops_the_lane_and_the_sticky_choice() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=4)
        async with make_producer(cluster.bootstrap_servers) as producer:
            await producer.send("t", b"x")
            await producer.send("t", b"x")
            lane = producer._lanes["t"]
            state = producer._sticky.states["t"]
            assert producer._metadata is not None
            cluster.create_topic("other")
            await producer._metadata.refresh()
            assert not lane.live  # settled by the new snapshot
            await producer.send("t", b"x")
            assert producer._sticky.states.get("t") is not state
            assert producer._lanes["t"] is not lane
            await producer.flush()
