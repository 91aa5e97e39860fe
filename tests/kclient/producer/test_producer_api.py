"""AsyncProducer API on the MockCluster: round trip, futures, validation, lifecycle."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from kclient import AsyncProducer, IllegalStateError, ProducerRecord, RecordMetadata
from kclient.errors import BufferFullError
from kclient.producer.batch import DeliveryFuture, DeliveryState
from kclient.testing.mock import MockCluster
from protocol.errors import InvalidTopicError, RecordTooLargeError

from ._helpers import log_records, log_values, make_producer

pytestmark = pytest.mark.anyio


async def test_send_await_and_callbacks() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t", partitions=3)
        async with make_producer(cluster.bootstrap_servers) as producer:
            seen: list[DeliveryFuture] = []
            delivery = await producer.send(
                "t", b"v", key=b"k", headers=[("h", b"1"), ("n", None)], timestamp_ms=1234
            )
            delivery.add_done_callback(seen.append)
            meta = await delivery
            assert isinstance(meta, RecordMetadata)
            assert (meta.topic, meta.offset, meta.timestamp) == ("t", 0, 1234)
            assert seen == [delivery]
            late: list[DeliveryFuture] = []
            delivery.add_done_callback(late.append)  # already done: runs at once
            assert late == [delivery]
            other = (meta.partition + 1) % 3
            meta2 = await producer.send_and_wait("t", b"w", partition=other)
            assert (meta2.partition, meta2.offset) == (other, 0)
            assert await producer.partitions_for("t") == {0, 1, 2}
        [record] = log_records(cluster, "t", meta.partition)
        assert (record.key, record.value, record.timestamp) == (b"k", b"v", 1234)
        assert list(record.headers) == [("h", b"1"), ("n", None)]
        assert cluster.errors == []


async def test_keyed_records_keep_order_per_partition_and_flush() -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("t", partitions=6)
        async with make_producer(cluster.bootstrap_servers, linger_ms=50) as producer:
            futures = [
                await producer.send("t", b"%d" % i, key=b"key-%d" % (i % 10)) for i in range(600)
            ]
            await producer.flush()
            assert all(f.done() for f in futures)
        by_partition: dict[int, list[bytes]] = {}
        for i, f in enumerate(futures):
            by_partition.setdefault(f.result().partition, []).append(b"%d" % i)
        for partition, values in by_partition.items():
            assert log_values(cluster, "t", partition) == values
            offsets = [futures[int(v)].result().offset for v in values]
            assert offsets == list(range(len(values)))


async def test_send_many_values_and_records() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=4)
        # 16 KiB batches: the 3000 small values (~60 KB) make several sticky stints.
        async with make_producer(cluster.bootstrap_servers, batch_size=16384) as producer:
            futures = await producer.send_many("t", [b"%d" % i for i in range(3000)])
            records = [
                ProducerRecord(b"r%d" % i, key=b"k", headers=[("a", b"b")]) for i in range(5)
            ]
            more = await producer.send_many("t", records, partition=1)
            await producer.flush()
        assert all(f.state is DeliveryState.SUCCEEDED for f in futures + more)
        total = sum(len(log_values(cluster, "t", p)) for p in range(4))
        assert total == 3005
        assert log_values(cluster, "t", 1)[-5:] == [b"r%d" % i for i in range(5)]
        # keyless records spread over the partitions (sticky, one batch at a time)
        assert len({f.result().partition for f in futures}) > 1


async def test_serializers_and_custom_partitioner() -> None:
    def last_partition(
        topic: str, key: bytes | None, all_: Sequence[int], available: Sequence[int]
    ) -> int:
        return all_[-1]

    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=3)
        async with make_producer(
            cluster.bootstrap_servers,
            key_serializer=str.encode,
            value_serializer=lambda v: json.dumps(v).encode(),
            partitioner=last_partition,
        ) as producer:
            meta = await producer.send_and_wait("t", {"a": 1}, key="k")
        assert meta.partition == 2
        [record] = log_records(cluster, "t", 2)
        assert (record.key, record.value) == (b"k", b'{"a": 1}')


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((None, b"v"), {}, TypeError),
        (("", b"v"), {}, InvalidTopicError),
        (("bad topic!", b"v"), {}, InvalidTopicError),
        (("x" * 250, b"v"), {}, InvalidTopicError),
        (("t", "text"), {}, TypeError),
        (("t", b"v"), {"key": 5}, TypeError),
        (("t", b"v"), {"partition": 3}, ValueError),
        (("t", b"v"), {"partition": -1}, ValueError),
        (("t", b"v"), {"headers": [(None, b"x")]}, TypeError),
        (("t", b"x" * 2_000_000), {}, RecordTooLargeError),
    ],
)
async def test_invalid_input_raises_and_enqueues_nothing(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception]
) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=3)
        async with make_producer(cluster.bootstrap_servers) as producer:
            with pytest.raises(error):
                await producer.send(*args, **kwargs)  # type: ignore[arg-type]
            with pytest.raises(error):
                await producer.send_many(
                    args[0],
                    [b"ok", args[1]],
                    **kwargs,  # type: ignore[arg-type]
                )
            assert producer._acc.used_bytes == 0
            await producer.send_and_wait("t", b"fine")  # the producer is unaffected
        assert sum(len(log_values(cluster, "t", p)) for p in range(3)) == 1


async def test_acks_zero_and_one_and_non_idempotent() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=1)
        for acks in (0, 1):
            async with make_producer(
                cluster.bootstrap_servers, acks=acks, enable_idempotence=False
            ) as producer:
                meta = await producer.send_and_wait("t", b"a%d" % acks)
                assert meta.offset == (-1 if acks == 0 else 1)
        assert log_values(cluster, "t", 0) == [b"a0", b"a1"]


async def test_close_is_idempotent_and_refuses_sends() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        producer = make_producer(cluster.bootstrap_servers)
        async with producer:
            pending = await producer.send("t", b"v")
        assert pending.done() and pending.state is DeliveryState.SUCCEEDED
        await producer.close()
        await producer.close(timeout=1)
        with pytest.raises(IllegalStateError):
            await producer.send("t", b"late")


async def test_buffer_full_raises_after_max_block() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        producer = make_producer(
            cluster.bootstrap_servers, buffer_memory=4096, max_block_ms=50, batch_size=1024
        )
        async with producer:
            await producer.partitions_for("t")
            await cluster.broker_down(1)
            with pytest.raises(BufferFullError):
                for _ in range(100):
                    await producer.send("t", b"x" * 200, partition=0)
            await producer.close(timeout=0.2)


def test_exports() -> None:
    import kclient

    assert kclient.AsyncProducer is AsyncProducer
    assert "RecordMetadata" in kclient.__all__
