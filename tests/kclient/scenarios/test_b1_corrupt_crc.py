"""Reliability scenario B1 (reliability guide 2e): a corrupt CRC reaches a real consumer.

The mock broker serves a batch with one CRC byte flipped on partition 0 (written straight
into its log, as a disk or network fault would leave it); partition 1 is healthy. The pure
fetcher rule is tested in tests/kclient/consumer/test_fetcher.py; here the whole path
(fetch task, buffer, getmany, seek) is checked.
"""

from __future__ import annotations

import anyio
import pytest

from kclient import TopicPartition
from kclient.consumer.fetcher import CorruptBatchError
from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from protocol._errors_base import CorruptRecordError
from protocol.records.batch import build_batch

from ..consumer.scenarios._helpers import make_consumer, produce

pytestmark = pytest.mark.anyio

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def append_corrupt_batch(cluster: MockCluster, values: list[bytes]) -> int:
    """Append a batch whose CRC no longer matches; returns its base offset."""
    part = cluster.state.partition("t", 0)
    assert part is not None
    good = build_batch([(1_700_000_000_000, None, v) for v in values])
    header = parse_header(good)  # (it checks the CRC, as the broker does on produce)
    data = bytearray(good)
    data[17] ^= 0x01  # first CRC byte (offset 17 of the v2 header)
    base = part.log.log_end_offset
    part.log.append([(header, bytes(data))])
    return base


async def test_b1_corrupt_batch_raises_at_the_same_offset_until_seek_past_it() -> None:
    """B1: CorruptRecordError(tp, offset) on every poll, position unchanged, partition 1
    keeps flowing, records before the bad batch are delivered, seek(offset+n) recovers."""
    async with MockCluster() as cluster:
        cluster.create_topic("t", partitions=2)
        produce(cluster, "t", 0, [b"good-0", b"good-1"])
        bad_offset = append_corrupt_batch(cluster, [b"bad-2", b"bad-3"])
        produce(cluster, "t", 0, [b"after-4"])
        produce(cluster, "t", 1, [b"p1-%d" % i for i in range(3)])
        consumer = make_consumer(cluster)
        async with consumer:
            consumer.assign([TP0, TP1])
            got: dict[TopicPartition, list[bytes]] = {TP0: [], TP1: []}
            errors: list[CorruptRecordError] = []
            with anyio.fail_after(10):
                while len(errors) < 3 or len(got[TP1]) < 3:
                    try:
                        batch = await consumer.getmany(timeout_ms=100)
                    except CorruptRecordError as exc:
                        errors.append(exc)
                        continue
                    for tp, records in batch.items():
                        got[tp] += [r.value or b"" for r in records]
            assert got[TP0] == [b"good-0", b"good-1"]  # what came before is not lost
            assert got[TP1] == [b"p1-0", b"p1-1", b"p1-2"]  # the healthy partition flows
            for error in errors:
                assert isinstance(error, CorruptBatchError)
                assert (error.topic_partition, error.offset) == (TP0, bad_offset)
            assert await consumer.position(TP0) == bad_offset  # never skipped silently
            consumer.seek(TP0, bad_offset + 2)  # the user decides to skip the bad batch
            with anyio.fail_after(10):
                after: list[bytes] = []
                while not after:
                    polled = await consumer.getmany(timeout_ms=100)
                    after = [r.value or b"" for r in polled.get(TP0, [])]
            assert after == [b"after-4"]
