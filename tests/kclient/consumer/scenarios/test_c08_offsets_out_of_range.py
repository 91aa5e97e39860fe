"""C8: offsets out of range (DeleteRecords below the position; a stale OUT_OF_RANGE for a
position already sought away from).

Must hold (reliability.md C8): ``auto_offset_reset`` is applied (earliest: the new log
start; latest: the log end; none: ``OffsetOutOfRangeError`` until the application seeks);
records fetched before the error are delivered first, not discarded; a stale
OUT_OF_RANGE answering a fetch planned before a seek is ignored.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kclient import ConsumerRecord, TopicPartition
from kclient.testing.mock import MockCluster
from protocol.errors import OffsetOutOfRangeError
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce, wait_for

pytestmark = pytest.mark.anyio

TOPIC = "c8"
TP = TopicPartition(TOPIC, 0)
OFFSET_OUT_OF_RANGE = 1


def offsets(records: list[ConsumerRecord[Any, Any]]) -> list[int]:
    return [r.offset for r in records]


@pytest.mark.parametrize("policy", ["earliest", "latest", "none"])
async def test_delete_records_below_position_applies_the_reset_policy(policy: str) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"a"] * 50, per_batch=10)
        async with make_consumer(cluster, auto_offset_reset=policy) as c:
            c.assign([TP])
            c.seek(TP, 0)
            # Records 0..49 fetched, not yet delivered; the next fetch asks for 50.
            await wait_for(lambda: c._subs.state(TP).fetch_offset == 50)
            produce(cluster, TOPIC, 0, [b"b"] * 50, per_batch=10)
            assert cluster.delete_records(TOPIC, 0, 80) == 80
            # Records fetched before the error come first, all of them.
            assert offsets(await collect(c, 50)) == list(range(50))
            if policy == "earliest":
                assert offsets(await collect(c, 20)) == list(range(80, 100))
            elif policy == "latest":
                with anyio.fail_after(10):
                    while c._subs.position(TP) != 100:
                        assert await c.getmany(timeout_ms=20) == {}
                produce(cluster, TOPIC, 0, [b"c"] * 5)
                assert offsets(await collect(c, 5)) == list(range(100, 105))
            else:
                for _ in range(2):  # raised at the same place until the application seeks
                    with pytest.raises(OffsetOutOfRangeError):
                        await collect(c, 1)
                c.seek(TP, 90)
                assert offsets(await collect(c, 10)) == list(range(90, 100))
        assert cluster.errors == []


async def test_stale_out_of_range_after_a_seek_is_ignored() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"a"] * 100, per_batch=10)
        # The first fetch (planned for offset 0) answers OUT_OF_RANGE, late.
        cluster.fail_next(ApiKey.FETCH, OFFSET_OUT_OF_RANGE, topic=TOPIC, partition=0)
        cluster.delay_next(ApiKey.FETCH, 0.3)
        async with make_consumer(cluster, auto_offset_reset="none") as c:
            c.assign([TP])
            c.seek(TP, 0)
            await wait_for(lambda: len(cluster.requests_of(ApiKey.FETCH)) >= 1)
            c.seek(TP, 30)  # while the doomed fetch is in flight
            got = await collect(c, 70)  # "none" would raise if the stale error counted
            assert offsets(got) == list(range(30, 100))
            assert cluster.faults.errors[0].count == 0  # the error was really sent
        assert cluster.errors == []
