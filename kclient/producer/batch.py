"""ProducerBatch: the records bound for one partition, their futures and lifecycle.

Theory of operation
-------------------
A batch is created by the accumulator when a record does not fit the open
batch of its partition. Appending stores the record *unencoded* (a tuple of
references to the caller's bytes) and bumps a size estimate; encoding happens
once, at drain time, through a :class:`BatchEncoder` (the adapter to
``protocol.records``). Keeping append to "append a tuple, add an int" is what
makes the per-record path cheap, and keeping the records unencoded makes
splitting (MESSAGE_TOO_LARGE) and re-stamping a new producer epoch trivial.

Lifecycle (``BatchState``, legal moves in ``_TRANSITIONS``)::

    QUEUED ──drain──> IN_FLIGHT ──ok────────────> SUCCEEDED
      ^  │               │ ├────definitive error──> FAILED_NOT_PERSISTED
      │  │               │ ├────ambiguous/expired─> FAILED_POSSIBLY_PERSISTED
      │  │               │ └────too large─────────> SPLIT (records move to two new batches)
      │  └─expired/abort─┼──────────────────────> FAILED_*
      └────retry─────────┘

Every record gets a :class:`DeliveryFuture`. The futures of one batch share a
single :class:`_Outcome`, so completing a batch is O(1) however many records
it holds; ``RecordMetadata`` is only built when someone asks for it. An outcome
resolves exactly once (a second resolve raises: it would be a Sender bug), and
a record belongs to exactly one live outcome (splitting re-points the futures
before the old batch is retired), so every future resolves exactly once.

Awaiting a future does not need an event loop at creation time: the
``anyio.Event`` is created lazily by the first awaiter, inside its loop.
Cancelling an ``await`` only stops that waiter; the record is still delivered
(or failed) and the future still resolves: a delivery cannot be withdrawn once
accepted (reliability.md P2c).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from enum import Enum
from typing import Any, Protocol

import anyio

from kclient.structs import RecordMetadata
from protocol.records import BatchBuilder, Codec, rewrite_batch_header

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

log = logging.getLogger("kclient.producer")

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
    """Adapter to ``protocol.records``: encode one RecordBatch v2 to bytes.

    Offsets deltas are the record indexes; the base timestamp is the first
    record's. Compression is the encoder's business (it is bound at creation).
    """

    def __call__(
        self,
        records: Sequence[Record],
        *,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        transactional: bool,
    ) -> bytes: ...


def records_encoder(codec: Codec | int = Codec.NONE, level: int | None = None) -> BatchEncoder:
    """The production :class:`BatchEncoder`: ``protocol.records.build_batch``."""

    def encode(
        records: Sequence[Record],
        *,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        transactional: bool,
    ) -> bytes:
        # Our 4-tuples have NewRecord's layout, so the builder takes them as they are,
        # all in one call (extend keeps its state in locals across the loop).
        builder = BatchBuilder(
            codec=codec,
            compression_level=level,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            is_transactional=transactional,
        )
        builder.extend(records)
        return builder.build()

    return encode


class DeliveryState(Enum):
    """How a record's delivery ended (or that it has not yet)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    NOT_PERSISTED = "not_persisted"  # the broker definitely did not write it
    POSSIBLY_PERSISTED = "possibly_persisted"  # it may be in the log: do not blindly resend


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


class IllegalBatchTransition(RuntimeError):
    """A batch was asked to move where its lifecycle does not allow (a Sender bug)."""


DoneCallback = Callable[["DeliveryFuture"], object]


class _Outcome:
    """The shared result of the records of one batch; resolves exactly once."""

    __slots__ = (
        "base_offset",
        "callbacks",
        "error",
        "event",
        "log_append_time",
        "partition",
        "state",
        "topic",
    )

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.state = DeliveryState.PENDING
        self.base_offset = -1
        self.log_append_time = -1
        self.error: BaseException | None = None
        self.event: anyio.Event | None = None
        self.callbacks: list[tuple[DeliveryFuture, DoneCallback]] | None = None

    def resolve(
        self,
        state: DeliveryState,
        base_offset: int,
        log_append_time: int,
        error: BaseException | None,
    ) -> None:
        if self.state is not DeliveryState.PENDING:
            raise IllegalBatchTransition(f"outcome already {self.state.value}")
        self.state = state
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.error = error
        self.wake()
        callbacks, self.callbacks = self.callbacks, None
        for future, callback in callbacks or ():
            _run_callback(future, callback)

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
            self.event = None


def _run_callback(future: DeliveryFuture, callback: DoneCallback) -> None:
    # Callbacks run inside the Sender; one raising must not stop deliveries.
    try:
        callback(future)
    except Exception:
        log.exception("delivery callback %r raised", callback)


class DeliveryFuture:
    """The pending result of one sent record: await it, poll it, or add callbacks.

    ``await future`` returns :class:`RecordMetadata` or raises the delivery
    error. ``state`` tells a failure that may have reached the log
    (POSSIBLY_PERSISTED) from one that certainly did not (NOT_PERSISTED).
    The records of one failed batch share one exception instance.
    """

    __slots__ = ("_index", "_outcome", "timestamp")

    def __init__(self, outcome: _Outcome, index: int, timestamp: int) -> None:
        self._outcome = outcome
        self._index = index  # offset delta inside the batch
        self.timestamp = timestamp

    def done(self) -> bool:
        return self._outcome.state is not DeliveryState.PENDING

    @property
    def state(self) -> DeliveryState:
        return self._outcome.state

    def result(self) -> RecordMetadata:
        """The metadata; raises the delivery error, or RuntimeError if still pending."""
        outcome = self._outcome
        if outcome.state is DeliveryState.SUCCEEDED:
            offset = outcome.base_offset + self._index if outcome.base_offset >= 0 else -1
            ts = outcome.log_append_time if outcome.log_append_time >= 0 else self.timestamp
            return RecordMetadata(outcome.topic, outcome.partition, offset, ts)
        if outcome.error is not None:
            # A fresh traceback per raise: the instance is shared by many records.
            raise outcome.error.with_traceback(None)
        raise RuntimeError("delivery not complete")

    def exception(self) -> BaseException | None:
        """The delivery error, None on success; RuntimeError if still pending."""
        if not self.done():
            raise RuntimeError("delivery not complete")
        return self._outcome.error

    def add_done_callback(self, callback: DoneCallback) -> None:
        """Call ``callback(future)`` once, when the delivery resolves (now, if it has)."""
        outcome = self._outcome
        if outcome.state is not DeliveryState.PENDING:
            _run_callback(self, callback)
        elif outcome.callbacks is None:
            outcome.callbacks = [(self, callback)]
        else:
            outcome.callbacks.append((self, callback))

    async def wait(self) -> RecordMetadata:
        # Loop: a split moves this record to a new outcome and wakes the old
        # one's waiters without resolving them; they then wait on the new one.
        while self._outcome.state is DeliveryState.PENDING:
            outcome = self._outcome
            if outcome.event is None:
                outcome.event = anyio.Event()
            await outcome.event.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        o = self._outcome
        return f"<DeliveryFuture {o.topic}-{o.partition}[{self._index}] {o.state.value}>"


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
        "created_ms",
        "futures",
        "order",
        "outcome",
        "partition",
        "possibly_persisted",
        "producer_epoch",
        "producer_id",
        "records",
        "retry_at_ms",
        "size",
        "state",
        "topic",
        "tp",
    )

    def __init__(
        self, tp: tuple[str, int], created_ms: float, capacity: int, order: tuple[int, ...]
    ) -> None:
        self.tp = tp
        self.topic, self.partition = tp
        self.created_ms = created_ms
        self.capacity = capacity
        self.order = order  # position in the partition's send order (splits extend it)
        self.size = BATCH_OVERHEAD
        self.records: list[Record] = []
        self.futures: list[DeliveryFuture] = []
        self.outcome = _Outcome(self.topic, self.partition)
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
        records = self.records
        if records and self.size + size > self.capacity:
            self.appendable = False
            return None
        future = DeliveryFuture(self.outcome, len(records), timestamp)
        records.append((timestamp, key, value, headers))
        self.futures.append(future)
        self.size += size
        return future

    # -- inspection -----------------------------------------------------------

    @property
    def record_count(self) -> int:
        return len(self.records)

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
    def last_sequence(self) -> int:
        """Sequence of the last record (wrapping), or -1 with no sequence."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + len(self.records) - 1) & SEQUENCE_MASK

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
        # The encoded copy is no longer needed once resolved. The records list
        # stays (record_count and last_sequence still matter to the
        # idempotence bookkeeping); the accumulator drops the batch soon after.
        self._built = None

    # -- encoding -------------------------------------------------------------

    def build(self, encoder: BatchEncoder, *, transactional: bool = False) -> bytes:
        """The wire bytes for the current producer state (cached across retries)."""
        key = (self.producer_id, self.producer_epoch, self.base_sequence, transactional)
        if self._built is not None and self._built_for != key:
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
        elif self._built is None:
            self._built = encoder(
                self.records,
                producer_id=self.producer_id,
                producer_epoch=self.producer_epoch,
                base_sequence=self.base_sequence,
                transactional=transactional,
            )
            self._built_for = key
        return self._built

    # -- splitting ------------------------------------------------------------

    def split(self) -> tuple[ProducerBatch, ProducerBatch]:
        """Retire this IN_FLIGHT batch into two halves, order and futures kept.

        The halves keep the producer id and epoch and cover the same sequence
        range (first half from ``base_sequence``), which is safe because the
        broker rejected the whole batch (MESSAGE_TOO_LARGE writes nothing).
        """
        count = len(self.records)
        if count < 2:
            raise ValueError("cannot split a batch of fewer than two records")
        self._transition_to(BatchState.SPLIT)
        middle = count // 2
        halves = (self._half(0, middle, (0,)), self._half(middle, count, (1,)))
        if self.base_sequence >= 0:
            second_base = (self.base_sequence + middle) & SEQUENCE_MASK
            halves[1].set_producer_state(self.producer_id, self.producer_epoch, second_base)
        self._children = halves
        self._move_callbacks()
        self.records, self.futures, self._built = [], [], None
        return halves

    def _half(self, start: int, stop: int, suffix: tuple[int, ...]) -> ProducerBatch:
        half = ProducerBatch(self.tp, self.created_ms, self.capacity, self.order + suffix)
        half.records = self.records[start:stop]
        half.futures = self.futures[start:stop]
        # Per-record sizes are not kept; share the estimate in proportion.
        share = (self.size - BATCH_OVERHEAD) * (stop - start) // len(self.records)
        half.size = BATCH_OVERHEAD + share
        half.appendable = False
        half.attempts = self.attempts
        half.possibly_persisted = self.possibly_persisted
        half.set_producer_state(self.producer_id, self.producer_epoch, self.base_sequence)
        for index, future in enumerate(half.futures):
            future._outcome = half.outcome
            future._index = index
        return half

    def _move_callbacks(self) -> None:
        old = self.outcome
        for future, callback in old.callbacks or ():
            future.add_done_callback(callback)  # now registers on the new outcome
        old.callbacks = None
        old.wake()  # waiters re-check and move to their new outcome
