"""Each MockCluster control action, observed through confluent-kafka over loopback TCP.

The peer client is synchronous and runs in a worker thread (anyio.to_thread)
while the mock serves from the test's event loop. These tests are slow-ish
(librdkafka start-up), so they run on asyncio only; test_mock_smoke runs the
mock under both backends.
"""

from __future__ import annotations

from functools import partial

import anyio
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kclient.testing.mock import DropWhen, Err, ManualClock, MockCluster
from protocol.messages import ApiKey

from .peers import consume_all, consumer, poll_values, produce_all, producer, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

VALUES = [b"v%d" % i for i in range(10)]


def log_values(cluster: MockCluster, topic: str, partition: int = 0) -> int:
    part = cluster.state.partition(topic, partition)
    assert part is not None
    return part.log.high_watermark


async def test_produce_consume_and_group_commit(anyio_backend: str) -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("t", partitions=3)
        bs = cluster.bootstrap_servers
        reports = await anyio.to_thread.run_sync(
            partial(produce_all, bs, "t", VALUES, **{"enable.idempotence": True})
        )
        assert [r[2] for r in reports] == [None] * 10

        def group_consume() -> tuple[list[bytes], list[int]]:
            c = consumer(bs, "g1")
            c.subscribe(["t"])
            got = poll_values(c, 10)
            c.commit(asynchronous=False)
            committed = c.committed([TopicPartition("t", p) for p in range(3)], timeout=10)
            c.close()
            return got, [tp.offset for tp in committed]

        got, committed = await anyio.to_thread.run_sync(group_consume)
        assert sorted(got) == sorted(VALUES)
        ends = [log_values(cluster, "t", p) for p in range(3)]
        assert committed == [e if e else -1001 for e in ends]  # -1001: nothing committed
        assert sum(ends) == 10
        assert cluster.requests_of(ApiKey.JOIN_GROUP)
        assert cluster.requests_of(ApiKey.SYNC_GROUP)
        assert cluster.requests_of(ApiKey.LEAVE_GROUP)
        assert cluster.errors == []


async def test_fail_next_non_retriable_error_reaches_delivery_report(anyio_backend: str) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.fail_next(ApiKey.PRODUCE, Err.INVALID_RECORD, topic="t", partition=0)
        reports = await anyio.to_thread.run_sync(
            partial(produce_all, cluster.bootstrap_servers, "t", [b"x"])
        )
        assert len(reports) == 1
        error = reports[0][2]
        assert error is not None and error.code() == KafkaError.INVALID_RECORD
        assert log_values(cluster, "t") == 0


async def test_fail_next_retriable_error_is_retried(anyio_backend: str) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.fail_next(ApiKey.PRODUCE, Err.NOT_ENOUGH_REPLICAS, count=2)
        reports = await anyio.to_thread.run_sync(
            partial(
                produce_all, cluster.bootstrap_servers, "t", [b"x"], **{"enable.idempotence": True}
            )
        )
        assert [r[2] for r in reports] == [None]
        assert len(cluster.requests_of(ApiKey.PRODUCE)) >= 3
        assert log_values(cluster, "t") == 1


@pytest.mark.parametrize("when", [DropWhen.BEFORE, DropWhen.AFTER])
async def test_drop_connection_before_or_after_apply(anyio_backend: str, when: DropWhen) -> None:
    """AFTER is the ambiguous outcome: applied, answer lost; the idempotent retry is a
    duplicate (DUPLICATE_SEQUENCE_NUMBER, which librdkafka treats as success)."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.drop_next(ApiKey.PRODUCE, when)
        reports = await anyio.to_thread.run_sync(
            partial(
                produce_all, cluster.bootstrap_servers, "t", VALUES, **{"enable.idempotence": True}
            )
        )
        assert [r[2] for r in reports] == [None] * 10
        assert len(cluster.requests_of(ApiKey.PRODUCE)) >= 2
        assert log_values(cluster, "t") == 10  # exactly once
        got = await anyio.to_thread.run_sync(
            partial(consume_all, cluster.bootstrap_servers, "t", 10)
        )
        assert got == VALUES


async def test_delay_responses(anyio_backend: str) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.delay_next(ApiKey.METADATA, 2.0, count=1000)

        def list_topics() -> None:
            c = consumer(cluster.bootstrap_servers)
            try:
                c.list_topics("t", timeout=0.3)
            finally:
                c.close()

        with pytest.raises(KafkaException):
            await anyio.to_thread.run_sync(list_topics)
        cluster.clear_faults()
        await anyio.to_thread.run_sync(list_topics)


async def test_move_leader(anyio_backend: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        old = cluster.leader_of("t", 0)
        new = next(b for b in cluster.broker_ids if b != old)
        p = producer(cluster.bootstrap_servers, **{"enable.idempotence": True})
        errors: list[KafkaError | None] = []

        def send(prefix: bytes) -> None:
            for i in range(5):
                p.produce("t", prefix + b"%d" % i, on_delivery=lambda e, m: errors.append(e))
            p.flush(15)

        await anyio.to_thread.run_sync(send, b"a")
        cluster.move_leader("t", 0, new)
        await anyio.to_thread.run_sync(send, b"b")
        assert errors == [None] * 10
        assert cluster.requests_of(ApiKey.PRODUCE, broker=new)
        part = cluster.state.partition("t", 0)
        assert part is not None and part.log.leader_epoch == 1 and part.log.high_watermark == 10


async def test_move_group_coordinator(anyio_backend: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        bs = cluster.bootstrap_servers
        await anyio.to_thread.run_sync(partial(produce_all, bs, "t", VALUES[:2]))
        old = cluster.group_coordinator("g")
        new = next(b for b in cluster.broker_ids if b != old)
        c = consumer(bs, "g")
        c.subscribe(["t"])

        def first() -> None:
            poll_values(c, 1)
            c.commit(asynchronous=False)

        def second() -> list[int]:
            poll_values(c, 1)
            assert wait_for(lambda: _commit_ok(c))
            return [tp.offset for tp in c.committed([TopicPartition("t", 0)], timeout=10)]

        await anyio.to_thread.run_sync(first)
        cluster.move_group_coordinator("g", new)
        offsets = await anyio.to_thread.run_sync(second)
        await anyio.to_thread.run_sync(c.close)
        assert offsets == [2]
        assert cluster.requests_of(ApiKey.OFFSET_COMMIT, broker=new)
        assert len(cluster.requests_of(ApiKey.FIND_COORDINATOR)) >= 2


def _commit_ok(c: object) -> bool:
    try:
        c.commit(asynchronous=False)  # type: ignore[attr-defined]
        return True
    except KafkaException:
        return False


async def test_transactions_and_move_txn_coordinator(anyio_backend: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        bs = cluster.bootstrap_servers
        old = cluster.txn_coordinator("tx")
        new = next(b for b in cluster.broker_ids if b != old)
        p = producer(bs, **{"transactional.id": "tx"})

        def transaction(value: bytes, commit: bool) -> None:
            p.begin_transaction()
            p.produce("t", value)
            if commit:
                p.commit_transaction(10)
            else:
                p.flush(10)  # abort purges unsent records; send them so the log has them
                p.abort_transaction(10)

        await anyio.to_thread.run_sync(p.init_transactions, 10)
        await anyio.to_thread.run_sync(transaction, b"committed", True)
        cluster.move_txn_coordinator("tx", new)
        await anyio.to_thread.run_sync(transaction, b"aborted", False)
        await anyio.to_thread.run_sync(transaction, b"committed2", True)
        assert cluster.requests_of(ApiKey.END_TXN, broker=new)
        committed = await anyio.to_thread.run_sync(
            partial(consume_all, bs, "t", 2, **{"isolation.level": "read_committed"})
        )
        assert committed == [b"committed", b"committed2"]
        everything = await anyio.to_thread.run_sync(
            partial(consume_all, bs, "t", 3, **{"isolation.level": "read_uncommitted"})
        )
        assert everything == [b"committed", b"aborted", b"committed2"]
        assert cluster.errors == []


async def test_broker_down_and_up(anyio_backend: str) -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        bs = cluster.bootstrap_servers
        leader = cluster.leader_of("t", 0)
        await anyio.to_thread.run_sync(partial(produce_all, bs, "t", [b"before"]))
        await cluster.broker_down(leader)
        p = producer(bs, **{"message.timeout.ms": 30000})
        delivered: list[KafkaError | None] = []
        p.produce("t", b"during", on_delivery=lambda e, m: delivered.append(e))
        left = await anyio.to_thread.run_sync(p.flush, 1.0)
        assert left == 1 and delivered == []  # the leader is down: nothing delivered
        await cluster.broker_up(leader)
        left = await anyio.to_thread.run_sync(p.flush, 15.0)
        assert left == 0 and delivered == [None]
        assert log_values(cluster, "t") == 2


async def test_session_timeout_with_manual_clock(anyio_backend: str) -> None:
    clock = ManualClock()
    async with MockCluster(clock=clock) as cluster:
        cluster.create_topic("t")
        bs = cluster.bootstrap_servers

        def run() -> None:
            c = consumer(bs, "g", **{"session.timeout.ms": 6000, "heartbeat.interval.ms": 100})
            c.subscribe(["t"])
            assert wait_for(lambda: (c.poll(0.05), bool(c.assignment()))[1])
            joins = len(cluster.requests_of(ApiKey.JOIN_GROUP))
            group = cluster.state.groups["g"]
            # time jumps past the session: the mock expires the member, whose next
            # heartbeat gets UNKNOWN_MEMBER_ID, and librdkafka rejoins
            first_generation = group.generation
            cluster_portal.call(cluster.advance, 7000)
            assert wait_for(lambda: (c.poll(0.05), group.generation > first_generation + 1)[1])
            assert len(cluster.requests_of(ApiKey.JOIN_GROUP)) > joins
            c.close()

        async with anyio.from_thread.BlockingPortal() as cluster_portal:
            await anyio.to_thread.run_sync(run)
        heartbeat_errors = [r for r in cluster.requests_of(ApiKey.HEARTBEAT)]
        assert heartbeat_errors


async def test_delete_records_makes_broker_forget_producer(anyio_backend: str) -> None:
    """P5: the broker forgets the PID; librdkafka bumps its epoch and carries on."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        p = producer(cluster.bootstrap_servers, **{"enable.idempotence": True})
        errors: list[KafkaError | None] = []

        def send(value: bytes) -> None:
            p.produce("t", value, on_delivery=lambda e, m: errors.append(e))
            p.flush(15)

        await anyio.to_thread.run_sync(send, b"one")
        assert cluster.delete_records("t", 0) == 1
        await anyio.to_thread.run_sync(send, b"two")
        await anyio.to_thread.run_sync(send, b"three")
        assert errors == [None, None, None]
        # librdkafka sees UNKNOWN_PRODUCER_ID with log_start_offset above its last acked
        # offset, resets the partition's sequence and retries: one extra Produce.
        assert len(cluster.requests_of(ApiKey.PRODUCE)) == 4
        part = cluster.state.partition("t", 0)
        assert part is not None and part.log.high_watermark == 3
        got = await anyio.to_thread.run_sync(
            partial(consume_all, cluster.bootstrap_servers, "t", 2)
        )
        assert got == [b"two", b"three"]


async def test_static_member_restart_keeps_generation(anyio_backend: str) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        bs = cluster.bootstrap_servers
        static = {"group.instance.id": "i1", "session.timeout.ms": 6000}

        def joined(c: object) -> bool:
            c.poll(0.05)  # type: ignore[attr-defined]
            return bool(c.assignment())  # type: ignore[attr-defined]

        def run() -> tuple[int, int]:
            b = consumer(bs, "g")  # dynamic member first: it leads the group
            b.subscribe(["t"])
            assert wait_for(lambda: joined(b))
            a = consumer(bs, "g", **static)
            a.subscribe(["t"])
            assert wait_for(lambda: all([joined(a), joined(b)]))
            group = cluster.state.groups["g"]
            before = group.generation
            a.close()  # a static member does not send LeaveGroup on close
            a2 = consumer(bs, "g", **static)
            a2.subscribe(["t"])
            assert wait_for(lambda: all([joined(a2), joined(b)]))
            after = group.generation
            a2.close()
            b.close()
            return before, after

        before, after = await anyio.to_thread.run_sync(run)
        assert after == before  # the static follower's restart did not cause a rebalance
