"""ProducerBatch: the records bound for one partition, their futures and lifecycle.

Theory of operation
-------------------
A batch is created by the accumulator when a record does not fit the open
batch of its partition. Appending encodes the record at once into the batch's
:class:`~protocol.records.writer.RecordsWriter` buffer and bumps a size
estimate, so a queued record holds its encoded bytes and nothing else (no
per-record tuple or future is kept, no reference to the caller's value): that
is what makes ``buffer_memory`` a bound on memory, not just on a count. At
drain time :meth:`ProducerBatch.build` packs the header (and compresses) once
through a :class:`BatchEncoder` and drops the writer; a retry under a new
epoch or sequence restamps the header of the built bytes. Splitting
(MESSAGE_TOO_LARGE, rare) decodes the built bytes and re-encodes two halves.

Lifecycle (``BatchState``, legal moves in ``_TRANSITIONS``)::

    QUEUED ──drain──> IN_FLIGHT ──ok────────────> SUCCEEDED
      ^  │               │ ├────definitive error──> FAILED_NOT_PERSISTED
      │  │               │ ├────ambiguous/expired─> FAILED_POSSIBLY_PERSISTED
      │  │               │ └────too large─────────> SPLIT (records move to two new batches)
      │  └─expired/abort─┼──────────────────────> FAILED_*
      └────retry─────────┘

Every record gets a :class:`DeliveryFuture` (``delivery.py``), a handle on the
batch's shared outcome that the batch itself does not keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import anyio

from kclient.producer.delivery import (
    DeliveryFuture,
    DeliveryState,
    IllegalBatchTransition,
    Outcome,
)
from protocol.records import Codec, RecordBatch, read_batches, rewrite_batch_header
from protocol.records.writer import RecordsWriter

if TYPE_CHECKING:
    from kclient.producer._lane import Lane

__all__ = [
    "BATCH_OVERHEAD",
    "RECORD_OVERHEAD",
    "BatchEncoder",
    "BatchState",
    "DeliveryFuture",
    "DeliveryState",
    "Headers",
    "IllegalBatchTransition",
    "ProducerBatch",
    "Record",
    "estimate_record_size",
    "headers_size",
    "records_encoder",
]

Headers = Sequence[tuple[str, bytes | None]]
# (timestamp_ms, key, value, headers) exactly as handed to append().
Record = tuple[int, bytes | None, bytes | None, Headers]

SEQUENCE_MASK = 0x7FFFFFFF  # sequences are int32 >= 0 and wrap to 0 after 2**31 - 1

# Size of a v2 RecordBatch header (baseOffset .. recordCount), bytes.
BATCH_OVERHEAD = 61
# Per-record framing beyond key and value bytes, as an upper bound for fields
# under 2 MiB: length 3 + attributes 1 + timestamp delta 3 + offset delta 3 +
# key length 3 + value length 3 + header count 1. An estimate that never
# undercounts much keeps batches under batch_size without encoding anything.
RECORD_OVERHEAD = 17
HEADER_OVERHEAD = 6  # key length 3 + value length 3


def estimate_record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """Upper-bound estimate of the encoded size of one record (uncompressed)."""
    size = RECORD_OVERHEAD
    if key is not None:
        size += len(key)
    if value is not None:
        size += len(value)
    return size + headers_size(headers) if headers else size


def headers_size(headers: Headers) -> int:
    """The headers' share of :func:`estimate_record_size`."""
    size = 0
    for hkey, hvalue in headers:
        size += len(hkey.encode()) + HEADER_OVERHEAD + (len(hvalue) if hvalue else 0)
    return size


class BatchEncoder(Protocol):
    """Finishes one RecordBatch v2: header packing and compression.

    The records are already encoded in ``writer``; offset deltas are the record
    indexes and the base timestamp is the first record's. Compression is the
    encoder's business (it is bound at creation).
    """

    def __call__(
        self,
        writer: RecordsWriter,
        *,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        transactional: bool,
    ) -> bytes: ...


def records_encoder(codec: Codec | int = Codec.NONE, level: int | None = None) -> BatchEncoder:
    """The production :class:`BatchEncoder`: ``RecordsWriter.finish`` with ``codec``."""

    def encode(
        writer: RecordsWriter,
        *,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        transactional: bool,
    ) -> bytes:
        return writer.finish(
            codec=codec,
            level=level,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            is_transactional=transactional,
        )

    return encode


class BatchState(Enum):
    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED_NOT_PERSISTED = "failed_not_persisted"
    FAILED_POSSIBLY_PERSISTED = "failed_possibly_persisted"
    SPLIT = "split"


_TERMINAL = frozenset(
    {
        BatchState.SUCCEEDED,
        BatchState.FAILED_NOT_PERSISTED,
        BatchState.FAILED_POSSIBLY_PERSISTED,
        BatchState.SPLIT,
    }
)
_FAILED = frozenset({BatchState.FAILED_NOT_PERSISTED, BatchState.FAILED_POSSIBLY_PERSISTED})

_TRANSITIONS: dict[BatchState, frozenset[BatchState]] = {
    BatchState.QUEUED: frozenset({BatchState.IN_FLIGHT} | _FAILED),
    BatchState.IN_FLIGHT: frozenset({BatchState.QUEUED} | _TERMINAL),
    BatchState.SUCCEEDED: frozenset(),
    BatchState.FAILED_NOT_PERSISTED: frozenset(),
    BatchState.FAILED_POSSIBLY_PERSISTED: frozenset(),
    BatchState.SPLIT: frozenset(),
}

_FAILED_STATE = {
    DeliveryState.NOT_PERSISTED: BatchState.FAILED_NOT_PERSISTED,
    DeliveryState.POSSIBLY_PERSISTED: BatchState.FAILED_POSSIBLY_PERSISTED,
}


class ProducerBatch:
    """Records for one partition, sent and acknowledged as a unit."""

    __slots__ = (
        "_built",
        "_built_for",
        "_children",
        "appendable",
        "attempts",
        "base_sequence",
        "capacity",
        "charged",
        "count",
        "created_ms",
        "lane",
        "order",
        "outcome",
        "partition",
        "possibly_persisted",
        "producer_epoch",
        "producer_id",
        "records_size",
        "retry_at_ms",
        "size",
        "state",
        "topic",
        "tp",
        "wire_records_size",
        "writer",
    )

    def __init__(
        self, tp: tuple[str, int], created_ms: float, capacity: int, order: tuple[int, ...]
    ) -> None:
        self.tp = tp
        self.topic, self.partition = tp
        self.created_ms = created_ms
        self.capacity = capacity
        self.order = order  # position in the partition's send order (splits extend it)
        self.size = BATCH_OVERHEAD  # estimated (upper bound), what the buffer is charged
        self.count = 0  # records appended
        # The records, encoded as they arrive; None once built (the bytes live on there).
        self.writer: RecordsWriter | None = RecordsWriter()
        self.records_size = 0  # encoded records bytes, uncompressed (set at build)
        self.wire_records_size = 0  # the same after compression (set at build)
        self.outcome = Outcome(self.topic, self.partition)
        self.state = BatchState.QUEUED
        self.appendable = True  # only the newest QUEUED batch of a partition, never sent
        self.charged = True  # `size` bytes are counted in the accumulator's buffer
        self.attempts = 0  # times sent
        self.retry_at_ms = 0.0
        self.possibly_persisted = False  # some attempt may have reached the log
        self.producer_id = -1
        self.producer_epoch = -1
        self.base_sequence = -1  # -1: no sequence assigned yet
        self._built: bytes | None = None
        self._built_for: tuple[int, int, int, bool] | None = None
        self._children: tuple[ProducerBatch, ...] = ()  # the halves, once split
        # send's fast path into this batch while it is open (see _lane.py): its records
        # and bytes are counted here only when it settles, which everything else
        # that reads or changes the batch makes it do first.
        self.lane: Lane | None = None

    # -- appending (hot path) -------------------------------------------------

    def try_append(
        self,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        size: int,
    ) -> DeliveryFuture | None:
        """Add a record of estimated ``size``; None (and closed) if it does not fit.

        The first record always fits, so a record larger than the capacity gets
        a batch of its own.
        """
        if self.lane is not None:
            self.lane.settle()
        count = self.count
        if count and self.size + size > self.capacity:
            self.appendable = False
            return None
        writer = self.writer
        if writer is None or not self.appendable:
            raise IllegalBatchTransition(f"batch {self.topic}-{self.partition} is closed")
        writer.append(timestamp, key, value, headers)
        self.count = count + 1
        self.size += size
        return DeliveryFuture(self.outcome, count, timestamp)

    # -- inspection -----------------------------------------------------------

    @property
    def record_count(self) -> int:
        return self.count

    @property
    def done(self) -> bool:
        return self.state in _TERMINAL

    @property
    def is_full(self) -> bool:
        return not self.appendable or self.size >= self.capacity

    @property
    def outcome_state(self) -> DeliveryState:
        return self.outcome.state

    @property
    def records(self) -> list[Record]:
        """The records as ``(timestamp, key, value, headers)``, decoded from the
        batch's bytes: for splitting, inspection and tests, not for hot paths.
        Empty once the batch has resolved (its bytes are gone)."""
        if self.lane is not None:
            self.lane.settle()
        data = self._built
        if data is None:
            if self.writer is None or not self.count:
                return []
            data = self.writer.finish()
        (batch,) = read_batches(data)
        assert isinstance(batch, RecordBatch)  # written by us: always v2
        return [(r.timestamp, r.key, r.value, tuple(r.headers)) for r in batch.records()]

    @property
    def compression_ratio(self) -> float:
        """Wire / uncompressed size of the records at the last build (1.0 before)."""
        if not self.records_size:
            return 1.0
        return self.wire_records_size / self.records_size

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record (wrapping), or -1 with no sequence."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.count - 1) & SEQUENCE_MASK

    async def wait(self) -> None:
        """Return once every record of the batch has resolved (for flush); never raises."""
        while self.state not in _TERMINAL:
            outcome = self.outcome
            if outcome.event is None:
                outcome.event = anyio.Event()
            await outcome.event.wait()
        for child in self._children:
            await child.wait()

    # -- lifecycle ------------------------------------------------------------

    def _transition_to(self, new: BatchState) -> None:
        if self.lane is not None:
            self.lane.settle()  # its records belong to the batch before it moves on
        if new not in _TRANSITIONS[self.state]:
            raise IllegalBatchTransition(
                f"batch {self.topic}-{self.partition}: {self.state.value} -> {new.value}"
            )
        self.state = new
        self.appendable = False  # only a batch never drained or failed takes records

    def set_producer_state(self, producer_id: int, epoch: int, base_sequence: int) -> None:
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.base_sequence = base_sequence

    def clear_sequence(self) -> None:
        """Forget pid/epoch/sequence so the next drain assigns fresh ones (epoch bump)."""
        self.set_producer_state(-1, -1, -1)

    def mark_in_flight(self) -> None:
        self._transition_to(BatchState.IN_FLIGHT)
        self.appendable = False
        self.attempts += 1

    def mark_queued(self, retry_at_ms: float) -> None:
        self._transition_to(BatchState.QUEUED)
        self.retry_at_ms = retry_at_ms

    def succeed(self, base_offset: int, log_append_time: int) -> None:
        self._transition_to(BatchState.SUCCEEDED)
        self._release_records()
        self.outcome.resolve(DeliveryState.SUCCEEDED, base_offset, log_append_time, None)

    def fail(self, error: BaseException, state: DeliveryState) -> None:
        self._transition_to(_FAILED_STATE[state])
        self._release_records()
        self.outcome.resolve(state, -1, -1, error)

    def _release_records(self) -> None:
        # Resolved: neither the encoded records nor the wire bytes are needed again
        # (count and the sequence fields stay for the idempotence bookkeeping).
        self._built = None
        self.writer = None

    # -- encoding -------------------------------------------------------------

    def build(self, encoder: BatchEncoder, *, transactional: bool = False) -> bytes:
        """The wire bytes for the current producer state (cached across retries).

        The first build closes the batch to appends and drops the writer: from
        then on the built bytes are the only copy of the records.
        """
        key = (self.producer_id, self.producer_epoch, self.base_sequence, transactional)
        if self._built is not None:
            if self._built_for != key:
                # Retried under a new epoch/sequence: restamp the header (one copy
                # and a CRC) instead of encoding and compressing again.
                self._built = rewrite_batch_header(
                    self._built,
                    producer_id=self.producer_id,
                    producer_epoch=self.producer_epoch,
                    base_sequence=self.base_sequence,
                    is_transactional=transactional,
                )
                self._built_for = key
            return self._built
        if self.lane is not None:
            self.lane.settle()
        writer = self.writer
        if writer is None:
            raise IllegalBatchTransition(f"batch {self.topic}-{self.partition} has no records")
        built = encoder(
            writer,
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            base_sequence=self.base_sequence,
            transactional=transactional,
        )
        self.records_size = writer.records_size
        self.wire_records_size = len(built) - BATCH_OVERHEAD
        self._built, self._built_for, self.writer = built, key, None
        self.appendable = False
        return built

    # -- splitting ------------------------------------------------------------

    def split(self) -> tuple[ProducerBatch, ProducerBatch]:
        """Retire this IN_FLIGHT batch into two halves, order and futures kept.

        The halves keep the producer id and epoch and cover the same sequence
        range (first half from ``base_sequence``), which is safe because the
        broker rejected the whole batch (MESSAGE_TOO_LARGE writes nothing).
        The records come back from the built bytes (see :attr:`records`).
        """
        count = self.count
        if count < 2:
            raise ValueError("cannot split a batch of fewer than two records")
        records = self.records
        self._transition_to(BatchState.SPLIT)
        middle = count // 2
        halves = (
            self._half(records[:middle], (0,)),
            self._half(records[middle:], (1,)),
        )
        if self.base_sequence >= 0:
            second_base = (self.base_sequence + middle) & SEQUENCE_MASK
            halves[1].set_producer_state(self.producer_id, self.producer_epoch, second_base)
        self._children = halves
        self._built = None
        self.writer = None
        self.outcome.split_into(middle, halves[0].outcome, halves[1].outcome)
        return halves

    def _half(self, records: Sequence[Record], suffix: tuple[int, ...]) -> ProducerBatch:
        half = ProducerBatch(self.tp, self.created_ms, self.capacity, self.order + suffix)
        writer = half.writer
        assert writer is not None  # a new batch always has one
        for timestamp, key, value, headers in records:
            writer.append(timestamp, key, value, headers)
            half.size += estimate_record_size(key, value, headers)
        half.count = len(records)
        half.appendable = False
        half.attempts = self.attempts
        half.possibly_persisted = self.possibly_persisted
        half.set_producer_state(self.producer_id, self.producer_epoch, self.base_sequence)
        return half
