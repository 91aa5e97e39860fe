"""Transaction scenarios T1-T4 (reliability.md 2b) on the MockCluster, reduced scale.

T1 copies a few thousand records with a consume-transform-produce loop while the
transaction coordinator moves, its broker goes down mid-transaction and the copying
task is cancelled and restarted; T2-T4 inject one fault each. Every scenario checks
what a read_committed reader (our consumer) sees.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import AsyncConsumer, AsyncProducer, TopicPartition
from kclient.errors import (
    ProducerFencedError,
    TransactionAbortableError,
    TransactionOutcomeUnknownError,
)
from kclient.testing.mock import MockCluster
from kclient.testing.mock.codes import Err
from kclient.testing.mock.faults import DropWhen
from protocol.messages import ApiKey

from ._helpers import make_producer
from ._txn_helpers import read_all, txn_producer

pytestmark = pytest.mark.anyio

# -- T1 -------------------------------------------------------------------------------------


async def _copier(bootstrap: str, partitions: int, group: str) -> None:
    """Copy in -> out, partition to partition, one transaction per polled chunk."""
    tps = [TopicPartition("in", p) for p in range(partitions)]
    async with txn_producer(bootstrap, "copier") as producer, AsyncConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    ) as consumer:  # fmt: skip
        consumer.assign(tps)
        await consumer.seek_to_committed()  # where the last committed transaction ended
        while True:
            got = await consumer.getmany(timeout_ms=100, max_records=40)
            if not got:
                continue
            try:
                async with producer.transaction():
                    for tp, records in got.items():
                        for record in records:
                            await producer.send("out", record.value, partition=tp.partition)
                    await anyio.sleep(0.02)  # "transform": faults land inside transactions
                    offsets = {tp: records[-1].offset + 1 for tp, records in got.items()}
                    await producer.send_offsets_to_transaction(offsets, group)
            except TransactionOutcomeUnknownError:
                # Re-initialise first (this settles the old transaction on the
                # coordinator), then read the committed offsets: whichever way it went.
                await producer.abort_transaction()
                await consumer.seek_to_committed()
            except TransactionAbortableError:
                await consumer.seek_to_committed()  # aborted: copy the chunk again


def _committed(cluster: MockCluster, group: str, partitions: int) -> int:
    found = cluster.state.group(group, create=False)
    if found is None:
        return 0
    return (
        sum(o.offset for (topic, _), o in found.offsets.items() if topic == "in")
        if len(found.offsets) == partitions
        else 0
    )


@pytest.mark.parametrize("partitions", [1, 3])
async def test_t1_copy_under_coordinator_moves_outages_and_cancellation(partitions: int) -> None:
    total = 3000
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("in", partitions=partitions)
        cluster.create_topic("out", partitions=partitions)
        bootstrap = cluster.bootstrap_servers
        sent: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        async with make_producer(bootstrap) as source:
            for i in range(total):
                value = b"%06d" % i
                sent[i % partitions].append(value)
                await source.send("in", value, partition=i % partitions)
        restarts = moves = outages = 0
        with anyio.fail_after(90):
            # At least three rounds, so each fault kind lands even on a fast run.
            while _committed(cluster, "copy", partitions) < total or restarts < 3:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_copier, bootstrap, partitions, "copy")
                    await anyio.sleep(0.25)
                    coordinator = cluster.txn_coordinator("copier")
                    if restarts % 3 == 0:  # the coordinator moves: NOT_COORDINATOR, re-find
                        cluster.move_txn_coordinator("copier", coordinator % 3 + 1)
                        cluster.fail_next(
                            ApiKey.ADD_PARTITIONS_TO_TXN, Err.COORDINATOR_LOAD_IN_PROGRESS
                        )
                        moves += 1
                    elif restarts % 3 == 1:  # its broker is down mid-transaction
                        await cluster.broker_down(coordinator)
                        await anyio.sleep(0.3)
                        await cluster.broker_up(coordinator)
                        outages += 1
                    await anyio.sleep(0.25)
                    tg.cancel_scope.cancel()  # the copier is killed mid-flight
                restarts += 1
        assert restarts >= 3 and moves and outages
        out = await read_all(bootstrap, "out", partitions)
        for p in range(partitions):
            assert out[p] == sent[p], f"partition {p}: output differs from input"
        # The faults bit: transactions were aborted (their records are in the log, hidden
        # from read_committed) and the coordinator was looked up again within a run.
        raw = await read_all(bootstrap, "out", partitions, isolation="read_uncommitted")
        assert sum(map(len, raw.values())) > total
        finds = [r for r in cluster.requests_of(ApiKey.FIND_COORDINATOR)
                 if r.request.key_type == 1]  # fmt: skip
        assert len(finds) > restarts
        assert not cluster.errors


# -- T2 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["unknown_server_error", "answer_lost", "timeout"])
@pytest.mark.parametrize("reinit_by", ["begin", "abort"])
async def test_t2_end_txn_with_unknown_outcome_forces_reinitialisation(
    fault: str, reinit_by: str
) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers, request_timeout_ms=500) as producer:
            await producer.begin_transaction()
            await producer.send_and_wait("t", b"first")
            assert producer._txn is not None
            current = (producer._txn.producer_id, producer._txn.producer_epoch)
            if fault == "unknown_server_error":  # answered before the broker processed it
                cluster.fail_next(ApiKey.END_TXN, Err.UNKNOWN_SERVER_ERROR)
            elif fault == "answer_lost":  # committed, but the answer never arrives
                cluster.drop_next(ApiKey.END_TXN, DropWhen.AFTER)
            else:  # applied, answered after the client gave up waiting
                cluster.delay_next(ApiKey.END_TXN, 2.0)
            with pytest.raises(TransactionOutcomeUnknownError):
                await producer.commit_transaction()
            with pytest.raises(TransactionOutcomeUnknownError):
                await producer.commit_transaction()  # retrying the commit is refused
            if reinit_by == "abort":
                await producer.abort_transaction()
            await producer.begin_transaction()
            await producer.send_and_wait("t", b"second")
            await producer.commit_transaction()
        inits = cluster.requests_of(ApiKey.INIT_PRODUCER_ID)
        assert len(inits) == 2
        bump = inits[1].request
        assert (bump.producer_id, bump.producer_epoch) == current  # KIP-360 epoch bump
        got = (await read_all(cluster.bootstrap_servers, "t"))[0]
        if fault != "unknown_server_error":
            assert got == [b"first", b"second"]  # it did commit; nothing joined silently
        else:
            assert got == [b"second"]


# -- T3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [Err.PRODUCER_FENCED, Err.INVALID_PRODUCER_EPOCH])
@pytest.mark.parametrize("where", ["init", "add_partitions", "end_txn", "produce"])
async def test_t3_fencing_is_fatal_and_nothing_of_the_fenced_instance_commits(
    code: int, where: str
) -> None:
    api = {
        "init": ApiKey.INIT_PRODUCER_ID,
        "add_partitions": ApiKey.ADD_PARTITIONS_TO_TXN,
        "end_txn": ApiKey.END_TXN,
        "produce": ApiKey.PRODUCE,
    }[where]
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        bootstrap = cluster.bootstrap_servers
        if where == "init":
            cluster.fail_next(api, code)
            with pytest.raises(ProducerFencedError):
                async with txn_producer(bootstrap):
                    pass
        else:
            async with txn_producer(bootstrap) as producer:
                await producer.begin_transaction()
                cluster.fail_next(api, code)
                futures = [await producer.send("t", b"fenced%d" % i) for i in range(3)]
                with pytest.raises(ProducerFencedError):
                    await producer.commit_transaction()
                for call in (producer.begin_transaction, producer.commit_transaction,
                             producer.abort_transaction):  # fmt: skip
                    with pytest.raises(ProducerFencedError):
                        await call()
                with pytest.raises(ProducerFencedError):
                    await producer.send("t", b"later")
                if where != "end_txn":
                    assert all(f.done() and f.exception() is not None for f in futures)
        async with txn_producer(bootstrap) as successor:  # takes over the id
            async with successor.transaction():
                await successor.send("t", b"successor")
        assert (await read_all(bootstrap, "t"))[0] == [b"successor"]


async def test_t3_second_instance_fences_the_first() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        bootstrap = cluster.bootstrap_servers
        async with txn_producer(bootstrap) as first:
            await first.begin_transaction()
            await first.send_and_wait("t", b"first")
            async with txn_producer(bootstrap) as second:
                async with second.transaction():
                    await second.send("t", b"second")
                with pytest.raises(ProducerFencedError):
                    await first.commit_transaction()  # the zombie learns of the fence
                with pytest.raises(ProducerFencedError):
                    async with first.transaction():  # and is refused from then on
                        pass
                with pytest.raises(ProducerFencedError):
                    await first.send("t", b"again")
        assert (await read_all(bootstrap, "t"))[0] == [b"second"]


# -- T4 -------------------------------------------------------------------------------------


async def _next_transaction_commits(producer: AsyncProducer, value: bytes) -> None:
    await producer.begin_transaction()
    await producer.send_and_wait("t", value)
    await producer.commit_transaction()


@pytest.mark.parametrize("code", [Err.UNKNOWN_PRODUCER_ID, Err.OUT_OF_ORDER_SEQUENCE_NUMBER])
async def test_t4_failed_record_makes_commit_abortable(code: int) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with txn_producer(cluster.bootstrap_servers) as producer:
            await producer.begin_transaction()
            await producer.send_and_wait("t", b"ok")
            cluster.fail_next(ApiKey.PRODUCE, code)
            failing = await producer.send("t", b"fails")
            with pytest.raises(TransactionAbortableError) as info:
                await producer.commit_transaction()
            assert info.value.error_code == code
            await producer.abort_transaction()
            assert failing.done() and failing.exception() is not None
            await _next_transaction_commits(producer, b"next")
        inits = [r.request for r in cluster.requests_of(ApiKey.INIT_PRODUCER_ID)]
        assert len(inits) == 2 and inits[1].producer_id >= 0  # the abort bumped the epoch
        assert not [r for r in cluster.requests_of(ApiKey.END_TXN) if not r.request.committed]
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"next"]


async def test_t4_record_expired_before_sending_makes_commit_abortable() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        settings = dict(request_timeout_ms=300, delivery_timeout_ms=400)
        async with txn_producer(cluster.bootstrap_servers, **settings) as producer:
            await producer.begin_transaction()
            # AddPartitionsToTxn goes unanswered (each attempt times out), so the record
            # waits for it until its delivery timeout.
            cluster.delay_next(ApiKey.ADD_PARTITIONS_TO_TXN, 1.0, count=3)
            expired = await producer.send("t", b"expires")
            with pytest.raises(TransactionAbortableError):
                await producer.commit_transaction()
            assert expired.done() and expired.exception() is not None
            assert not cluster.requests_of(ApiKey.PRODUCE)  # it was never sent
            await producer.abort_transaction()
            await _next_transaction_commits(producer, b"next")
        assert (await read_all(cluster.bootstrap_servers, "t"))[0] == [b"next"]
