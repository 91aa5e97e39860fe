"""Transaction coordinator state: producer ids, epochs and one transaction per id.

Theory of operation::

    EMPTY --AddPartitions/AddOffsets--> ONGOING --EndTxn--> PREPARE_COMMIT|PREPARE_ABORT
        --markers written--> COMPLETE_COMMIT|COMPLETE_ABORT --Add...--> ONGOING

The mock writes markers synchronously, so PREPARE_* lasts for one call; it is
kept so the legal moves match the real coordinator. InitProducerId on an id
with an ongoing transaction aborts it first and bumps the epoch, fencing the
previous producer instance. A transaction left open past its timeout is
aborted by ``expired(now)`` with an epoch bump (what the real coordinator
does, so the zombie gets PRODUCER_FENCED next time).

This module decides; :mod:`kclient.testing.mock.state` applies the effects
(markers into partition logs, offsets into groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kclient.testing.mock.codes import Err

__all__ = ["EndTxnEffect", "TransactionState", "TxnCoordinator", "TxnEntry"]

MAX_EPOCH = 32766


class TransactionState(Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"


_T = TransactionState
_TRANSITIONS: dict[TransactionState, frozenset[TransactionState]] = {
    _T.EMPTY: frozenset({_T.ONGOING, _T.EMPTY}),
    _T.ONGOING: frozenset({_T.ONGOING, _T.PREPARE_COMMIT, _T.PREPARE_ABORT}),
    _T.PREPARE_COMMIT: frozenset({_T.COMPLETE_COMMIT}),
    _T.PREPARE_ABORT: frozenset({_T.COMPLETE_ABORT}),
    _T.COMPLETE_COMMIT: frozenset({_T.ONGOING, _T.EMPTY}),
    _T.COMPLETE_ABORT: frozenset({_T.ONGOING, _T.EMPTY}),
}


@dataclass
class TxnEntry:
    transactional_id: str
    producer_id: int
    epoch: int
    timeout_ms: int
    state: TransactionState = TransactionState.EMPTY
    partitions: set[tuple[str, int]] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    started: int = 0

    def _transition_to(self, new: TransactionState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"transaction {self.transactional_id}: {self.state} -> {new}")
        self.state = new


@dataclass(slots=True, frozen=True)
class EndTxnEffect:
    """What the cluster must do to finish a transaction."""

    producer_id: int
    epoch: int
    commit: bool
    partitions: tuple[tuple[str, int], ...]
    groups: tuple[str, ...]


class TxnCoordinator:
    def __init__(self, first_producer_id: int = 1000) -> None:
        self.entries: dict[str, TxnEntry] = {}
        self._next_pid = first_producer_id

    def new_producer_id(self) -> int:
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def init_producer_id(
        self,
        transactional_id: str | None,
        timeout_ms: int,
        producer_id: int,
        epoch: int,
        now: int,
    ) -> tuple[Err, int, int, EndTxnEffect | None]:
        """(error, pid, epoch, abort effect for a transaction left ongoing)."""
        if transactional_id is None:
            if producer_id >= 0 and epoch >= 0:
                # KIP-360: an idempotent producer bumps its own epoch to reset sequences.
                if epoch < MAX_EPOCH:
                    return Err.NONE, producer_id, epoch + 1, None
            return Err.NONE, self.new_producer_id(), 0, None
        if timeout_ms <= 0 or timeout_ms > 900_000:
            return Err.INVALID_TRANSACTION_TIMEOUT, -1, -1, None
        entry = self.entries.get(transactional_id)
        if entry is None:
            entry = TxnEntry(transactional_id, self.new_producer_id(), 0, timeout_ms)
            self.entries[transactional_id] = entry
            return Err.NONE, entry.producer_id, entry.epoch, None
        if producer_id >= 0 and (producer_id, epoch) != (entry.producer_id, entry.epoch):
            return Err.PRODUCER_FENCED, -1, -1, None
        effect = None
        if entry.state is TransactionState.ONGOING:
            effect = self._end(entry, commit=False)
        entry.timeout_ms = timeout_ms
        self._bump(entry)
        entry._transition_to(TransactionState.EMPTY)
        return Err.NONE, entry.producer_id, entry.epoch, effect

    def _bump(self, entry: TxnEntry) -> None:
        if entry.epoch >= MAX_EPOCH:
            entry.producer_id, entry.epoch = self.new_producer_id(), 0
        else:
            entry.epoch += 1

    def check(self, transactional_id: str, producer_id: int, epoch: int) -> Err:
        entry = self.entries.get(transactional_id)
        if entry is None or entry.producer_id != producer_id:
            return Err.INVALID_PRODUCER_ID_MAPPING
        if epoch < entry.epoch:
            return Err.PRODUCER_FENCED
        if epoch > entry.epoch:
            return Err.INVALID_PRODUCER_EPOCH
        if entry.state in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT):
            return Err.CONCURRENT_TRANSACTIONS
        return Err.NONE

    def add(
        self,
        transactional_id: str,
        *,
        partitions: tuple[tuple[str, int], ...] = (),
        group: str | None = None,
        now: int,
    ) -> None:
        """Add partitions or a group; the caller has already passed :meth:`check`."""
        entry = self.entries[transactional_id]
        if entry.state is not TransactionState.ONGOING:
            entry._transition_to(TransactionState.ONGOING)
            entry.partitions.clear()
            entry.groups.clear()
            entry.started = now
        entry.partitions.update(partitions)
        if group is not None:
            entry.groups.add(group)

    def end(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool
    ) -> tuple[Err, EndTxnEffect | None]:
        error = self.check(transactional_id, producer_id, epoch)
        if error is not Err.NONE:
            return error, None
        entry = self.entries[transactional_id]
        done = TransactionState.COMPLETE_COMMIT if commit else TransactionState.COMPLETE_ABORT
        if entry.state is done:
            return Err.NONE, None  # a retry of an EndTxn that already completed
        if entry.state is not TransactionState.ONGOING:
            return Err.INVALID_TXN_STATE, None
        return Err.NONE, self._end(entry, commit)

    def _end(self, entry: TxnEntry, commit: bool) -> EndTxnEffect:
        entry._transition_to(
            TransactionState.PREPARE_COMMIT if commit else TransactionState.PREPARE_ABORT
        )
        effect = EndTxnEffect(
            entry.producer_id,
            entry.epoch,
            commit,
            tuple(sorted(entry.partitions)),
            tuple(sorted(entry.groups)),
        )
        entry._transition_to(
            TransactionState.COMPLETE_COMMIT if commit else TransactionState.COMPLETE_ABORT
        )
        return effect

    def partition_in_txn(self, producer_id: int, topic: str, partition: int) -> bool:
        return any(
            e.producer_id == producer_id
            and e.state is TransactionState.ONGOING
            and (topic, partition) in e.partitions
            for e in self.entries.values()
        )

    def expired(self, now: int) -> list[EndTxnEffect]:
        """Abort transactions open past their timeout, fencing the producer (epoch bump)."""
        effects = []
        for entry in self.entries.values():
            if entry.state is TransactionState.ONGOING and now - entry.started >= entry.timeout_ms:
                effects.append(self._end(entry, commit=False))
                self._bump(entry)
        return effects
