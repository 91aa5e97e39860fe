"""AsyncGroupTransactSession on the MockCluster (reliability T1 with the helper).

The big test copies a few thousand records while the copier is cancelled and restarted,
a second member joins mid-stream and the transaction coordinator moves; the targeted
tests pin one rule each: a rebalance waits for the transaction in the poll-produce-commit
loop, a rebalance that completes inside a transaction aborts and rewinds it, abortable
errors and unknown commit outcomes abort and rewind, fencing is fatal, cancellation
aborts (or waits for a commit already under way). Output is always checked with a
read_committed consumer of ours.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from kclient import AsyncGroupTransactSession, ConsumerRecord, TopicPartition
from kclient.config import ConsumerConfig, ProducerConfig
from kclient.eos import Batches, check_configs
from kclient.errors import ConfigError, IllegalStateError, ProducerFencedError
from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from kclient.testing.mock.codes import Err
from kclient.testing.mock.faults import DropWhen
from kclient.testing.mock.groups import GroupState
from protocol.messages import ApiKey
from protocol.records.batch import build_batch

from ._helpers import (
    CopierStats,
    assert_exactly_once,
    copy_loop,
    read_values,
    session_consumer,
    session_producer,
)

pytestmark = pytest.mark.anyio

TP0 = TopicPartition("in", 0)


@asynccontextmanager
async def copy_cluster(
    partitions: int = 1, *, brokers: int = 1, topics: Sequence[str] = ("in", "out")
) -> AsyncIterator[MockCluster]:
    """A MockCluster with ``topics`` (the copier's input and output) created."""
    async with MockCluster(brokers=brokers) as cluster:
        for topic in topics:
            cluster.create_topic(topic, partitions=partitions)
        yield cluster


@asynccontextmanager
async def open_session(
    bootstrap: str,
    transactional_id: str,
    group: str = "g",
    *,
    producer_settings: Mapping[str, Any] | None = None,
    **consumer_settings: Any,
) -> AsyncIterator[AsyncGroupTransactSession[Any, Any]]:
    """A copier: a session over a transactional producer and a read_committed group
    consumer subscribed to "in" (entered in that order, left in reverse)."""
    async with session_producer(
        bootstrap, transactional_id, **dict(producer_settings or {})
    ) as producer, session_consumer(
        bootstrap, group, **consumer_settings
    ) as consumer, AsyncGroupTransactSession(consumer, producer) as session:  # fmt: skip
        consumer.subscribe(["in"])
        yield session


def fill(
    cluster: MockCluster, topic: str, partitions: int, total: int, *, start: int = 0
) -> dict[int, list[bytes]]:
    """Write records ``start`` .. ``total - 1`` round-robin straight into the mock's logs
    (batches of 50); returns the values written per partition."""
    sent: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for i in range(start, total):
        sent[i % partitions].append(b"%06d" % i)
    for p, values in sent.items():
        part = cluster.state.partition(topic, p)
        assert part is not None
        for first in range(0, len(values), 50):
            data = build_batch([(1_700_000_000_000, None, v) for v in values[first : first + 50]])
            part.log.append([(parse_header(data), data)])
    return sent


def committed_total(cluster: MockCluster, group: str, topic: str = "in") -> int:
    found = cluster.state.group(group, create=False)
    if found is None:
        return 0
    return sum(o.offset for (t, _), o in found.offsets.items() if t == topic)


async def copy_to(
    session: AsyncGroupTransactSession[Any, Any], batches: Batches[Any, Any], target: str = "out"
) -> None:
    for tp, records in batches.items():
        for r in records:
            await session.producer.send(target, r.value, partition=tp.partition)


async def poll_some(
    session: AsyncGroupTransactSession[Any, Any], timeout: float = 10
) -> Batches[Any, Any]:
    with anyio.fail_after(timeout):
        while True:
            got = await session.getmany(timeout_ms=100, max_records=20)
            if got:
                return got


def _group_state(cluster: MockCluster, group: str) -> GroupState | None:
    found = cluster.state.group(group, create=False)
    return None if found is None else found.state


def first_offsets(batches: Batches[Any, Any]) -> dict[TopicPartition, int]:
    return {tp: rs[0].offset for tp, rs in batches.items()}


# -- T1 with the helper ----------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [1, 3])
async def test_copy_exactly_once_under_restarts_rebalances_and_coordinator_moves(
    partitions: int,
) -> None:
    total, chunk = 3000, 500
    async with copy_cluster(partitions, brokers=3) as cluster:
        sent: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        bootstrap = cluster.bootstrap_servers
        a, b = CopierStats(), CopierStats()
        rounds = moves = written = 0

        def feed(written: int) -> int:
            new = fill(cluster, "in", partitions, min(total, written + chunk), start=written)
            for p, values in new.items():
                sent[p] += values
            return min(total, written + chunk)

        async def join_later() -> None:
            await anyio.sleep(0.05)  # A is mid-stream when B's JoinGroup arrives
            await copy_loop(bootstrap, "copy", "copier-b", b)

        with anyio.fail_after(60):
            while committed_total(cluster, "copy") < total:
                # The input arrives a chunk per round, so every round has work to cut
                # short and the number of restarts does not depend on the copying speed.
                if rounds != 1:
                    written = feed(written)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(copy_loop, bootstrap, "copy", "copier-a", a)
                    if rounds == 1:  # a second member joins (and leaves at the round's end)
                        tg.start_soon(join_later)
                    if rounds % 2 == 0:  # the transaction coordinator moves
                        old = cluster.txn_coordinator("copier-a")
                        cluster.move_txn_coordinator("copier-a", old % 3 + 1)
                        cluster.fail_next(ApiKey.END_TXN, Err.NOT_COORDINATOR)
                        cluster.fail_next(ApiKey.ADD_PARTITIONS_TO_TXN, Err.NOT_COORDINATOR)
                        moves += 1
                    if rounds == 1:  # wait for the rebalance to complete, then copy on
                        group = cluster.state.group("copy")
                        assert group is not None
                        while len(group.members) < 2 or group.state is not GroupState.STABLE:
                            await anyio.sleep(0.01)
                        written = feed(written)  # work for both members
                    start = committed_total(cluster, "copy")
                    while committed_total(cluster, "copy") < min(written, start + 100):
                        await anyio.sleep(0.005)
                    await anyio.sleep(0.003 * (rounds % 4))  # somewhere mid-transaction
                    tg.cancel_scope.cancel()  # the copiers are killed
                rounds += 1
        assert rounds >= 6 and moves >= 3
        assert a.committed and (b.committed or partitions == 1)  # both members copied
        assert_exactly_once(await read_values(bootstrap, "out", partitions), sent)
        assert cluster.requests_of(ApiKey.TXN_OFFSET_COMMIT)
        assert not cluster.errors


# -- rebalances ------------------------------------------------------------------------------


async def test_rebalance_waits_for_the_transaction_in_the_poll_produce_commit_loop() -> None:
    """Member B joins while A holds an open transaction: A's revocation waits for A's
    next poll, so A's commit still carries a valid generation and succeeds; B then
    starts exactly at A's committed offset."""
    async with copy_cluster() as cluster:
        sent = fill(cluster, "in", 1, 200)
        bootstrap = cluster.bootstrap_servers
        async with open_session(bootstrap, "a") as session:
            batch = await poll_some(session)
            await copy_to(session, batch)
            b_stats = CopierStats()
            async with anyio.create_task_group() as tg:
                tg.start_soon(copy_loop, bootstrap, "g", "b", b_stats)
                with anyio.fail_after(10):  # B's join puts the group into a rebalance
                    while _group_state(cluster, "g") is not GroupState.PREPARING_REBALANCE:
                        await anyio.sleep(0.01)
                assert await session.commit() is True
                # A's next polls run the revocation, rejoin, and keep copying what the
                # new assignment gives it (the only partition may go either way).
                with anyio.fail_after(20):
                    while committed_total(cluster, "g") < 200:
                        got = await session.getmany(timeout_ms=50)
                        await copy_to(session, got)
                        assert await session.commit() is True
                tg.cancel_scope.cancel()
        assert session.aborted_transactions == 0
        assert_exactly_once(await read_values(bootstrap, "out", 1), sent)


@pytest.mark.parametrize("b_reads", ["in", "other"])
async def test_rebalance_completing_inside_a_transaction_aborts_and_rewinds(b_reads: str) -> None:
    """A transaction that spans polls sees a rebalance complete in between: commit()
    returns False, nothing of it is visible, and the input is handed out again. When B
    reads "in" too, A loses a partition; when B reads another topic, A gets its own
    partitions back (eager: revoked and re-assigned) and re-reads them from the
    committed offset inside the same transaction, which must not commit either."""
    async with copy_cluster(2, topics=("in", "out", "other", "other-out")) as cluster:
        sent = fill(cluster, "in", 2, 400)
        fill(cluster, "other", 2, 10)
        bootstrap = cluster.bootstrap_servers
        async with open_session(bootstrap, "a", partition_assignment_strategy=["range"]) as session:
            consumer = session.consumer
            first = await poll_some(session)
            await copy_to(session, first)
            # A stays the group leader across the rebalance and must know "other" to
            # assign it to B: the consumer's leader does not yet fetch metadata for the
            # other members' topics by itself (reported to the consumer work).
            with anyio.fail_after(5):
                while consumer.partitions_for_topic("other") is None:
                    await anyio.sleep(0.01)
            generation = consumer.group_metadata().generation_id
            b_stats = CopierStats()
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(
                        copy_loop, source=b_reads, target=f"{b_reads}-out".replace("in-", "")
                    ),
                    bootstrap, "g", "b", b_stats,
                )  # fmt: skip
                # Keep polling inside the same transaction until the rebalance is done.
                with anyio.fail_after(15):
                    while (
                        consumer.group_metadata().generation_id in (generation, -1)
                        or not consumer.assignment()  # joined, and synced too
                    ):
                        await copy_to(session, await session.getmany(timeout_ms=50))
                if b_reads == "other":
                    assert consumer.assignment() == set(first_offsets(first)) | {
                        TopicPartition("in", p) for p in range(2)
                    }
                assert await session.commit() is False
                assert session.aborted_transactions == 1
                assert session.in_transaction is False
                # Rewound: what A still owns is handed out again from the committed
                # offset (nothing was committed yet, so from the first record).
                again = await poll_some(session)
                assert set(again) <= consumer.assignment()
                for tp, offset in first_offsets(again).items():
                    assert offset == 0, f"{tp} not rewound"
                await copy_to(session, again)
                assert await session.commit() is True
                with anyio.fail_after(15):
                    while committed_total(cluster, "g") < 400 or not b_stats.batches:
                        got = await session.getmany(timeout_ms=50)
                        await copy_to(session, got)
                        await session.commit()
                tg.cancel_scope.cancel()
        assert_exactly_once(await read_values(bootstrap, "out", 2), sent)


# -- errors ----------------------------------------------------------------------------------


async def _copy_rest(
    session: AsyncGroupTransactSession[Any, Any], cluster: MockCluster, total: int
) -> None:
    with anyio.fail_after(20):
        while committed_total(cluster, "g") < total:
            got = await session.getmany(timeout_ms=50)
            await copy_to(session, got)
            await session.commit()


@pytest.mark.parametrize(
    "fault",
    [
        "txn_offset_commit_illegal_generation",
        "produce_failed",
        "end_txn_unknown",
        "end_txn_answer_lost",
    ],
)
async def test_abortable_and_unknown_outcomes_abort_rewind_and_go_on(fault: str) -> None:
    async with copy_cluster() as cluster:
        sent = fill(cluster, "in", 1, 300)
        bootstrap = cluster.bootstrap_servers
        async with open_session(
            bootstrap, "a", producer_settings={"delivery_timeout_ms": 5000}
        ) as session:
            batch = await poll_some(session)
            start, end = batch[TP0][0].offset, batch[TP0][-1].offset + 1
            if fault == "txn_offset_commit_illegal_generation":
                cluster.fail_next(ApiKey.TXN_OFFSET_COMMIT, Err.ILLEGAL_GENERATION)
            elif fault == "produce_failed":
                cluster.fail_next(ApiKey.PRODUCE, Err.INVALID_RECORD)
            elif fault == "end_txn_unknown":
                cluster.fail_next(ApiKey.END_TXN, Err.UNKNOWN_SERVER_ERROR)
            else:
                cluster.drop_next(ApiKey.END_TXN, DropWhen.AFTER)  # committed, answer lost
            await copy_to(session, batch)
            assert await session.commit() is False
            assert session.aborted_transactions == 1
            again = await poll_some(session)
            # The rewind goes to what the group really committed: the batch again, or
            # (the commit did land) the records after it.
            expected = end if fault == "end_txn_answer_lost" else start
            assert again[TP0][0].offset == expected
            await copy_to(session, again)
            assert await session.commit() is True
            await _copy_rest(session, cluster, 300)
        assert_exactly_once(await read_values(bootstrap, "out", 1), sent)


async def test_fencing_is_fatal_and_closes_the_session() -> None:
    async with copy_cluster() as cluster:
        sent = fill(cluster, "in", 1, 100)
        bootstrap = cluster.bootstrap_servers
        async with open_session(bootstrap, "same") as session:
            batch = await poll_some(session)
            await copy_to(session, batch)
            async with session_producer(bootstrap, "same"):  # a newer instance fences us
                pass
            with pytest.raises(ProducerFencedError):
                await session.commit()
            with pytest.raises(ProducerFencedError):
                await session.getmany()
            with pytest.raises(ProducerFencedError):
                await session.commit()
        assert (await read_values(bootstrap, "out", 1))[0] == []
        assert committed_total(cluster, "g") == 0
        # A new instance resumes from the last committed transaction (none: the start).
        async with open_session(bootstrap, "same") as session:
            await _copy_rest(session, cluster, 100)
        assert_exactly_once(await read_values(bootstrap, "out", 1), sent)


# -- cancellation ----------------------------------------------------------------------------


async def test_cancellation_mid_transaction_aborts_it() -> None:
    async with copy_cluster() as cluster:
        fill(cluster, "in", 1, 100)
        bootstrap = cluster.bootstrap_servers
        produced = anyio.Event()

        async def copier() -> None:
            async with open_session(bootstrap, "a") as session:
                batch = await poll_some(session)
                await copy_to(session, batch)
                await session.producer.flush()  # the records are in the log, uncommitted
                produced.set()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(copier)
            with anyio.fail_after(10):
                await produced.wait()
            tg.cancel_scope.cancel()
        uncommitted = await read_values(bootstrap, "out", 1, isolation="read_uncommitted")
        assert uncommitted[0], "the aborted records are in the log"
        assert (await read_values(bootstrap, "out", 1))[0] == []
        # Aborted, not left open: the last stable offset is past the abort marker (an
        # open transaction would hold it at its first record until it timed out).
        log_end = cluster.state.partition("out", 0).log.log_end_offset  # type: ignore[union-attr]
        async with session_consumer(bootstrap, "reader") as reader:
            lso = await reader.end_offsets([TopicPartition("out", 0)])
        assert lso[TopicPartition("out", 0)] == log_end == len(uncommitted[0]) + 1
        assert committed_total(cluster, "g") == 0


async def test_cancellation_during_commit_waits_for_the_commit() -> None:
    async with copy_cluster() as cluster:
        sent = fill(cluster, "in", 1, 100)
        bootstrap = cluster.bootstrap_servers
        committing = anyio.Event()
        handed_out: list[ConsumerRecord[Any, Any]] = []

        async def copier() -> None:
            async with open_session(bootstrap, "a") as session:
                batch = await poll_some(session)
                handed_out.extend(batch[TP0])
                await copy_to(session, batch)
                cluster.delay_next(ApiKey.END_TXN, 0.5)
                committing.set()
                await session.commit()

        async with anyio.create_task_group() as tg:
            tg.start_soon(copier)
            with anyio.fail_after(10):
                await committing.wait()
            await anyio.sleep(0.2)  # EndTxn(commit) is on the wire
            tg.cancel_scope.cancel()
        assert committed_total(cluster, "g") == handed_out[-1].offset + 1
        out = (await read_values(bootstrap, "out", 1))[0]
        assert out == sent[0][: len(handed_out)]


# -- API checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumer", "producer", "key"),
    [
        (dict(), dict(transactional_id="t"), "group_id"),
        (
            dict(group_id="g", isolation_level="read_committed"),
            dict(transactional_id="t"),
            "enable_auto_commit",
        ),
        (
            dict(group_id="g", enable_auto_commit=False),
            dict(transactional_id="t"),
            "isolation_level",
        ),
        (
            dict(group_id="g", enable_auto_commit=False, isolation_level="read_committed"),
            dict(),
            "transactional_id",
        ),
    ],
)
def test_configs_that_cannot_give_exactly_once_are_refused(
    consumer: dict[str, Any], producer: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_configs(
            ConsumerConfig(bootstrap_servers="127.0.0.1:1", **consumer),
            ProducerConfig(bootstrap_servers="127.0.0.1:1", **producer),
        )
    assert info.value.key == key


async def test_the_session_must_be_entered_and_takes_async_clients() -> None:
    consumer = session_consumer("127.0.0.1:1", "g")
    producer = session_producer("127.0.0.1:1", "t")
    session = AsyncGroupTransactSession(consumer, producer)
    with pytest.raises(IllegalStateError, match="async with"):
        await session.getmany()
    with pytest.raises(TypeError):
        AsyncGroupTransactSession(producer, producer)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        AsyncGroupTransactSession(
            session_consumer("127.0.0.1:1", "g", enable_auto_commit=True), producer
        )
