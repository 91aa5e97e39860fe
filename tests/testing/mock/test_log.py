"""Pure partition-log and idempotent-producer state."""

from __future__ import annotations

import pytest

from kclient.testing.mock.batches import BatchError, parse_header, split_batches
from kclient.testing.mock.log import PartitionLog
from kclient.testing.mock.producers import SequenceVerdict as V

from .helpers import batch, raw_batch


def seq_batch(seq: int, n: int = 2, epoch: int = 0, pid: int = 7) -> list:  # type: ignore[type-arg]
    return batch([b"v"] * n, producer_id=pid, epoch=epoch, base_sequence=seq)


def test_offsets_assigned_and_base_offset_rewritten() -> None:
    log = PartitionLog()
    assert log.append(batch([b"a", b"b"])).base_offset == 0
    assert log.append(batch([b"c"])).base_offset == 2
    assert log.high_watermark == 3
    stored = [parse_header(b.data) for b in log.batches]
    assert [h.base_offset for h in stored] == [0, 2]  # CRC still valid after rewrite


def test_corrupt_batch_is_rejected() -> None:
    data = bytearray(raw_batch([b"x"]))
    data[-1] ^= 0xFF
    with pytest.raises(BatchError):
        split_batches(bytes(data))
    with pytest.raises(BatchError):
        split_batches(bytes(data[:30]))


def test_five_batch_window() -> None:
    log = PartitionLog()
    offsets = [log.append(seq_batch(s * 2)).base_offset for s in range(6)]
    assert offsets == [0, 2, 4, 6, 8, 10]
    # seq 2 is still inside the last five batches: duplicate, original offset
    dup = log.append(seq_batch(2))
    assert (dup.verdict, dup.base_offset) == (V.DUPLICATE, 2)
    # seq 0 fell out of the window: out of order (retry beyond the window)
    assert log.append(seq_batch(0)).verdict is V.OUT_OF_ORDER
    assert log.append(seq_batch(20)).verdict is V.OUT_OF_ORDER  # gap
    assert log.append(seq_batch(12)).verdict is V.APPEND
    assert log.high_watermark == 14


def test_epochs_and_unknown_producer() -> None:
    log = PartitionLog()
    assert log.append(seq_batch(5)).verdict is V.UNKNOWN_PRODUCER
    assert log.append(seq_batch(0, epoch=1)).verdict is V.APPEND
    assert log.append(seq_batch(2, epoch=0)).verdict is V.FENCED_EPOCH
    assert log.append(seq_batch(2, epoch=2)).verdict is V.OUT_OF_ORDER  # new epoch must start at 0
    assert log.append(seq_batch(0, epoch=2)).verdict is V.APPEND


def test_sequence_wraps_at_int32_max() -> None:
    log = PartitionLog()
    top = (1 << 31) - 2
    log.producers.entries.clear()
    assert log.append(seq_batch(0)).verdict is V.APPEND
    entry = log.producers.entries[7]
    entry.window.clear()
    from kclient.testing.mock.producers import WindowEntry

    entry.window.append(WindowEntry(top - 1, top, 0))
    assert log.append(seq_batch(top + 1, n=3)).verdict is V.APPEND  # covers MAX, 0, 1
    assert log.append(seq_batch(2)).verdict is V.APPEND


def test_delete_records_forgets_producers() -> None:
    log = PartitionLog()
    log.append(seq_batch(0))
    log.append(batch([b"x"]))
    assert log.delete_records(-1) == 3
    assert log.batches == []
    assert log.append(seq_batch(2)).verdict is V.UNKNOWN_PRODUCER
    with pytest.raises(ValueError):
        log.delete_records(10)


def test_transactions_lso_and_aborted_index() -> None:
    log = PartitionLog()
    log.append(batch([b"t1"], producer_id=1, epoch=0, base_sequence=0, transactional=True))
    log.append(batch([b"plain"]))
    assert (log.last_stable_offset, log.high_watermark) == (0, 2)
    log.write_marker(1, 0, commit=False, coordinator_epoch=0, now=5)
    assert log.last_stable_offset == log.high_watermark == 3
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in log.aborted] == [(1, 0, 2)]
    assert parse_header(log.batches[-1].data).control
    assert log.aborted_in(0, 3) and not log.aborted_in(3, 10)


def test_read_respects_max_bytes_but_returns_one_batch() -> None:
    log = PartitionLog()
    for _ in range(3):
        log.append(batch([b"x" * 100]))
    assert len(log.read(0, 1, log.high_watermark)) == 1
    assert len(log.read(1, 10_000, log.high_watermark)) == 2
    assert log.read(0, 10_000, 1)[-1].base_offset == 0  # upper bound (LSO) respected


def test_leader_epochs() -> None:
    log = PartitionLog()
    log.append(batch([b"a"]))
    log.new_leader_epoch()
    log.append(batch([b"b", b"c"]))
    assert log.end_offset_for_epoch(0) == (0, 1)
    assert log.end_offset_for_epoch(1) == (1, 3)
    assert log.end_offset_for_epoch(5) == (-1, -1)  # newer than the latest: unknown
    assert parse_header(log.batches[-1].data).leader_epoch == 1
