"""The sync GroupTransactSession over the sync Consumer and Producer (mock cluster run
on its own loop thread): the blocking loop, ``run`` with a transform that uses the sync
producer from a worker thread, an abort, and parity with the async session."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from kclient.eos import AsyncGroupTransactSession, Batches
from kclient.sync import Consumer, GroupTransactSession, Producer
from kclient.testing.mock import MockCluster

from ._helpers import FAST_CLIENT, FAST_GROUP, assert_exactly_once, read_values
from .test_session_mock import committed_total, fill


@pytest.fixture
def mock() -> Iterator[tuple[MockCluster, BlockingPortal]]:
    with start_blocking_portal() as portal:
        cluster = MockCluster(brokers=1)
        with portal.wrap_async_context_manager(cluster):
            cluster.create_topic("in", partitions=2)
            cluster.create_topic("out", partitions=2)
            yield cluster, portal


def clients(bootstrap: str, txn_id: str) -> tuple[Consumer[Any, Any], Producer]:
    consumer: Consumer[Any, Any] = Consumer(
        bootstrap_servers=bootstrap,
        group_id="g",
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_CLIENT,
        **FAST_GROUP,
    )
    producer = Producer(
        bootstrap_servers=bootstrap,
        transactional_id=txn_id,
        linger_ms=2,
        max_block_ms=10_000,
        **FAST_CLIENT,
    )
    return consumer, producer


def test_blocking_loop_with_an_abort_copies_exactly_once(
    mock: tuple[MockCluster, BlockingPortal],
) -> None:
    cluster, portal = mock
    sent = portal.call(fill, cluster, "in", 2, 400)
    consumer, producer = clients(cluster.bootstrap_servers, "sync-a")
    with consumer, producer, GroupTransactSession(consumer, producer) as session:
        consumer.subscribe(["in"])
        aborted_once = False
        while portal.call(committed_total, cluster, "g") < 400:
            batches = session.getmany(timeout_ms=100, max_records=50)
            assert session.in_transaction
            for tp, records in batches.items():
                for r in records:
                    producer.send("out", r.value, partition=tp.partition)
            if batches and not aborted_once:  # the first batch is thrown away once
                producer.flush()
                session.abort()
                aborted_once = True
                continue
            assert session.commit() is True
        assert session.aborted_transactions == 1
        assert session.committed_transactions >= 2
    out = portal.call(read_values, cluster.bootstrap_servers, "out", 2)
    assert_exactly_once(out, sent)


def test_run_calls_the_transform_in_a_worker_thread(
    mock: tuple[MockCluster, BlockingPortal],
) -> None:
    cluster, portal = mock
    sent = portal.call(fill, cluster, "in", 2, 300)
    consumer, producer = clients(cluster.bootstrap_servers, "sync-b")
    stop = threading.Event()
    threads: set[str] = set()

    def transform(batches: Batches[Any, Any]) -> None:
        threads.add(threading.current_thread().name)
        for tp, records in batches.items():
            for r in records:
                producer.send("out", r.value, partition=tp.partition)  # the sync producer
        if (
            sum(len(v) for v in batches.values())
            and portal.call(committed_total, cluster, "g") + sum(len(v) for v in batches.values())
            >= 300
        ):
            stop.set()

    with consumer, producer, GroupTransactSession(consumer, producer) as session:
        consumer.subscribe(["in"])
        session.run(transform, timeout_ms=100, max_records=40, stop=stop)
        assert not session.in_transaction  # the last batch was committed before stopping
    assert "kclient-portal" not in threads
    assert portal.call(committed_total, cluster, "g") == 300
    assert_exactly_once(portal.call(read_values, cluster.bootstrap_servers, "out", 2), sent)


def test_the_sync_session_forwards_every_public_method() -> None:
    def public(cls: type[Any]) -> set[str]:
        return {n for n, v in inspect.getmembers(cls) if not n.startswith("_")}

    # consumer/producer are the async twins' attributes; the sync user holds the clients.
    assert public(GroupTransactSession) >= public(AsyncGroupTransactSession) - {
        "consumer",
        "producer",
    }
    with pytest.raises(TypeError):
        GroupTransactSession(object(), object())  # type: ignore[arg-type]
