"""One partition's log: stored batches with assigned offsets, watermarks, txn index.

Offsets: ``log_start_offset`` <= ``last_stable_offset`` <= ``high_watermark``.
There is no replication, so the high watermark is the log end offset; acks has
no effect on durability and only decides whether a response is sent.

Transactions: each producer with an open transaction on this partition has
the offset of its first transactional batch in ``open_txns``; the last stable
offset is the smallest of those (or the high watermark). An abort marker adds
an entry to ``aborted`` that read_committed fetches return so the client can
drop that producer's records in [first_offset, marker offset].

Leader epochs: ``epoch_starts`` maps each leader epoch to the log end offset
when it began; OffsetForLeaderEpoch answers from it. Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from kclient.testing.mock.batches import BatchHeader, control_batch, with_offset_and_epoch
from kclient.testing.mock.producers import ProducerStates, SequenceVerdict

__all__ = ["AbortedTxn", "AppendResult", "PartitionLog", "StoredBatch"]


@dataclass(slots=True, frozen=True)
class StoredBatch:
    base_offset: int
    last_offset: int
    max_timestamp: int
    data: bytes


@dataclass(slots=True, frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int


@dataclass(slots=True, frozen=True)
class AppendResult:
    verdict: SequenceVerdict
    base_offset: int  # of the first appended batch, or of the duplicate


@dataclass(slots=True)
class PartitionLog:
    leader_epoch: int = 0
    batches: list[StoredBatch] = field(default_factory=list)
    log_start_offset: int = 0
    log_end_offset: int = 0
    producers: ProducerStates = field(default_factory=ProducerStates)
    open_txns: dict[int, int] = field(default_factory=dict)
    aborted: list[AbortedTxn] = field(default_factory=list)
    epoch_starts: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])

    @property
    def high_watermark(self) -> int:
        return self.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        return min(self.open_txns.values(), default=self.log_end_offset)

    # -- writes ----------------------------------------------------------------

    def append(self, batches: list[tuple[BatchHeader, bytes]]) -> AppendResult:
        """Append a produce request's batches for this partition.

        Clients send one batch per partition per request; with several, each is
        checked after its predecessor is appended (sequences chain), and a
        rejected batch stops the rest.
        """
        first = self.log_end_offset
        for header, data in batches:
            check = self.producers.check(header)
            if check.verdict is SequenceVerdict.DUPLICATE and len(batches) == 1:
                return AppendResult(check.verdict, check.duplicate_offset)
            if check.verdict is not SequenceVerdict.APPEND:
                return AppendResult(check.verdict, -1)
            self._append_one(header, data)
        return AppendResult(SequenceVerdict.APPEND, first)

    def _append_one(self, header: BatchHeader, data: bytes) -> None:
        base = self.log_end_offset
        stored = with_offset_and_epoch(data, base, self.leader_epoch)
        last = base + header.last_offset_delta
        self.batches.append(StoredBatch(base, last, header.max_timestamp, stored))
        self.log_end_offset = last + 1
        self.producers.record_append(header, base)
        if header.transactional and not header.control:
            self.open_txns.setdefault(header.producer_id, base)

    def write_marker(
        self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, now: int
    ) -> None:
        """Write the END_TXN control record and close the producer's open transaction."""
        base = self.log_end_offset
        data = control_batch(
            base_offset=base,
            leader_epoch=self.leader_epoch,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            commit=commit,
            coordinator_epoch=coordinator_epoch,
            timestamp_ms=now,
        )
        self.batches.append(StoredBatch(base, base, now, data))
        self.log_end_offset = base + 1
        first = self.open_txns.pop(producer_id, None)
        if not commit and first is not None:
            self.aborted.append(AbortedTxn(producer_id, first, base))
        self.producers.bump_epoch(producer_id, producer_epoch)
        entry = self.producers.entries.get(producer_id)
        if entry is not None:
            entry.last_offset = base

    def delete_records(self, offset: int) -> int:
        """Move the log start offset forward (-1 means the high watermark)."""
        target = self.high_watermark if offset == -1 else offset
        if target < 0 or target > self.high_watermark:
            raise ValueError("offset out of range")
        if target > self.log_start_offset:
            self.log_start_offset = target
            self.batches = [b for b in self.batches if b.last_offset >= target]
            self.producers.forget_below(target)
        return self.log_start_offset

    def new_leader_epoch(self) -> None:
        self.leader_epoch += 1
        self.epoch_starts.append((self.leader_epoch, self.log_end_offset))

    # -- reads -----------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, upper: int) -> list[StoredBatch]:
        """Whole batches from the one holding ``offset`` up to ``upper`` (exclusive).

        At least one batch is returned even if it exceeds ``max_bytes``, so a
        consumer can always make progress (KIP-74).
        """
        lasts = [b.last_offset for b in self.batches]
        index = bisect.bisect_left(lasts, offset)
        out: list[StoredBatch] = []
        size = 0
        for batch in self.batches[index:]:
            if batch.base_offset >= upper:
                break
            if out and size + len(batch.data) > max_bytes:
                break
            out.append(batch)
            size += len(batch.data)
        return out

    def aborted_in(self, start: int, end: int) -> list[AbortedTxn]:
        return [a for a in self.aborted if a.last_offset >= start and a.first_offset < end]

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int]:
        """(offset, timestamp) of the first batch with max timestamp >= ``timestamp``.

        Batch granularity: the mock does not decode records, so the answer is
        the base offset of the first batch that may hold such a record.
        """
        for batch in self.batches:
            if batch.max_timestamp >= timestamp:
                return max(batch.base_offset, self.log_start_offset), batch.max_timestamp
        return -1, -1

    def max_timestamp_offset(self) -> tuple[int, int]:
        best = (-1, -1)
        for batch in self.batches:
            if batch.max_timestamp > best[1]:
                best = (batch.last_offset, batch.max_timestamp)
        return best

    def truncate(self, offset: int, new_leader_epoch: int) -> None:
        """Cut the log at ``offset`` under a new, higher leader epoch: what clients see
        when a replica that missed the tail becomes leader. Records from ``offset`` on
        are gone and the next write reuses ``offset``. As in Kafka's leader-epoch cache,
        only epochs that began before ``offset`` stay in the history, so
        OffsetForLeaderEpoch for a lost epoch answers an end offset of at most ``offset``.
        """
        if new_leader_epoch <= self.leader_epoch:
            raise ValueError(
                f"new_leader_epoch {new_leader_epoch} must exceed the current "
                f"leader epoch {self.leader_epoch}"
            )
        if not self.log_start_offset <= offset <= self.log_end_offset:
            raise ValueError(
                f"truncation offset {offset} outside [{self.log_start_offset}, "
                f"{self.log_end_offset}]"
            )
        if any(b.base_offset < offset <= b.last_offset for b in self.batches):
            raise ValueError(f"truncation offset {offset} is inside a batch")
        self.batches = [b for b in self.batches if b.last_offset < offset]
        self.log_end_offset = offset
        self.open_txns = {pid: first for pid, first in self.open_txns.items() if first < offset}
        self.aborted = [a for a in self.aborted if a.last_offset < offset]
        # The producer state of lost writes cannot be rolled back: forget those producers
        # (their next write is judged as a new producer's, as after DeleteRecords).
        entries = self.producers.entries
        for pid in [pid for pid, e in entries.items() if e.last_offset >= offset]:
            del entries[pid]
        self.epoch_starts = [(e, start) for e, start in self.epoch_starts if start < offset]
        self.epoch_starts.append((new_leader_epoch, offset))
        self.leader_epoch = new_leader_epoch

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch, as Kafka's leader-epoch cache
        answers: the largest known epoch <= ``epoch`` with the start offset of the next
        one (the log end for the latest epoch); an epoch older than the history gets
        itself with the first start offset; (-1, -1) for -1 or an epoch newer than the
        latest."""
        starts = self.epoch_starts
        latest = starts[-1][0]
        if epoch < 0 or epoch > latest:
            return -1, -1
        if epoch == latest:
            return epoch, self.log_end_offset
        higher = next(i for i, (e, _) in enumerate(starts) if e > epoch)
        if higher == 0:
            return epoch, starts[0][1]
        return starts[higher - 1][0], starts[higher][1]
