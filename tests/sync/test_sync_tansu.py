"""The sync clients against the real Tansu broker (records produced by confluent-kafka):
a plain script, several threads, a caller that runs its own event loop (Jupyter), user
callbacks on the portal thread, closing from another thread, and Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from itertools import islice
from typing import Any

import pytest
import trio
from confluent_kafka import Producer as CProducer

from kclient import NewTopic, OffsetAndMetadata, RecordMetadata, TopicPartition
from kclient.errors import UnknownTopicOrPartitionError
from kclient.sync import Admin, ClientClosedError, Consumer, Producer, SyncInEventLoopError
from kclient.sync._portal import portal_running

from .test_portal import wait_until_blocked

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = dict(request_timeout_ms=5000, default_api_timeout_ms=8000)


def make_topic(bootstrap: str, partitions: int, count: int) -> str:
    """A fresh topic; record i goes to partition i % partitions with key ``k{i}``."""
    topic = f"sync-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap_servers=bootstrap, **FAST) as admin:
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].raise_on_error()
    if not count:
        return topic
    producer = CProducer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(
            topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % partitions
        )
    assert producer.flush(10) == 0
    return topic


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def consumer(bootstrap: str, **kw: Any) -> Consumer[Any, Any]:
    kw.setdefault("auto_offset_reset", "earliest")
    return Consumer(bootstrap_servers=bootstrap, **FAST, **kw)


def test_admin_creates_describes_deletes_topics(tansu_bootstrap: str) -> None:
    a, b = f"sync-a-{uuid.uuid4().hex[:8]}", f"sync-b-{uuid.uuid4().hex[:8]}"
    with Admin(bootstrap_servers=tansu_bootstrap, **FAST) as admin:
        created = admin.create_topics([NewTopic(a, 3, 1), NewTopic(b, 1, 1)])
        assert all(r.ok for r in created.values())
        described = admin.describe_topics([a, b])
        assert len(described[a].partitions) == 3 and len(described[b].partitions) == 1
        assert {a, b} <= {t.name for t in admin.list_topics()}
        deleted = admin.delete_topics([a, b])
        assert all(r.ok for r in deleted.values())
        again = admin.delete_topics([a])
        assert isinstance(again[a].error, UnknownTopicOrPartitionError)


def test_consumer_assign_and_iterate(tansu_bootstrap: str) -> None:
    topic = make_topic(tansu_bootstrap, 2, 100)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with consumer(tansu_bootstrap, value_deserializer=lambda v: v.decode()) as c:
        c.assign([p0, p1])
        assert c.assignment() == {p0, p1}
        got = []
        for record in c:
            got.append(record)
            if len(got) == 100:
                break
        assert c.getmany(timeout_ms=200) == {}
        assert c.position(p0) == 50 and c.position(p1) == 50
    by_index = {int(r.key[1:]): r for r in got}
    assert sorted(by_index) == list(range(100))
    for i, r in by_index.items():
        assert (r.partition, r.offset, r.value) == (i % 2, i // 2, f"v{i}")


def test_several_threads(tansu_bootstrap: str) -> None:
    """Two threads with a Consumer each, and one Admin shared by four threads."""
    topic = make_topic(tansu_bootstrap, 2, 60)
    offsets: dict[int, list[int]] = {}

    def consume(partition: int) -> None:
        with consumer(tansu_bootstrap) as c:
            c.assign([TopicPartition(topic, partition)])
            seen = offsets.setdefault(partition, [])
            for record in c:
                seen.append(record.offset)
                if len(seen) == 30:
                    break

    described: list[int] = []
    with Admin(bootstrap_servers=tansu_bootstrap, **FAST) as admin:

        def describe() -> None:
            for _ in range(5):
                described.append(len(admin.describe_topics([topic])[topic].partitions))

        threads = [threading.Thread(target=consume, args=(p,)) for p in (0, 1)]
        threads += [threading.Thread(target=describe) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
            assert not t.is_alive()
    assert offsets == {0: list(range(30)), 1: list(range(30))}
    assert described == [2] * 20


def test_inside_a_running_event_loop_of_the_caller(tansu_bootstrap: str) -> None:
    """A Jupyter cell runs in a thread whose asyncio loop is running; the sync API,
    called directly from it, still works (trio too)."""
    topic = make_topic(tansu_bootstrap, 1, 5)

    async def cell() -> list[int]:
        with Admin(bootstrap_servers=tansu_bootstrap, **FAST) as admin:
            assert topic in admin.describe_topics([topic])
        with consumer(tansu_bootstrap) as c:
            c.assign([TopicPartition(topic, 0)])
            return [r.offset for r in islice(c, 5)]

    assert asyncio.run(cell()) == [0, 1, 2, 3, 4]
    assert trio.run(cell) == [0, 1, 2, 3, 4]


def test_user_callbacks_run_on_the_portal_thread_and_cannot_call_back(
    tansu_bootstrap: str,
) -> None:
    """A deserializer and a rebalance listener run on the loop thread; calling the sync
    client from there raises the clear error instead of deadlocking."""
    topic = make_topic(tansu_bootstrap, 1, 3)
    seen: list[tuple[str, BaseException | None]] = []
    holder: list[Consumer[bytes, str]] = []

    def deserialize(value: bytes | None) -> str:
        error: BaseException | None = None
        try:
            holder[0].assignment()
        except BaseException as exc:
            error = exc
        seen.append((threading.current_thread().name, error))
        return (value or b"").decode()

    class Listener:
        def on_partitions_assigned(self, parts: frozenset[TopicPartition]) -> None:
            deserialize(b"")

        def on_partitions_revoked(self, parts: frozenset[TopicPartition]) -> None:
            pass

    group = f"g-{uuid.uuid4().hex[:8]}"
    with consumer(
        tansu_bootstrap, value_deserializer=deserialize, group_id=group,
        session_timeout_ms=4000, heartbeat_interval_ms=300,
    ) as c:  # fmt: skip
        holder.append(c)
        c.subscribe([topic], listener=Listener())
        assert [r.value for r in islice(c, 3)] == ["v0", "v1", "v2"]
    assert len(seen) == 4  # one assignment, three records
    for thread_name, error in seen:
        assert thread_name == "kclient-portal"
        assert isinstance(error, SyncInEventLoopError)
        assert "sync client used inside its event loop" in str(error)
        assert "use AsyncConsumer" in str(error)


def test_close_from_another_thread_stops_iteration_and_frees_the_thread(
    tansu_bootstrap: str,
) -> None:
    topic = make_topic(tansu_bootstrap, 1, 3)
    before = threading.active_count()
    admin = Admin(bootstrap_servers=tansu_bootstrap, **FAST)
    c = consumer(tansu_bootstrap)
    c.assign([TopicPartition(topic, 0)])
    seen: list[int] = []

    def read() -> None:
        for record in c:
            seen.append(record.offset)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: len(seen) == 3)
    wait_until_blocked(reader)  # waiting for a fourth record
    started = time.monotonic()
    c.close()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 3
    assert seen == [0, 1, 2]
    c.close()  # idempotent
    with pytest.raises(ClientClosedError):
        c.assignment()
    assert portal_running()  # the admin still holds the portal
    admin.close()
    admin.close()
    assert not portal_running() and threading.active_count() == before


def test_ctrl_c_closes_cleanly_and_commits_only_what_was_handed_out(
    tansu_bootstrap: str,
) -> None:
    """Break after 10 of 20 records: the close commits 10, not the 20 fetched. Then a
    second member reads the rest and is interrupted (SIGINT) while waiting for more:
    ``with`` closes it, which commits 20 and leaves the group."""
    topic = make_topic(tansu_bootstrap, 1, 20)
    tp = TopicPartition(topic, 0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    settings: dict[str, Any] = dict(
        group_id=group, session_timeout_ms=4000, heartbeat_interval_ms=300
    )
    with consumer(tansu_bootstrap, **settings) as c:
        c.subscribe([topic])
        assert [r.offset for r in islice(c, 10)] == list(range(10))
    with Admin(bootstrap_servers=tansu_bootstrap, **FAST) as admin:
        assert admin.list_consumer_group_offsets(group, [tp])[tp].committed == OffsetAndMetadata(10)

    main = threading.main_thread()
    assert threading.current_thread() is main  # SIGINT is delivered to the main thread
    seen: list[int] = []

    def interrupt() -> None:
        wait_for(lambda: len(seen) == 10)
        wait_until_blocked()  # waiting for an eleventh record
        signal.pthread_kill(main.ident or 0, signal.SIGINT)

    sender = threading.Thread(target=interrupt)
    sender.start()
    with pytest.raises(KeyboardInterrupt), consumer(tansu_bootstrap, **settings) as c:
        c.subscribe([topic])
        for record in c:
            seen.append(record.offset)
    sender.join(5)
    assert seen == list(range(10, 20))
    with Admin(bootstrap_servers=tansu_bootstrap, **FAST) as admin:
        assert admin.list_consumer_group_offsets(group, [tp])[tp].committed == OffsetAndMetadata(20)
        assert admin.describe_consumer_groups([group])[group].members == ()
    assert not portal_running()


def test_producer_sends_and_reports_deliveries(tansu_bootstrap: str) -> None:
    topic = make_topic(tansu_bootstrap, 2, 0)
    callbacks: list[tuple[str, BaseException | None]] = []
    with Producer(bootstrap_servers=tansu_bootstrap, linger_ms=5) as p:

        def on_done(future: Future[RecordMetadata]) -> None:
            try:
                p.flush()
            except BaseException as exc:
                callbacks.append((threading.current_thread().name, exc))

        first = p.send(topic, b"v0", key=b"k0", partition=0)
        first.add_done_callback(on_done)
        meta = first.result(timeout=10)
        assert (meta.topic, meta.partition, meta.offset) == (topic, 0, 0)
        many = p.send_many(topic, [b"v1", b"v2", b"v3"], partition=1)
        assert [f.result(timeout=10).offset for f in many] == [0, 1, 2]
        assert p.send_and_wait(topic, b"v4", partition=1).offset == 3
        assert p.partitions_for(topic) == {0, 1}
    assert len(callbacks) == 1
    name, error = callbacks[0]
    assert name == "kclient-portal" and isinstance(error, SyncInEventLoopError)
    with pytest.raises(ClientClosedError):
        p.send(topic, b"late")
    with consumer(tansu_bootstrap) as c:
        c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        assert sorted(r.value for r in islice(c, 5)) == [b"v0", b"v1", b"v2", b"v3", b"v4"]


def test_ctrl_c_delivers_records_the_producer_accepted(tansu_bootstrap: str) -> None:
    """Records still lingering in the buffer when Ctrl-C hits are delivered by the
    close that the ``with`` block runs."""
    topic = make_topic(tansu_bootstrap, 1, 0)
    main = threading.main_thread()
    assert threading.current_thread() is main
    futures: list[Future[RecordMetadata]] = []
    sent = threading.Event()

    def interrupt() -> None:
        assert sent.wait(15)
        signal.pthread_kill(main.ident or 0, signal.SIGINT)

    sender = threading.Thread(target=interrupt)
    sender.start()
    with (
        pytest.raises(KeyboardInterrupt),
        Producer(bootstrap_servers=tansu_bootstrap, linger_ms=60_000) as p,
    ):
        futures.extend(p.send(topic, f"v{i}".encode()) for i in range(50))
        assert not any(f.done() for f in futures)  # lingering, not sent yet
        sent.set()
        time.sleep(30)  # interrupted long before this ends
    sender.join(5)
    assert [f.result(timeout=0).offset for f in futures] == list(range(50))
    assert not portal_running()
