"""Reliability scenarios P5-P9 (reliability.md 2a) on the MockCluster, reduced scale."""

from __future__ import annotations

import anyio
import pytest

from kclient.errors import BufferFullError, DeliveryTimeoutError, IllegalStateError
from kclient.producer.batch import DeliveryFuture, DeliveryState
from kclient.testing.mock import MockCluster
from kclient.testing.mock.codes import Err
from protocol.errors import RecordTooLargeError
from protocol.messages import ApiKey

from ._helpers import assert_exactly_once_in_order, log_values, make_producer, states

pytestmark = pytest.mark.anyio


async def test_p5_unknown_producer_id_bumps_and_resets_every_partition() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        async with make_producer(cluster.bootstrap_servers) as producer:
            for partition in (0, 1):
                await producer.send_and_wait("t", b"a%d" % partition, partition=partition)
            epoch = producer._idem.producer_epoch
            cluster.delete_records("t", 0)  # the broker forgets the producer on partition 0
            meta = await producer.send_and_wait("t", b"b0", partition=0)
            assert producer._idem.producer_epoch == epoch + 1
            # the idle partition restarts at sequence 0 under the new epoch too
            assert producer._idem.next_sequence(("t", 1)) == 0
            await producer.send_and_wait("t", b"b1", partition=1)
            await producer.send_and_wait("t", b"c0", partition=0)
        assert meta.offset == 1
        assert log_values(cluster, "t", 0) == [b"b0", b"c0"]  # a0 was deleted
        assert log_values(cluster, "t", 1) == [b"a1", b"b1"]


async def test_p6_leader_move_waits_for_the_old_leaders_requests() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        assert cluster.leader_of("t", 0) == 1
        requests_to_new_leader: list[int] = []
        async with make_producer(cluster.bootstrap_servers, metadata_max_age_ms=50) as producer:
            await producer.partitions_for("t")
            cluster.delay_next(ApiKey.PRODUCE, 0.5, broker=1)
            first = await producer.send("t", b"0", partition=0)
            first.add_done_callback(
                lambda _: requests_to_new_leader.append(
                    len(cluster.requests_of(ApiKey.PRODUCE, broker=2))
                )
            )
            while not cluster.requests_of(ApiKey.PRODUCE, broker=1):
                await anyio.sleep(0.01)
            cluster.move_leader("t", 0, 2)
            later = [await producer.send("t", b"%d" % i, partition=0) for i in range(1, 50)]
            await producer.flush()
        assert requests_to_new_leader == [0]
        assert first.state is DeliveryState.SUCCEEDED
        assert all(f.state is DeliveryState.SUCCEEDED for f in later)
        assert_exactly_once_in_order(cluster, "t", 0, [b"%d" % i for i in range(50)])
        assert cluster.requests_of(ApiKey.PRODUCE, broker=2)


async def test_p7_delivery_timeout_while_the_broker_is_down() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")  # led by broker 1
        settings = dict(request_timeout_ms=300, delivery_timeout_ms=600, linger_ms=2)
        async with make_producer(cluster.bootstrap_servers, **settings) as producer:
            await producer.send_and_wait("t", b"before", partition=0)
            cluster.delay_next(ApiKey.PRODUCE, 5.0, broker=1)
            in_flight = await producer.send("t", b"in-flight", partition=0)
            while len(cluster.requests_of(ApiKey.PRODUCE, broker=1)) < 2:
                await anyio.sleep(0.01)
            await cluster.broker_down(1)
            queued = [await producer.send("t", b"q%d" % i, partition=0) for i in range(1000)]
            await producer.flush()  # returns once everything expired
            await cluster.broker_up(1)
            after = [await producer.send("t", b"a%d" % i, partition=0) for i in range(100)]
            await producer.flush()
            assert producer._sender is not None and producer._sender.fatal_error is None
        assert in_flight.state is DeliveryState.POSSIBLY_PERSISTED
        assert states(queued) == {DeliveryState.NOT_PERSISTED: 1000}
        assert isinstance(queued[0].exception(), DeliveryTimeoutError)
        assert all(f.state is DeliveryState.SUCCEEDED for f in after)
        got = log_values(cluster, "t", 0)
        assert len(got) == len(set(got))
        assert [v for v in got if v != b"in-flight"] == [b"before"] + [
            b"a%d" % i for i in range(100)
        ]


async def test_p8_message_too_large_splits_and_only_a_lone_record_fails() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.create_topic("big")
        values = [b"%03d" % i + b"x" * 10_000 for i in range(100)]  # one ~1 MB batch
        settings = dict(batch_size=1_100_000, max_request_size=2_000_000, linger_ms=50)
        async with make_producer(cluster.bootstrap_servers, **settings) as producer:
            await producer.partitions_for("t")
            cluster.fail_next(ApiKey.PRODUCE, Err.MESSAGE_TOO_LARGE, count=3, topic="t")
            futures = await producer.send_many("t", values, partition=0)
            await producer.flush()
            cluster.fail_next(ApiKey.PRODUCE, Err.MESSAGE_TOO_LARGE, count=100, topic="big")
            lone = await producer.send("big", b"y" * 1000, partition=0)
            with pytest.raises(RecordTooLargeError):
                await lone
            cluster.clear_faults()
            assert (await producer.send_and_wait("big", b"small", partition=0)).offset == 0
        assert all(f.state is DeliveryState.SUCCEEDED for f in futures)
        assert_exactly_once_in_order(cluster, "t", 0, values)
        assert lone.state is DeliveryState.NOT_PERSISTED


async def test_p9_backpressure_and_close_with_the_broker_down() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        producer = make_producer(
            cluster.bootstrap_servers, buffer_memory=64 * 1024, batch_size=8192, max_block_ms=100
        )
        accepted: list[DeliveryFuture] = []
        async with producer:
            await producer.partitions_for("t")
            await cluster.broker_down(1)
            with pytest.raises(BufferFullError):
                while True:
                    accepted.append(await producer.send("t", b"x" * 1000, partition=0))
            assert producer._acc.used_bytes <= 64 * 1024
            blocked_errors: list[BaseException] = []

            async def blocked_send() -> None:
                try:
                    await producer.send("t", b"y" * 1000, partition=0)
                except (BufferFullError, IllegalStateError) as exc:
                    blocked_errors.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(blocked_send)
                await anyio.sleep(0.01)
                await producer.close(timeout=0.2)
            await producer.close()  # second close: no-op
        assert accepted and all(f.done() for f in accepted)
        assert set(states(accepted)) <= {
            DeliveryState.NOT_PERSISTED,
            DeliveryState.POSSIBLY_PERSISTED,
        }
        assert len(blocked_errors) == 1


async def test_p9_everything_accepted_is_flushed_when_the_broker_returns() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        async with make_producer(
            cluster.bootstrap_servers, buffer_memory=64 * 1024, batch_size=8192, max_block_ms=5000
        ) as producer:
            await producer.partitions_for("t")
            await cluster.broker_down(1)
            accepted: list[DeliveryFuture] = []

            async def offer() -> None:
                for i in range(300):  # ~300 KB through a 64 KB buffer: send() blocks
                    accepted.append(await producer.send("t", b"%04d" % i + b"x" * 996, partition=0))

            async with anyio.create_task_group() as tg:
                tg.start_soon(offer)
                while producer._blocked == 0:
                    await anyio.sleep(0.01)
                await cluster.broker_up(1)
        assert len(accepted) == 300
        assert all(f.state is DeliveryState.SUCCEEDED for f in accepted)
        assert_exactly_once_in_order(
            cluster, "t", 0, [b"%04d" % i + b"x" * 996 for i in range(300)]
        )
