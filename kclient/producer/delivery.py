"""DeliveryFuture: the handle ``send`` returns, and the batch outcome it reads.

The futures of one batch share a single :class:`Outcome`, so completing a
batch is O(1) however many records it holds; ``RecordMetadata`` is only built
when someone asks for it. A future is a small handle (outcome, index,
timestamp) that nothing else keeps: a caller who drops it frees it at once, so
fire-and-forget sending leaves no per-record objects behind.

An outcome resolves exactly once (a second resolve raises: it would be a
Sender bug). A split outcome never resolves: it forwards (indexes below the
middle to the first half's outcome, the rest, re-indexed, to the second's) and
every future follows the forwarding on its next use, so each record belongs to
exactly one live outcome and every future resolves exactly once.

Awaiting a future does not need an event loop at creation time: the
``anyio.Event`` is created lazily by the first awaiter, inside its loop.
Cancelling an ``await`` only stops that waiter; the record is still delivered
(or failed) and the future still resolves: a delivery cannot be withdrawn once
accepted (reliability.md P2c).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterator, Sequence
from enum import Enum
from itertools import repeat
from typing import Any, overload

import anyio

from kclient.structs import RecordMetadata

__all__ = [
    "DeliveryFuture",
    "DeliveryFutures",
    "DeliveryState",
    "DoneCallback",
    "IllegalBatchTransition",
    "Outcome",
]

log = logging.getLogger("kclient.producer")


class DeliveryState(Enum):
    """How a record's delivery ended (or that it has not yet)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    NOT_PERSISTED = "not_persisted"  # the broker definitely did not write it
    POSSIBLY_PERSISTED = "possibly_persisted"  # it may be in the log: do not blindly resend


class IllegalBatchTransition(RuntimeError):
    """A batch was asked to move where its lifecycle does not allow (a Sender bug)."""


DoneCallback = Callable[["DeliveryFuture"], object]


class Outcome:
    """The shared result of the records of one batch; resolves exactly once.

    ``forward`` is set instead when the batch is split: (middle, first half's
    outcome, second half's outcome); see :meth:`DeliveryFuture._follow`.
    """

    __slots__ = (
        "base_offset",
        "callbacks",
        "error",
        "event",
        "forward",
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
        self.forward: tuple[int, Outcome, Outcome] | None = None

    def resolve(
        self,
        state: DeliveryState,
        base_offset: int,
        log_append_time: int,
        error: BaseException | None,
    ) -> None:
        if self.state is not DeliveryState.PENDING or self.forward is not None:
            raise IllegalBatchTransition(f"outcome already {self.state.value} (or split)")
        self.state = state
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.error = error
        self.wake()
        callbacks, self.callbacks = self.callbacks, None
        for future, callback in callbacks or ():
            _run_callback(future, callback)

    def split_into(self, middle: int, first: Outcome, second: Outcome) -> None:
        """Forward to the halves; callbacks move there, waiters wake and follow."""
        if self.state is not DeliveryState.PENDING or self.forward is not None:
            raise IllegalBatchTransition(f"outcome already {self.state.value} (or split)")
        self.forward = (middle, first, second)
        callbacks, self.callbacks = self.callbacks, None
        for future, callback in callbacks or ():
            future.add_done_callback(callback)  # registers on the half it now follows
        self.wake()

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

    def __init__(self, outcome: Outcome, index: int, timestamp: int) -> None:
        self._outcome = outcome
        self._index = index  # offset delta inside the batch
        self.timestamp = timestamp

    def _follow(self) -> Outcome:
        """The live outcome of this record, after any splits of its batch."""
        outcome = self._outcome
        if outcome.forward is None:
            return outcome
        index = self._index
        while outcome.forward is not None:
            middle, first, second = outcome.forward
            if index < middle:
                outcome = first
            else:
                outcome, index = second, index - middle
        self._outcome, self._index = outcome, index  # later calls start here
        return outcome

    def done(self) -> bool:
        return self._follow().state is not DeliveryState.PENDING

    @property
    def state(self) -> DeliveryState:
        return self._follow().state

    def result(self) -> RecordMetadata:
        """The metadata; raises the delivery error, or RuntimeError if still pending."""
        outcome = self._follow()
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
        outcome = self._follow()
        if outcome.state is not DeliveryState.PENDING:
            _run_callback(self, callback)
        elif outcome.callbacks is None:
            outcome.callbacks = [(self, callback)]
        else:
            outcome.callbacks.append((self, callback))

    async def wait(self) -> RecordMetadata:
        # Loop: a split wakes the old outcome's waiters without resolving them;
        # they then follow the forwarding and wait on their half.
        while (outcome := self._follow()).state is DeliveryState.PENDING:
            if outcome.event is None:
                outcome.event = anyio.Event()
            await outcome.event.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        o = self._follow()
        return f"<DeliveryFuture {o.topic}-{o.partition}[{self._index}] {o.state.value}>"


class DeliveryFutures(Sequence[DeliveryFuture]):
    """The futures ``send_many`` returns, one per record in send order, each made when
    it is read (indexing or iterating; a new handle per read, on the same delivery).

    A bulk call adds whole runs (one batch's consecutive records), so it costs a few
    tuples per batch instead of an object per record that the caller mostly drops
    (and that the cyclic GC would otherwise scan). ``+`` with a list or another
    ``DeliveryFutures`` gives a list.
    """

    __slots__ = ("_ends", "_runs")

    def __init__(self) -> None:
        self._runs: list[tuple[Outcome, int, int]] = []  # (outcome, first index, timestamp)
        self._ends: list[int] = []  # records up to and including each run

    def add_run(self, outcome: Outcome, first: int, count: int, timestamp: int) -> None:
        """Append ``count`` records of ``outcome``'s batch from index ``first`` on."""
        if count > 0:
            self._runs.append((outcome, first, timestamp))
            self._ends.append((self._ends[-1] if self._ends else 0) + count)

    def add(self, future: DeliveryFuture) -> None:
        self.add_run(future._outcome, future._index, 1, future.timestamp)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> DeliveryFuture: ...
    @overload
    def __getitem__(self, index: slice) -> list[DeliveryFuture]: ...
    def __getitem__(self, index: int | slice) -> DeliveryFuture | list[DeliveryFuture]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        position = index + size if index < 0 else index
        if not 0 <= position < size:
            raise IndexError("DeliveryFutures index out of range")
        run = bisect_right(self._ends, position)
        outcome, first, timestamp = self._runs[run]
        start = self._ends[run - 1] if run else 0
        return DeliveryFuture(outcome, first + position - start, timestamp)

    def __iter__(self) -> Iterator[DeliveryFuture]:
        start = 0
        for (outcome, first, timestamp), end in zip(self._runs, self._ends, strict=True):
            count = end - start
            yield from map(DeliveryFuture, repeat(outcome, count), range(first, first + count),
                           repeat(timestamp, count))  # fmt: skip
            start = end

    def __add__(self, other: Sequence[DeliveryFuture]) -> list[DeliveryFuture]:
        return [*self, *other]

    def __radd__(self, other: Sequence[DeliveryFuture]) -> list[DeliveryFuture]:
        return [*other, *self]

    def __repr__(self) -> str:
        return f"<DeliveryFutures of {len(self)} records in {len(self._runs)} runs>"
