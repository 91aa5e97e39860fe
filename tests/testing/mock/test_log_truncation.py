"""Log truncation in the mock (``PartitionLog.truncate``, ``MockCluster.truncate_log``)
and the OffsetForLeaderEpoch answers that consumers validate against (reliability C9)."""

from __future__ import annotations

import pytest

from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from kclient.testing.mock.log import PartitionLog
from kclient.testing.mock.producers import SequenceVerdict

from .helpers import batch

pytestmark = pytest.mark.anyio


def three_epochs() -> PartitionLog:
    """Epoch 0: offsets 0-3, epoch 1: 4-7, epoch 2: 8-9 (batches of two)."""
    log = PartitionLog()
    for epoch_end in (4, 8, 10):
        while log.log_end_offset < epoch_end:
            log.append(batch([b"x", b"y"]))
        if epoch_end < 10:
            log.new_leader_epoch()
    return log


def test_offset_for_leader_epoch_answers_as_kafka_does() -> None:
    log = three_epochs()
    assert log.end_offset_for_epoch(0) == (0, 4)
    assert log.end_offset_for_epoch(1) == (1, 8)
    assert log.end_offset_for_epoch(2) == (2, 10)  # the latest: the log end
    assert log.end_offset_for_epoch(3) == (-1, -1)  # newer than any: unknown
    assert log.end_offset_for_epoch(-1) == (-1, -1)


def test_truncate_cuts_the_tail_and_rewrites_the_epoch_history() -> None:
    log = three_epochs()
    log.truncate(6, 5)
    assert (log.log_end_offset, log.high_watermark, log.leader_epoch) == (6, 6, 5)
    assert [b.base_offset for b in log.batches] == [0, 2, 4]
    assert log.epoch_starts == [(0, 0), (1, 4), (5, 6)]
    assert log.end_offset_for_epoch(1) == (1, 6)  # epoch 1 now ends where the cut is
    assert log.end_offset_for_epoch(2) == (1, 6)  # epoch 2 is gone: the floor answers
    assert log.end_offset_for_epoch(5) == (5, 6)
    # New writes reuse the lost offsets under the new epoch.
    assert log.append(batch([b"n"])).base_offset == 6
    assert parse_header(log.batches[-1].data).leader_epoch == 5


def test_truncate_to_zero_answers_old_epochs_with_zero() -> None:
    log = three_epochs()
    log.truncate(0, 3)
    assert log.batches == [] and log.log_end_offset == 0
    assert log.end_offset_for_epoch(1) == (1, 0)  # older than the history


def test_truncate_forgets_producers_and_transactions_of_the_lost_tail() -> None:
    log = PartitionLog()
    log.append(batch([b"a", b"b"]))  # 0-1, no producer id
    log.append(batch([b"c"], producer_id=7, epoch=0, base_sequence=0))  # 2
    log.truncate(2, 1)
    assert 7 not in log.producers.entries
    # The producer's next write is judged as a new producer's.
    retry = batch([b"c"], producer_id=7, epoch=0, base_sequence=0)
    assert log.append(retry).verdict is SequenceVerdict.APPEND


@pytest.mark.parametrize(
    ("offset", "epoch", "why"),
    [(3, 9, "inside a batch"), (11, 9, "outside"), (4, 2, "must exceed"), (4, 0, "must exceed")],
)
def test_truncate_rejects_bad_input(offset: int, epoch: int, why: str) -> None:
    log = three_epochs()
    with pytest.raises(ValueError, match=why):
        log.truncate(offset, epoch)


async def test_cluster_truncate_log_bumps_the_epoch_by_default() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic("t", partitions=1)
        part = cluster.state.partition("t", 0)
        assert part is not None
        for _ in range(3):
            part.log.append(batch([b"a", b"b"]))
        cluster.truncate_log("t", 0, 4)
        assert (part.log.log_end_offset, part.log.leader_epoch) == (4, 1)
        cluster.truncate_log("t", 0, 2, new_leader_epoch=7)
        assert part.log.leader_epoch == 7
        with pytest.raises(KeyError):
            cluster.truncate_log("t", 1, 0)
