"""Shared pieces of the exactly-once session tests (mock cluster and Tansu)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kclient import AsyncConsumer, AsyncGroupTransactSession, AsyncProducer, TopicPartition
from kclient.eos import Batches

from ..producer._txn_helpers import read_all

# Short timers: joins, retries and commits converge in well under a second on the mock.
FAST_CLIENT: dict[str, Any] = dict(
    retry_backoff_ms=20,
    retry_backoff_max_ms=200,
    reconnect_backoff_ms=20,
    reconnect_backoff_max_ms=200,
    request_timeout_ms=3000,
    metadata_max_age_ms=1000,
)
FAST_GROUP: dict[str, Any] = dict(
    session_timeout_ms=1000,
    heartbeat_interval_ms=100,
    fetch_max_wait_ms=50,
)


def session_consumer(bootstrap: str, group: str, **settings: Any) -> AsyncConsumer[Any, Any]:
    merged: dict[str, Any] = {
        **FAST_CLIENT,
        **FAST_GROUP,
        "group_id": group,
        "isolation_level": "read_committed",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **settings,
    }
    return AsyncConsumer(bootstrap_servers=bootstrap, **merged)


def session_producer(bootstrap: str, transactional_id: str, **settings: Any) -> AsyncProducer:
    merged: dict[str, Any] = {
        **FAST_CLIENT,
        "linger_ms": 2,
        "max_block_ms": 10_000,
        "transactional_id": transactional_id,
        **settings,
    }
    return AsyncProducer(bootstrap_servers=bootstrap, **merged)


@dataclass
class CopierStats:
    """What one copier member did, across its restarts (read by the test)."""

    committed: int = 0
    aborted: int = 0
    batches: int = 0
    assigned: set[TopicPartition] = field(default_factory=set)


async def copy_loop(
    bootstrap: str,
    group: str,
    transactional_id: str,
    stats: CopierStats,
    *,
    source: str = "in",
    target: str = "out",
    max_records: int = 50,
    consumer_settings: Mapping[str, Any] | None = None,
    producer_settings: Mapping[str, Any] | None = None,
) -> None:
    """Copy ``source`` -> ``target`` partition to partition with the session's ``run``
    loop, until cancelled."""
    async with session_producer(
        bootstrap, transactional_id, **dict(producer_settings or {})
    ) as producer, session_consumer(
        bootstrap, group, **dict(consumer_settings or {})
    ) as consumer, AsyncGroupTransactSession(consumer, producer) as session:  # fmt: skip
        consumer.subscribe([source])

        async def transform(batches: Batches[Any, Any]) -> None:
            stats.batches += 1
            stats.assigned |= set(batches)
            for tp, records in batches.items():
                for record in records:
                    await producer.send(
                        target, record.value, key=record.key, partition=tp.partition
                    )

        try:
            await session.run(transform, timeout_ms=100, max_records=max_records)
        finally:
            stats.committed += session.committed_transactions
            stats.aborted += session.aborted_transactions


async def read_values(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> dict[int, list[bytes | None]]:
    """Every value of ``topic`` visible at ``isolation``, per partition (the
    transaction tests' reader, with the longer deadline copies need)."""
    return await read_all(bootstrap, topic, partitions, isolation=isolation, timeout=timeout)


def assert_exactly_once(
    got: Mapping[int, list[bytes | None]], sent: Mapping[int, list[bytes]]
) -> None:
    for p, values in sent.items():
        out = got[p]
        dupes = len(out) - len(set(out))
        assert dupes == 0, f"partition {p}: {dupes} duplicates"
        missing = len(set(values) - set(out))
        assert missing == 0, f"partition {p}: {missing} records missing"
        assert out == values, f"partition {p}: output order differs from input"
