"""A poll of chosen partitions (``getone(*partitions)``, ``getmany(*partitions)``) while
``async for`` holds a partly handed-out chunk: the chunk is given back and fetched again,
so every record still comes once and in order.

Before: the hand-out had rewound the partition's position to the chunk's next record,
while the fetch buffer held only the records after the chunk; the chosen-partition drain
found them not contiguous with the position and dropped them, and the partition stalled
(the poll waited forever; ``async for`` afterwards ended with the chunk).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kclient import AsyncConsumer, TopicPartition
from kclient.testing.mock import MockCluster

from .scenarios._helpers import FAST_GROUP, produce

pytestmark = pytest.mark.anyio

TOPIC = "subset"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
STALL_S = 20  # only bounds a broken run


def make(cluster: MockCluster) -> AsyncConsumer[bytes, bytes]:
    settings: dict[str, Any] = {**FAST_GROUP, "auto_offset_reset": "earliest"}
    return AsyncConsumer(bootstrap_servers=cluster.bootstrap_servers, max_poll_records=10,
                         enable_auto_commit=False, **settings)  # fmt: skip


async def _iterate(consumer: AsyncConsumer[bytes, bytes], n: int) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    async for record in consumer:
        got.append((record.partition, record.offset))
        if len(got) == n:
            break
    return got


@pytest.mark.parametrize("poll", ["getone", "getmany"])
async def test_a_chosen_partition_poll_after_a_partly_handed_out_chunk(poll: str) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in (0, 1):
            produce(cluster, TOPIC, p, [b"x"] * 100, per_batch=100)
        async with make(cluster) as consumer:
            consumer.assign([P0, P1])
            with anyio.fail_after(STALL_S):
                got = await _iterate(consumer, 3)  # a chunk of at most 10 records
                tp = TopicPartition(TOPIC, got[-1][0])
                if poll == "getone":
                    record = await consumer.getone(tp)
                    chosen = [(record.partition, record.offset)]
                else:
                    batches = await consumer.getmany(tp, timeout_ms=STALL_S * 1000)
                    assert set(batches) == {tp}
                    chosen = [(r.partition, r.offset) for r in batches[tp]]
                got += chosen
                got += await _iterate(consumer, 200 - len(got))
    assert chosen[0] == (tp.partition, 1 + max(o for p, o in got[:3] if p == tp.partition))
    for p in (0, 1):
        assert [o for q, o in got if q == p] == list(range(100))
