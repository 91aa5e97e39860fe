"""Transactional producer API on the MockCluster: the call rules, the context manager,
fail-fast after a fatal error, offsets at the group coordinator (KIP-447)."""

from __future__ import annotations

import anyio
import pytest

from kclient import TopicPartition
from kclient.errors import (
    ConfigError,
    IllegalStateError,
    ProducerFencedError,
    TransactionAbortedError,
    TransactionStateError,
)
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import make_producer
from ._txn_helpers import read_all, txn_producer

pytestmark = pytest.mark.anyio


async def test_commit_is_visible_and_abort_is_not() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        async with txn_producer(cluster.bootstrap_servers) as producer:
            await producer.begin_transaction()
            committed = [await producer.send("t", b"c%d" % i, partition=i % 2) for i in range(10)]
            await producer.commit_transaction()
            assert all(f.done() and f.exception() is None for f in committed)
            await producer.begin_transaction()
            for i in range(6):
                await producer.send_and_wait("t", b"a%d" % i, partition=i % 2)
            await producer.abort_transaction()
        got = await read_all(cluster.bootstrap_servers, "t", 2)
        assert got == {
            0: [b"c0", b"c2", b"c4", b"c6", b"c8"],
            1: [b"c1", b"c3", b"c5", b"c7", b"c9"],
        }
        raw = await read_all(cluster.bootstrap_servers, "t", 2, isolation="read_uncommitted")
        assert sorted(raw[0] + raw[1]) == sorted(
            [b"c%d" % i for i in range(10)] + [b"a%d" % i for i in range(6)]
        )


async def test_call_rules_raise_state_errors_at_once() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            with pytest.raises(TransactionStateError):
                await producer.commit_transaction()  # without begin
            with pytest.raises(TransactionStateError):
                await producer.abort_transaction()
            with pytest.raises(TransactionStateError):  # send outside a transaction
                await producer.send("t", b"x")
            with pytest.raises(TransactionStateError):
                await producer.send_many("t", [b"x", b"y"])
            await producer.begin_transaction()
            with pytest.raises(TransactionStateError):
                await producer.begin_transaction()  # twice
            await producer.init_transactions()  # idempotent: nothing happens
            await producer.send_and_wait("t", b"in")
            await producer.commit_transaction()
            with pytest.raises(TransactionStateError):
                await producer.commit_transaction()  # already committed
        inits = cluster.requests_of(ApiKey.INIT_PRODUCER_ID)
        assert len(inits) == 1 and inits[0].request.transactional_id == "tx"
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"in"]


async def test_transaction_calls_on_a_plain_producer_and_config_errors() -> None:
    async with MockCluster() as cluster:
        async with make_producer(cluster.bootstrap_servers) as producer:
            with pytest.raises(IllegalStateError, match="transactional_id"):
                await producer.begin_transaction()
            with pytest.raises(IllegalStateError):
                producer.transaction()
    with pytest.raises(ConfigError, match="enable_idempotence"):
        txn_producer("127.0.0.1:9", enable_idempotence=False)


async def test_context_manager_commits_aborts_and_reraises() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            async with producer.transaction():
                await producer.send("t", b"kept")
            with pytest.raises(RuntimeError, match="boom"):
                async with producer.transaction():
                    await producer.send_and_wait("t", b"dropped")
                    raise RuntimeError("boom")
            async with producer.transaction():  # the producer is ready again
                await producer.send("t", b"kept too")
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"kept", b"kept too"]
        ends = [r.request.committed for r in cluster.requests_of(ApiKey.END_TXN)]
        assert ends == [True, False, True]


async def test_cancelled_transaction_block_is_aborted() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            with anyio.move_on_after(0.3) as scope:
                async with producer.transaction():
                    await producer.send_and_wait("t", b"cancelled")
                    await anyio.sleep_forever()
            assert scope.cancelled_caught
            # The abort ran (shielded) before the cancellation went on: ready for more.
            async with producer.transaction():
                await producer.send("t", b"next")
        assert [r.request.committed for r in cluster.requests_of(ApiKey.END_TXN)] == [False, True]
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"next"]


async def test_abort_fails_unsent_records_as_transaction_aborted() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            await producer.begin_transaction()
            await producer.send_and_wait("t", b"sent")
            cluster.delay_next(ApiKey.ADD_PARTITIONS_TO_TXN, 0.5)
            cluster.create_topic("u")
            held = [await producer.send("u", b"held%d" % i) for i in range(5)]
            await producer.abort_transaction()
            for future in held:
                assert isinstance(future.exception(), TransactionAbortedError)
                assert future.state.name == "NOT_PERSISTED"
            assert not cluster.requests_of(ApiKey.PRODUCE, broker=None)[1:]  # only "sent"
        assert (await read_all(cluster.bootstrap_servers, "u"))[0] == []


async def test_fenced_producer_fails_fast_on_every_later_call() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as zombie:
            await zombie.begin_transaction()
            await zombie.send_and_wait("t", b"zombie")
            async with txn_producer(cluster.bootstrap_servers) as successor:
                with pytest.raises(ProducerFencedError):
                    await zombie.commit_transaction()
                for call in (zombie.begin_transaction, zombie.abort_transaction,
                             zombie.commit_transaction, zombie.init_transactions):  # fmt: skip
                    with pytest.raises(ProducerFencedError):
                        await call()
                with pytest.raises(ProducerFencedError):
                    await zombie.send("t", b"more")
                with pytest.raises(ProducerFencedError):
                    await zombie.send_offsets_to_transaction({TopicPartition("t", 0): 1}, "g")
                async with successor.transaction():
                    await successor.send("t", b"successor")
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"successor"]


async def test_send_offsets_goes_to_the_group_coordinator_with_the_generation() -> None:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("t")
        cluster.move_txn_coordinator("tx", 1)
        cluster.move_group_coordinator("g", 2)
        group = ConsumerGroupMetadata("g", generation_id=-1, member_id="", group_instance_id="i-1")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            async with producer.transaction():
                await producer.send("t", b"x")
                await producer.send_offsets_to_transaction(
                    {TopicPartition("in", 0): 42, TopicPartition("in", 1): 7}, group
                )
            with pytest.raises(TypeError):
                await producer.send_offsets_to_transaction({TopicPartition("in", 0): 1}, 5)  # type: ignore[arg-type]
        (add_offsets,) = cluster.requests_of(ApiKey.ADD_OFFSETS_TO_TXN)
        assert add_offsets.broker == 1 and add_offsets.request.group_id == "g"
        (commit,) = cluster.requests_of(ApiKey.TXN_OFFSET_COMMIT)
        assert commit.broker == 2
        req = commit.request
        assert (req.group_id, req.generation_id, req.member_id, req.group_instance_id) == (
            "g", -1, "", "i-1",
        )  # fmt: skip
        sent = {
            (t.name, p.partition_index): p.committed_offset
            for t in req.topics
            for p in t.partitions
        }
        assert sent == {("in", 0): 42, ("in", 1): 7}
