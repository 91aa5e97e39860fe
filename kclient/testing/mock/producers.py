"""Per-partition idempotent-producer state: the broker's five-batch dedup window.

For every producer id that wrote to a partition the broker keeps its epoch and
the sequence ranges of the last five batches it appended. A new batch is
checked against that entry before anything is written:

* lower epoch than recorded            -> INVALID_PRODUCER_EPOCH (a zombie)
* higher epoch                         -> accepted only at sequence 0 (epoch bump
                                          resets sequences), else OUT_OF_ORDER
* same epoch, ranges equal a window    -> DUPLICATE_SEQUENCE_NUMBER, answered with
  entry                                   the offset of the original append
* same epoch, not last_seq + 1         -> OUT_OF_ORDER_SEQUENCE_NUMBER
* no entry and sequence != 0           -> UNKNOWN_PRODUCER_ID (the broker forgot the
                                          producer, e.g. after DeleteRecords)

A retry beyond the window (the sixth-oldest batch) is therefore an OOSN, which
is exactly the ambiguity scenario P2(b) needs. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from kclient.testing.mock.batches import BatchHeader

__all__ = ["ProducerCheck", "ProducerEntry", "ProducerStates", "SequenceVerdict"]

WINDOW = 5
_SEQ_MOD = 1 << 31


class SequenceVerdict(Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    UNKNOWN_PRODUCER = "unknown_producer"
    FENCED_EPOCH = "fenced_epoch"


@dataclass(slots=True, frozen=True)
class WindowEntry:
    first_seq: int
    last_seq: int
    base_offset: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    window: deque[WindowEntry] = field(default_factory=lambda: deque(maxlen=WINDOW))
    last_offset: int = -1  # last log offset this producer wrote (for forgetting)

    @property
    def last_seq(self) -> int:
        return self.window[-1].last_seq if self.window else -1


@dataclass(slots=True, frozen=True)
class ProducerCheck:
    verdict: SequenceVerdict
    duplicate_offset: int = -1


class ProducerStates:
    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}

    def check(self, header: BatchHeader) -> ProducerCheck:
        if header.producer_id < 0 or header.control:
            return ProducerCheck(SequenceVerdict.APPEND)
        entry = self.entries.get(header.producer_id)
        if entry is None:
            if header.base_sequence == 0:
                return ProducerCheck(SequenceVerdict.APPEND)
            return ProducerCheck(SequenceVerdict.UNKNOWN_PRODUCER)
        if header.producer_epoch < entry.epoch:
            return ProducerCheck(SequenceVerdict.FENCED_EPOCH)
        if header.producer_epoch > entry.epoch:
            ok = header.base_sequence == 0
            return ProducerCheck(SequenceVerdict.APPEND if ok else SequenceVerdict.OUT_OF_ORDER)
        for item in entry.window:
            if item.first_seq == header.base_sequence and item.last_seq == header.last_sequence:
                return ProducerCheck(SequenceVerdict.DUPLICATE, item.base_offset)
        if header.base_sequence != (entry.last_seq + 1) % _SEQ_MOD:
            return ProducerCheck(SequenceVerdict.OUT_OF_ORDER)
        return ProducerCheck(SequenceVerdict.APPEND)

    def record_append(self, header: BatchHeader, base_offset: int) -> None:
        if header.producer_id < 0:
            return
        entry = self.entries.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerEntry(epoch=header.producer_epoch)
            self.entries[header.producer_id] = entry
        entry.last_offset = base_offset + header.last_offset_delta
        if not header.control:
            entry.window.append(
                WindowEntry(header.base_sequence, header.last_sequence, base_offset)
            )

    def bump_epoch(self, producer_id: int, epoch: int) -> None:
        """A transaction marker carries the coordinator's epoch; older writers are fenced."""
        entry = self.entries.get(producer_id)
        if entry is not None and epoch > entry.epoch:
            entry.epoch = epoch
            entry.window.clear()

    def forget_below(self, log_start_offset: int) -> None:
        """Drop producers whose every write was deleted (DeleteRecords, retention)."""
        for pid in [p for p, e in self.entries.items() if e.last_offset < log_start_offset]:
            del self.entries[pid]
