"""C9: leader change and log truncation (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
truncation below the consumer's position).

The mock truncates a partition's log and bumps its leader epoch
(``MockCluster.truncate_log``), as a leader change onto a replica that missed the tail
does; new records then reuse the lost offsets.

Must hold (reliability.md C9): the position is validated with OffsetForLeaderEpoch; a
truncation below the position is handled by policy (with a reset policy the consumer
continues at the first offset that diverged, so the new records at the reused offsets
are neither skipped nor is anything before them read again; with "none",
``LogTruncationError`` at the same place until the application seeks); a plain leader
change validates and continues without gap or duplicate; a broker without
OffsetForLeaderEpoch v3 (Tansu) is not asked and consumption goes on; fencing errors on
Fetch refresh metadata and lose nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from kclient import ConsumerRecord, TopicPartition
from kclient.errors import LogTruncationError
from kclient.testing.mock import MockCluster
from kclient.testing.mock.handlers.versions import SUPPORTED
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce

pytestmark = pytest.mark.anyio

TOPIC = "c9"
TP = TopicPartition(TOPIC, 0)
FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 74, 75


def offsets(records: list[ConsumerRecord[Any, Any]]) -> list[int]:
    return [r.offset for r in records]


def epoch_requests(cluster: MockCluster) -> list[tuple[int, int]]:
    """(current_leader_epoch, leader_epoch) of every OffsetForLeaderEpoch for TP."""
    out = []
    for r in cluster.requests_of(ApiKey.OFFSET_FOR_LEADER_EPOCH):
        for t in r.request.topics:  # type: ignore[attr-defined]
            out += [(p.current_leader_epoch, p.leader_epoch) for p in t.partitions]
    return out


@pytest.mark.parametrize("policy", ["earliest", "latest"])
async def test_truncation_below_position_continues_at_divergence(policy: str) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"old"] * 100, per_batch=10)
        async with make_consumer(cluster, auto_offset_reset=policy) as c:
            c.assign([TP])
            c.seek(TP, 0)
            assert offsets(await collect(c, 100)) == list(range(100))
            cluster.truncate_log(TOPIC, 0, 80)  # 80..99 lost; leader epoch 0 -> 1
            produce(cluster, TOPIC, 0, [b"new"] * 30, per_batch=10)  # 80..109, epoch 1
            got = await collect(c, 30)
            assert offsets(got) == list(range(80, 110))  # no skip, no re-read below 80
            assert {r.value for r in got} == {b"new"}
            assert {r.leader_epoch for r in got} == {1}
            assert await c.position(TP) == 110
            assert epoch_requests(cluster) == [(1, 0)]
        assert cluster.errors == []


async def test_truncation_with_no_reset_policy_raises_until_seek() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"old"] * 100, per_batch=10)
        async with make_consumer(cluster, auto_offset_reset="none") as c:
            c.assign([TP])
            c.seek(TP, 0)
            assert offsets(await collect(c, 100)) == list(range(100))
            cluster.truncate_log(TOPIC, 0, 80)
            produce(cluster, TOPIC, 0, [b"new"] * 30, per_batch=10)
            for _ in range(2):  # the same error at the same place, nothing skipped
                with pytest.raises(LogTruncationError) as info:
                    await collect(c, 1)
                error = info.value
                assert (error.topic_partition, error.position) == (TP, 100)
                assert (error.divergent_offset, error.divergent_epoch) == (80, 0)
                assert await c.position(TP) == 100
            c.seek(TP, error.divergent_offset)
            assert offsets(await collect(c, 30)) == list(range(80, 110))
        assert cluster.errors == []


async def test_leader_change_without_truncation_validates_and_continues() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic(TOPIC, partitions=1)  # led by broker 1
        produce(cluster, TOPIC, 0, [b"a"] * 50, per_batch=10)
        async with make_consumer(cluster) as c:
            c.assign([TP])
            c.seek(TP, 0)
            assert offsets(await collect(c, 50)) == list(range(50))
            cluster.move_leader(TOPIC, 0, 2)  # epoch 1, nothing lost
            produce(cluster, TOPIC, 0, [b"b"] * 50, per_batch=10)
            assert offsets(await collect(c, 50)) == list(range(50, 100))
            assert epoch_requests(cluster) == [(1, 0)]
            assert [r.broker for r in cluster.requests_of(ApiKey.OFFSET_FOR_LEADER_EPOCH)] == [2]
        assert cluster.errors == []


async def test_broker_without_offset_for_leader_epoch_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As Tansu: the API is not there in a usable version; validation is skipped.
    monkeypatch.setitem(SUPPORTED, int(ApiKey.OFFSET_FOR_LEADER_EPOCH), (0, 2))
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"a"] * 50, per_batch=10)
        async with make_consumer(cluster) as c:
            c.assign([TP])
            c.seek(TP, 0)
            assert offsets(await collect(c, 50)) == list(range(50))
            cluster.move_leader(TOPIC, 0, 2)
            produce(cluster, TOPIC, 0, [b"b"] * 50, per_batch=10)
            assert offsets(await collect(c, 50)) == list(range(50, 100))
            assert cluster.requests_of(ApiKey.OFFSET_FOR_LEADER_EPOCH) == []
        assert cluster.errors == []


@pytest.mark.parametrize("code", [FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH])
async def test_fencing_errors_on_fetch_refresh_and_lose_nothing(code: int) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"a"] * 30, per_batch=10)
        async with make_consumer(cluster) as c:
            c.assign([TP])
            c.seek(TP, 0)
            assert offsets(await collect(c, 30)) == list(range(30))
            metadata_before = len(cluster.requests_of(ApiKey.METADATA))
            cluster.fail_next(ApiKey.FETCH, code, count=2, topic=TOPIC, partition=0)
            produce(cluster, TOPIC, 0, [b"b"] * 30, per_batch=10)
            assert offsets(await collect(c, 30)) == list(range(30, 60))
            assert len(cluster.requests_of(ApiKey.METADATA)) > metadata_before
            # The epoch did not change: nothing to validate.
            assert cluster.requests_of(ApiKey.OFFSET_FOR_LEADER_EPOCH) == []
        assert cluster.errors == []
