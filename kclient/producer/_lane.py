"""Lanes: the producer's ``send`` fast path into one open batch.

A lane is a reservation on the open batch of one partition. When it opens, the
accumulator charges its whole *credit* (the bytes the lane may still take: the
batch's room, the buffer's room, the sticky stint's rest and the size guard,
whichever is least) to the batch's ``size`` and to the buffer at once. While it
is live, a keyless ``bytes`` record costs the producer one subtraction from the
credit and one ``list.append``: no accumulator call, no encoding, no counter
updates. The records are encoded when the lane is flushed: once per millisecond
(:meth:`Lane.restamp`, all pending values share one timestamp, so the run is one
C-level join) and when the lane is settled.

Settling (:meth:`Lane.settle`) encodes what is pending, gives the unused credit
back to the batch and the buffer, counts the used bytes for the sticky
partitioner and kills the lane (credit -1, which every record's check refuses).
The accumulator settles a lane before anything else reads or changes its batch:
a general ``append`` to the partition, a drain, a failure or any state change of
the batch (``ProducerBatch._transition_to``), buffer refusals and inspection. So
every view of the accumulator outside the fast path is either exact or (the
buffer and the batch size while a lane is live) an upper bound, never an
undercount.

Why reserve instead of counting per record: the three counters (batch size,
buffer, sticky bytes) and the encoding were most of ``send``'s cost per record.
The reservation keeps their limits exact (the fast path refuses exactly where
the general path would start a batch, fill one, overflow the buffer or end the
stint) while the counting happens once per lane.

Memory: pending values are the caller's ``bytes`` objects, held for at most a
millisecond of ``send`` calls and at most the credit in estimated bytes; the
per-object overhead beyond the estimate is a fixed cost, not a growing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kclient.producer.batch import RECORD_OVERHEAD

if TYPE_CHECKING:
    from kclient.producer.accumulator import RecordAccumulator
    from kclient.producer.batch import ProducerBatch
    from kclient.producer.delivery import Outcome

__all__ = ["ByteCounter", "Lane", "open_lane"]

_DEAD = -1  # a settled lane's credit: every record's size check refuses it


class ByteCounter(Protocol):
    """Where a lane counts its bytes when it settles (the sticky partitioner's
    :class:`~kclient.producer.partitioner.StickyState`)."""

    produced: int


class Lane:
    """A live reservation on one open batch (module docstring).

    The fast path reads and writes ``credit``, ``timestamp``, ``values``,
    ``outcome`` and ``base`` directly; a record joins when its estimated size
    (``RECORD_OVERHEAD + len(value)``) fits ``credit``. Its index in the batch is
    ``base + len(values)`` after its value was appended to ``values``.
    """

    __slots__ = (
        "_acc",
        "_counter",
        "_reserved",
        "base",
        "batch",
        "credit",
        "outcome",
        "timestamp",
        "values",
    )

    def __init__(self, acc: RecordAccumulator, batch: ProducerBatch, credit: int,
                 counter: ByteCounter, timestamp: int) -> None:  # fmt: skip
        self._acc = acc
        self._counter = counter
        self._reserved = credit
        self.batch = batch
        self.credit = credit
        self.outcome: Outcome = batch.outcome
        self.base = batch.count - 1
        self.timestamp = timestamp
        self.values: list[bytes] = []

    @property
    def live(self) -> bool:
        return self.credit >= 0

    def restamp(self, timestamp: int) -> None:
        """The clock moved on: encode what is pending, then take ``timestamp``."""
        self._flush()
        self.timestamp = timestamp

    def _flush(self) -> None:
        values = self.values
        if not values:
            return
        batch = self.batch
        writer = batch.writer
        assert writer is not None  # a live lane's batch is appendable, so it has one
        timestamp = self.timestamp
        if not writer.extend_values(timestamp, values):
            append = writer.append
            for value in values:
                append(timestamp, None, value, ())
        count = len(values)
        batch.count += count
        self.base += count
        self.values = []

    def settle(self) -> None:
        """Encode what is pending, return the unused credit, count the used bytes
        and end the lane. A settled lane stays settled (a second call does nothing)."""
        unused = self.credit
        if unused < 0:
            return
        self._flush()
        self.credit = _DEAD
        batch = self.batch
        batch.lane = None
        batch.size -= unused
        self._acc._release_lane_credit(batch, self._reserved - unused, unused, self._counter)


def open_lane(acc: RecordAccumulator, tp: tuple[str, int], counter: ByteCounter,
              stint_left: int, guard: int, timestamp: int) -> Lane | None:  # fmt: skip
    """``RecordAccumulator.open_lane``: a lane on ``tp``'s open batch for a sticky
    stint with ``stint_left`` bytes to go (as the partitioner counts them), for
    records of at most ``guard`` estimated bytes each; None when there is no open
    batch or too little room to take a record."""
    part = acc._parts.get(tp)
    batch = part.open if part is not None else None
    if batch is None or not batch.appendable or batch.writer is None:
        return None
    if batch.lane is not None:
        batch.lane.settle()
    capacity, batch_size = batch.capacity, acc._batch_size
    if capacity != batch_size:  # compressed: the stint counts estimated wire bytes
        stint_left = stint_left * capacity // batch_size
    # Each limit as the general path applies it: a record that would fill the
    # batch (size reaching capacity), overflow the buffer or end the stint (its
    # count reaching the stint's bytes) must take the general path.
    credit = min(capacity - batch.size - 1, acc._buffer_memory - acc._used, stint_left - 1, guard)
    if credit < RECORD_OVERHEAD:
        return None
    batch.size += credit
    acc._used += credit
    lane = batch.lane = Lane(acc, batch, credit, counter, timestamp)
    return lane
