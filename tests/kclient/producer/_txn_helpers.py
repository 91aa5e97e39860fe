"""Shared helpers for the transaction tests (mock cluster and Tansu)."""

from __future__ import annotations

from typing import Any

import anyio

from kclient import AsyncConsumer, AsyncProducer, TopicPartition

from ._helpers import FAST


def txn_producer(bootstrap: str, transactional_id: str = "tx", **settings: Any) -> AsyncProducer:
    return AsyncProducer(
        bootstrap_servers=bootstrap,
        transactional_id=transactional_id,
        **{**FAST, "max_block_ms": 10_000, **settings},
    )


async def read_all(
    bootstrap: str,
    topic: str,
    partitions: int = 1,
    *,
    isolation: str = "read_committed",
    timeout: float = 20.0,
) -> dict[int, list[bytes | None]]:
    """Every value of ``topic`` visible at ``isolation``, per partition, read with our
    consumer up to the end offsets (the last stable offset for read_committed)."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    out: dict[int, list[bytes | None]] = {p: [] for p in range(partitions)}
    async with AsyncConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    ) as consumer:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        with anyio.fail_after(timeout):
            while True:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                got = await consumer.getmany(timeout_ms=100)
                for tp, records in got.items():
                    out[tp.partition].extend(r.value for r in records)
    return out
