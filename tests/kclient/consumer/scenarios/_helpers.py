"""Shared helpers for the consumer reliability scenarios (C1-C11) on the MockCluster.

Data is written straight into the mock's partition logs (``produce``): the scenarios test
the consumer, so no producer code path is involved. Timeouts are small so a scenario that
waits out a session timeout still takes about a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio

from kclient import AsyncConsumer, ConsumerRecord, TopicPartition
from kclient.consumer._errors import CommitFailedError
from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from protocol.errors import RebalanceInProgressError
from protocol.records.batch import build_batch

FAST_GROUP = dict(
    session_timeout_ms=1000,
    heartbeat_interval_ms=100,
    retry_backoff_ms=20,
    retry_backoff_max_ms=200,
    reconnect_backoff_ms=20,
    reconnect_backoff_max_ms=200,
    fetch_max_wait_ms=50,
    request_timeout_ms=3000,
    metadata_max_age_ms=1000,
)


def produce(
    cluster: MockCluster,
    topic: str,
    partition: int,
    values: Iterable[bytes],
    *,
    per_batch: int = 100,
    key: bytes | None = None,
) -> int:
    """Append ``values`` to the partition's log in batches; returns the new log end."""
    part = cluster.state.partition(topic, partition)
    assert part is not None, f"{topic}-{partition} does not exist"
    chunk: list[bytes] = []
    for value in [*values, None]:
        if value is not None:
            chunk.append(value)
        if chunk and (value is None or len(chunk) == per_batch):
            data = build_batch([(1_700_000_000_000, key, v) for v in chunk])
            part.log.append([(parse_header(data), data)])
            chunk = []
    return part.log.log_end_offset


def make_consumer(cluster: MockCluster, **settings: Any) -> AsyncConsumer[bytes, bytes]:
    merged: dict[str, Any] = {
        **FAST_GROUP,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "bootstrap_servers": cluster.bootstrap_servers,
    }
    merged.update(settings)
    return AsyncConsumer(**merged)


async def collect(
    c: AsyncConsumer[Any, Any], n: int, timeout: float = 10
) -> list[ConsumerRecord[Any, Any]]:
    out: list[ConsumerRecord[Any, Any]] = []
    with anyio.fail_after(timeout):
        while len(out) < n:
            for records in (await c.getmany(timeout_ms=100)).values():
                out.extend(records)
    return out


async def wait_for(predicate: Any, timeout: float = 10, step: float = 0.02) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(step)


async def poll_until_split(
    consumers: list[AsyncConsumer[Any, Any]], total: int, timeout: float = 10
) -> None:
    """Poll every consumer (records discarded) until the partitions are split among them,
    each owned once."""
    with anyio.fail_after(timeout):
        while True:
            sets = [c.assignment() for c in consumers]
            owned = [tp for s in sets for tp in s]
            if len(owned) == total == len(set(owned)) and all(sets):
                return
            for c in consumers:
                await c.getmany(timeout_ms=20)


def tps(topic: str, n: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(n)]


async def hard_kill(c: AsyncConsumer[Any, Any]) -> None:
    """Stop ``c`` as if its process died: no final commit, no revoke callback, no
    LeaveGroup; connections just close. The group notices at the session timeout."""
    c._closed = True
    pool = c._pool
    if pool is not None:
        with anyio.move_on_after(2, shield=True):
            await pool.aclose()
    await c._stop_tasks()


async def commit_processed(
    c: AsyncConsumer[Any, Any], mine: dict[TopicPartition, int], timeout: float = 10
) -> None:
    """A clean stop: commit everything processed before closing. A commit is refused
    while a JoinGroup/SyncGroup is out (reliability C2), so retry until the rebalance is
    over; if membership was lost meanwhile, the next owner reads these records again
    (legitimate duplicates)."""
    with anyio.fail_after(timeout):
        while mine:
            try:
                await c.commit(dict(mine))
                return
            except RebalanceInProgressError:
                await anyio.sleep(0.02)
            except CommitFailedError:
                return
