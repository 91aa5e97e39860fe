"""Records drained for one-at-a-time iteration, handed out one by one.

``async for record in consumer`` (on the event loop) and the sync facade's ``for record in
consumer`` and ``getone()`` (on the application's thread) take records from one
:class:`Handout`: the loop drains a chunk with ``getmany`` and :meth:`Handout.load` keeps
it; :meth:`take` then hands records out without awaiting, so the sync facade makes one
portal hop per chunk instead of one per record.

What ``commit()`` commits is the partition's position, so the position must only ever
cover records actually handed out: :meth:`load` rewinds each partition's position to its
chunk's first record, and :meth:`take` moves it past each record as it goes, to the
chunk's final position (and leader epoch) with the last one. A record is handed out only
while its partition is still current for the chunk (same staleness epoch: not sought,
reset, revoked or lost since) and neither paused nor waiting for its revocation, so a
seek, pause or rebalance is honoured at the very next record.

Threads. Under the sync facade (:meth:`Handout.share`), ``take`` runs on the application's
thread(s) while the loop's driver tasks run; both sides change ``position``. Every change
then goes under the subscription's lock (``SubscriptionState.lock``, also held by
``seek``), so a take either completes before a seek (which then wins) or sees the new
staleness epoch and stops: a record is never handed out for a position that a seek has
already replaced. The lock is held for a few attribute writes only, never across an
await. ``async for`` alone takes on the loop thread, where nothing can interleave with a
take, so its takes skip the lock (about 150 ns a record); the loop-side changes here
(load, take_rest, give_back, clear) always hold it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from kclient.consumer.subscription import PartitionState, SubscriptionState
from kclient.structs import ConsumerRecord, TopicPartition

__all__ = ["Handout"]

# (partition state, its staleness epoch when drained, records, final position, its epoch)
_Chunk = tuple[PartitionState, int, list[ConsumerRecord[Any, Any]], int, int]


def _live(state: PartitionState, epoch: int) -> bool:
    return state.epoch == epoch and not state.paused and not state.pending_revocation


class Handout:
    """Chunks of drained records, in drain order, and how far the first one is handed out."""

    def __init__(self, subscriptions: SubscriptionState) -> None:
        self._subs = subscriptions
        self._lock = subscriptions.lock
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._chunks: deque[_Chunk] = deque()
        self._idx = 0  # next record of self._chunks[0]
        # The next record, or None. Lock-free while only the event loop takes (async
        # for): its own seeks cannot interleave with a take. See share().
        self.take: Callable[[], ConsumerRecord[Any, Any] | None] = self._take

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def load(self, drained: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Keep one ``getmany`` result for :meth:`take` (loop thread, right after the
        drain). ``getmany`` moved each position past its records; rewind it to the first
        so a commit covers none of them until they are handed out."""
        with self._lock:
            for tp, records in drained.items():
                state = self._subs.state(tp)
                final, final_epoch = state.position, state.position_epoch
                assert final is not None  # the drain just delivered up to it
                state.position = records[0].offset
                self._chunks.append((state, state.epoch, records, final, final_epoch))

    def share(self) -> None:
        """Records will be taken on other threads too (the sync facade): from now on
        :meth:`take` holds the lock. Called once, before the first record is loaded."""
        self.take = self._take_locked

    def _take_locked(self) -> ConsumerRecord[Any, Any] | None:
        self._acquire()
        try:
            return self._take()
        finally:
            self._release()

    def _take(self) -> ConsumerRecord[Any, Any] | None:
        """The next record to hand out, moving its partition's position past it; None once
        nothing handed-out-able is left (chunks of stale partitions are skipped). The
        per-record path of both iterators, hence the inlined checks."""
        chunks = self._chunks
        while chunks:
            state, epoch, records, final, final_epoch = chunks[0]
            idx = self._idx
            if (
                idx < len(records)
                and state.epoch == epoch
                and not state.paused
                and not state.pending_revocation
            ):
                record = records[idx]
                self._idx = idx = idx + 1
                if idx == len(records):
                    state.position, state.position_epoch = final, final_epoch
                else:
                    state.position = record.offset + 1
                return record
            chunks.popleft()
            self._idx = 0
        return None

    def take_rest(self) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Everything not handed out yet, by partition, for a ``getmany`` that follows a
        partly consumed ``async for``; positions move to each chunk's final one."""
        out: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        with self._lock:
            start = self._idx
            for state, epoch, records, final, final_epoch in self._chunks:
                rest = records[start:]
                start = 0
                if rest and _live(state, epoch):
                    out.setdefault(rest[0].topic_partition, []).extend(rest)
                    state.position, state.position_epoch = final, final_epoch
            self._chunks.clear()
            self._idx = 0
        return out

    def give_back(self) -> list[TopicPartition]:
        """Empty the hand-out (seek, pause, assignment change). Returns the partitions
        still current whose records were not all handed out: their position points at the
        first of those, so the caller seeks there to have them fetched again."""
        out: list[TopicPartition] = []
        with self._lock:
            start = self._idx
            for state, epoch, records, _, _ in self._chunks:
                if start < len(records) and state.epoch == epoch:
                    out.append(records[0].topic_partition)
                start = 0
            self._chunks.clear()
            self._idx = 0
        return out

    def clear(self) -> None:
        """Drop every chunk (closing): positions already cover exactly what was taken."""
        with self._lock:
            self._chunks.clear()
            self._idx = 0
