"""RecordAccumulator: per-partition batch queues, buffer accounting, ready/drain/expire.

Theory of operation
-------------------
The facade calls :meth:`RecordAccumulator.append` once per record; it is encoded
into the open (newest) batch of its partition, or into a new batch when it does
not fit. A record larger than ``batch_size`` gets a batch of its own. A batch of
a compressed producer takes ``batch_size / ratio`` uncompressed bytes, ``ratio``
being the topic's estimated compression ratio (compression_ratio.py), so that it
is about ``batch_size`` on the wire. Every
appended byte (estimated, uncompressed) is charged against ``buffer_memory``;
when the charge would overflow, append returns None and the facade waits for
:attr:`on_space_freed` (up to ``max_block_ms``). Bytes are released when a
batch is resolved *and* no longer in flight.

``send``'s fast path bypasses ``append`` through a lane (``open_lane``, _lane.py): a
reservation charged to the open batch and the buffer up front, settled (records
encoded, unused bytes returned) before anything else reads or changes that batch.
While lanes are live, ``_used`` and the open batches' ``size`` are upper bounds.

The Sender task loops over the pure planners:

1. ``ready(leader_for, now)`` names the leaders that have something sendable
   (a full batch, linger expired, retry backoff over, flush/close/buffer
   pressure) and how long until the next batch becomes sendable.
2. ``drain(nodes, leader_for, max_request_size, now)`` takes, per node, at most
   one batch per partition (the head of its queue, so order is kept) until the
   request is full. Idempotent batches get their sequence here.
3. For each batch of each response the Sender asks the
   :class:`IdempotenceManager` for a decision and applies it here:
   ``complete`` / ``requeue`` / ``split`` / ``fail`` / ``release``.
4. ``expire(now, error_factory)`` fails batches past ``delivery_timeout_ms``.

The partitioner reads :meth:`RecordAccumulator.partition_loads` (batches queued
or in flight per partition) when its sticky choice moves: the accumulator
reports, the partitioner decides.

Per-partition sending rules, enforced by ``_can_drain`` (and mirrored by
``ready`` so that a blocked partition never makes its node look ready):

* at most ``max_in_flight`` batches of a partition in flight (1 with
  ``max_in_flight == 1``, which is how ordering is guaranteed without
  idempotence);
* all in-flight batches of a partition go to one node: after a leader move
  nothing is sent to the new leader until the old one's requests resolved
  (reliability.md P6);
* recovery mode: after a retry while other batches of the partition were in
  flight, one batch at a time until the retried batches are through
  (reliability.md 1.5 rule 2). Retried batches go back into the queue at their
  original position (``ProducerBatch.order``), so they are resent in order.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from kclient.config import ProducerConfig
from kclient.net.backoff import backoff_ms
from kclient.producer._bulk import append_values as _append_values
from kclient.producer._lane import ByteCounter, Lane
from kclient.producer._lane import open_lane as _open_lane
from kclient.producer.batch import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    BatchState,
    DeliveryFuture,
    DeliveryState,
    Headers,
    ProducerBatch,
    headers_size,
)
from kclient.producer.compression_ratio import CompressionRatioEstimator
from kclient.producer.idempotence import IdempotenceManager

__all__ = [
    "AccumulatorSettings",
    "ByteCounter",
    "ErrorFactory",
    "Lane",
    "LeaderFor",
    "ReadyResult",
    "RecordAccumulator",
]

TP = tuple[str, int]
# (topic, partition) -> leader node id, or None when unknown.
LeaderFor = Callable[[TP], "int | None"]
# Builds the exception a failed batch's futures raise.
ErrorFactory = Callable[[ProducerBatch, DeliveryState], BaseException]

_INF = float("inf")


class ReadyResult(NamedTuple):
    nodes: set[int]  # leaders with at least one sendable batch
    next_check_ms: float  # delay until something may become sendable (inf: nothing pending)
    unknown_leader_topics: set[str]  # topics to refresh metadata for


class AccumulatorSettings(NamedTuple):
    """The ProducerConfig keys the accumulator reads, copied once (attribute
    access on a frozen dataclass is slower than on locals)."""

    batch_size: int
    linger_ms: float
    buffer_memory: int
    delivery_timeout_ms: float
    retry_backoff_ms: float
    retry_backoff_max_ms: float
    max_in_flight: int
    compressed: bool = False  # batches are compressed: size them by the estimated ratio
    max_request_size: int = 1048576

    @classmethod
    def from_config(cls, config: ProducerConfig) -> AccumulatorSettings:
        return cls(
            # A batch larger than a request would be sent alone and over the limit.
            batch_size=min(config.batch_size, config.max_request_size),
            linger_ms=config.linger_ms,
            buffer_memory=config.buffer_memory,
            delivery_timeout_ms=config.delivery_timeout_ms,
            retry_backoff_ms=config.retry_backoff_ms,
            retry_backoff_max_ms=config.retry_backoff_max_ms,
            max_in_flight=config.max_in_flight_requests_per_connection,
            compressed=config.compression_type.lower() != "none",
            max_request_size=config.max_request_size,
        )


class _Partition:
    """Queue and in-flight bookkeeping of one partition."""

    __slots__ = ("batches", "inflight", "inflight_node", "next_order", "open", "recovering", "tp")

    def __init__(self, tp: TP) -> None:
        self.tp = tp
        # The newest batch (the only one that may take records, while `appendable`):
        # an attribute read instead of a deque lookup per record.
        self.open: ProducerBatch | None = None
        self.batches: deque[ProducerBatch] = deque()
        self.inflight: list[ProducerBatch] = []
        self.inflight_node = -1
        self.recovering = False
        self.next_order = 0


class RecordAccumulator:
    """Pure batching core of the producer. Not thread-safe: one event loop owns it."""

    def __init__(
        self,
        settings: AccumulatorSettings | ProducerConfig,
        *,
        idempotence: IdempotenceManager | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(settings, ProducerConfig):
            settings = AccumulatorSettings.from_config(settings)
        self.settings = settings
        self._batch_size = settings.batch_size
        self._buffer_memory = settings.buffer_memory
        self._idem = idempotence
        self._rng = rng if rng is not None else random.Random()
        self._parts: dict[TP, _Partition] = {}
        self._used = 0
        self._in_flight = 0
        self._exhausted = False  # an append was refused since space was last freed
        self._flushes = 0
        self._closing = False
        self._drain_rotation = 0
        self._ratios: CompressionRatioEstimator | None = (
            CompressionRatioEstimator(settings.batch_size, settings.max_request_size)
            if settings.compressed
            else None
        )
        # Called (synchronously) when bytes are released after a refused append.
        self.on_space_freed: Callable[[], None] | None = None

    # -- append (hot path) ------------------------------------------------------------

    def append(
        self,
        tp: TP,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        now: float | Callable[[], float],
    ) -> tuple[DeliveryFuture, bool, int] | None:
        """Queue one record. Returns (future, wake_sender, estimated_size), or None
        when the buffer has no room for it right now.

        ``wake_sender`` is True when a batch became full or a new one was started
        (so the Sender's next deadline may be earlier). ``tp`` may be a plain
        ``(topic, partition)`` tuple. ``now`` is the time in ms, or a clock read only
        when a batch is started (the send path: most records join the open batch, so
        reading the clock per record would be wasted). Raises ValueError for a record
        that could never fit ``buffer_memory``.
        """
        size = RECORD_OVERHEAD
        if key is not None:
            size += len(key)
        if value is not None:
            size += len(value)
        if headers:
            size += headers_size(headers)
        used = self._used + size
        if used > self._buffer_memory:
            self.settle_lanes()  # their unused credit may make the room
            used = self._used + size
            if used > self._buffer_memory:
                self._refuse(size)
                return None
        part = self._parts.get(tp)
        if part is not None:
            last = part.open
            if last is not None and last.lane is not None:
                last.lane.settle()
                used = self._used + size
            if last is not None and last.appendable and (writer := last.writer) is not None:
                # ProducerBatch.try_append, inlined: this is the per-record path.
                new_size = last.size + size
                capacity = last.capacity
                if new_size <= capacity:
                    index = last.count
                    writer.append(timestamp, key, value, headers)
                    last.count = index + 1
                    last.size = new_size
                    self._used = used
                    if capacity != self._batch_size:  # compressed: count estimated wire bytes
                        size = self._wire_share(size, capacity)
                    return (DeliveryFuture(last.outcome, index, timestamp),
                            new_size >= capacity, size)  # fmt: skip
        first, batch = self._append_new_batch(tp, timestamp, key, value, headers, size, now)
        if batch.capacity != self._batch_size:
            size = self._wire_share(size, batch.capacity)
        return first, True, size

    # The fast paths, defined in _lane.py and _bulk.py and bound here as methods:
    # send's lanes (``open_lane``) and send_many's ``append_values``.
    open_lane = _open_lane
    append_values = _append_values

    def settle_lanes(self) -> None:
        """Settle every live lane (see _lane.py)."""
        for part in self._parts.values():
            batch = part.open
            if batch is not None and batch.lane is not None:
                batch.lane.settle()

    def _release_lane_credit(self, batch: ProducerBatch, used: int, unused: int,
                             counter: ByteCounter) -> None:  # fmt: skip
        """A lane on ``batch`` settled (``Lane.settle``): ``unused`` reserved bytes go
        back to the buffer, ``used`` bytes count for the sticky stint."""
        self._used -= unused
        if used:
            capacity = batch.capacity
            counter.produced += (
                used if capacity == self._batch_size else self._wire_share(used, capacity)
            )
        if unused and self._exhausted:
            self._exhausted = False
            if self.on_space_freed is not None:
                self.on_space_freed()

    def _wire_share(self, size: int, capacity: int) -> int:
        """A record's share of a compressed batch's ``batch_size`` (estimated wire
        bytes): what the sticky partitioner counts, so that it moves on after about
        one batch on the wire, not after one batch of uncompressed input."""
        return max(1, (size * self._batch_size + capacity // 2) // capacity)  # rounded

    def _append_new_batch(self, tp: TP, timestamp: int, key: bytes | None, value: bytes | None,
                          headers: Headers, size: int, now: float | Callable[[], float],
                          ) -> tuple[DeliveryFuture, ProducerBatch]:  # fmt: skip
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition(tp)
        if part.open is not None:
            # Callers settle a lane on it first: lanes live only on open batches,
            # which is where settle_lanes() looks for them.
            assert part.open.lane is None
            part.open.appendable = False  # full: later records start this new batch
        capacity = self._batch_size if self._ratios is None else self._ratios.capacity(tp[0])
        batch = ProducerBatch(tp, now() if callable(now) else now, capacity,
                              (part.next_order,))  # fmt: skip
        part.next_order += 1
        first = batch.try_append(timestamp, key, value, headers, size)
        assert first is not None  # the first record always fits
        self._used += batch.size
        part.batches.append(batch)
        part.open = batch
        return first, batch

    def _refuse(self, size: int) -> None:
        if size + BATCH_OVERHEAD > self._buffer_memory:
            raise ValueError(
                f"record of ~{size} bytes can never fit buffer_memory={self._buffer_memory}"
            )
        self._exhausted = True

    # -- planning ----------------------------------------------------------------------

    def ready(self, leader_for: LeaderFor, now: float) -> ReadyResult:
        """Which leaders have a sendable batch, and when to look again."""
        nodes: set[int] = set()
        unknown: set[str] = set()
        next_check = _INF
        # Without a usable producer id nothing is sendable, but unknown leaders
        # are still reported so metadata is ready when the id arrives.
        blocked = self._idem is not None and not self._idem.can_send
        hurry = self._flushes > 0 or self._closing or self._exhausted
        linger = self.settings.linger_ms
        for part in self._parts.values():
            if not part.batches:
                continue
            leader = leader_for(part.tp)
            if leader is None:
                unknown.add(part.tp[0])
                continue
            if blocked or leader in nodes or not self._can_drain(part, leader):
                continue
            head = part.batches[0]
            if head.attempts:
                sendable_at = head.retry_at_ms
            elif hurry or len(part.batches) > 1 or head.is_full:
                sendable_at = now
            else:
                sendable_at = head.created_ms + linger
            if sendable_at <= now:
                nodes.add(leader)
            elif sendable_at - now < next_check:
                next_check = sendable_at - now
        return ReadyResult(nodes, next_check, unknown)

    def drain(
        self, nodes: Iterable[int], leader_for: LeaderFor, max_request_size: int, now: float
    ) -> dict[int, list[ProducerBatch]]:
        """Take the batches to send now: {node: [at most one batch per partition]}."""
        if self._idem is not None and not self._idem.can_send:
            return {}
        by_node: dict[int, list[_Partition]] = {node: [] for node in nodes}
        for part in self._parts.values():
            if part.batches:
                leader = leader_for(part.tp)
                if leader is not None and leader in by_node:
                    by_node[leader].append(part)
        drained: dict[int, list[ProducerBatch]] = {}
        # Rotate the starting partition so one partition cannot always fill the request.
        self._drain_rotation += 1
        for node, parts in by_node.items():
            if parts:
                start = self._drain_rotation % len(parts)
                batches = self._drain_node(
                    node, parts[start:] + parts[:start], max_request_size, now
                )
                if batches:
                    drained[node] = batches
        return drained

    def _drain_node(
        self, node: int, parts: list[_Partition], max_request_size: int, now: float
    ) -> list[ProducerBatch]:
        out: list[ProducerBatch] = []
        size = 0
        for part in parts:
            if not self._can_drain(part, node):
                continue
            head = part.batches[0]
            if head.attempts and head.retry_at_ms > now:
                continue
            if head.lane is not None:
                head.lane.settle()  # its size is exact from here on
            if out and size + head.size > max_request_size:
                break
            if self._idem is not None and head.base_sequence < 0:
                self._idem.assign_sequence(head)
            part.batches.popleft()
            if part.open is head:
                part.open = None  # do not keep a sent batch alive through the partition
            head.mark_in_flight()
            part.inflight.append(head)
            part.inflight_node = node
            self._in_flight += 1
            out.append(head)
            size += head.size
        return out

    def _can_drain(self, part: _Partition, node: int) -> bool:
        inflight = len(part.inflight)
        if inflight == 0:
            if part.recovering and part.batches[0].attempts == 0:
                part.recovering = False  # every retried batch is through
            return True
        if part.inflight_node != node:
            return False  # leader moved: the old leader's requests resolve first
        if self._wraps_to_zero(part):
            return False
        limit = 1 if part.recovering else self.settings.max_in_flight
        return inflight < limit

    def _wraps_to_zero(self, part: _Partition) -> bool:
        """The head has (or would take) sequence 0 while earlier batches are out: the
        sequence wrapped (a split half may start there too).

        A broker that lost this producer's state (P5) answers UNKNOWN_PRODUCER_ID to
        those earlier batches but takes sequence 0 as a new producer's first batch, so
        the head would be written before them. Held until they resolve (once per 2**31
        records of a partition), the head is sequenced after any epoch bump they cause.
        (A new epoch's first batch also takes 0, but with nothing in flight.)
        """
        idem = self._idem
        if idem is None or not idem.enabled:
            return False
        sequence = part.batches[0].base_sequence
        return (sequence if sequence >= 0 else idem.next_sequence(part.tp)) == 0

    # -- results (the Sender applies the IdempotenceManager's decisions) ---------------

    def complete(self, batch: ProducerBatch, base_offset: int, log_append_time: int = -1) -> None:
        """The broker wrote ``batch`` at ``base_offset`` (-1 if unknown)."""
        self._release_in_flight(batch)
        if self._ratios is not None and batch.records_size:
            self._ratios.observe(batch.topic, batch.compression_ratio)
        if not batch.done:
            batch.succeed(base_offset, log_append_time)
        self._deallocate(batch)

    def fail(self, batch: ProducerBatch, error: BaseException, state: DeliveryState) -> None:
        """The request for ``batch`` ended and the batch fails with ``state``."""
        self._release_in_flight(batch)
        if not batch.done:
            batch.fail(error, state)
        self._deallocate(batch)

    def release(self, batch: ProducerBatch) -> None:
        """The request of an already-resolved (expired) batch ended: free its slot."""
        self._release_in_flight(batch)
        self._deallocate(batch)

    def requeue(self, batch: ProducerBatch, now: float) -> None:
        """Put an in-flight batch back at its place in the queue, after a backoff."""
        part = self._release_in_flight(batch)
        if batch.done:
            self._deallocate(batch)
            return
        wait = backoff_ms(
            batch.attempts - 1,
            self.settings.retry_backoff_ms,
            self.settings.retry_backoff_max_ms,
            self._rng.random(),
        )
        batch.mark_queued(now + wait)
        self._insert_in_order(part, batch)
        if part.inflight:
            # Later batches are still out and may fail behind this one: send one
            # at a time until the retried batches are through (rule 1.5.2).
            part.recovering = True

    def split(self, batch: ProducerBatch, now: float) -> list[ProducerBatch]:
        """Replace an in-flight batch the broker found too large by its two halves."""
        part = self._release_in_flight(batch)
        if batch.done:
            self._deallocate(batch)
            return []
        halves = batch.split()
        if self._ratios is not None:
            self._ratios.reset(batch.topic)  # it compressed worse than estimated
        for half in halves:
            half.retry_at_ms = now  # new QUEUED batches; the broker is fine: no backoff
            self._insert_in_order(part, half)
        # A batch is charged its size; the halves' sizes add one batch header.
        self._used += halves[0].size + halves[1].size - batch.size
        batch.charged = False
        if part.inflight:
            part.recovering = True
        return list(halves)

    def _release_in_flight(self, batch: ProducerBatch) -> _Partition:
        part = self._parts[batch.tp]
        part.inflight.remove(batch)  # ValueError here means a Sender bug
        self._in_flight -= 1
        return part

    @staticmethod
    def _insert_in_order(part: _Partition, batch: ProducerBatch) -> None:
        # Retried batches are older than everything queued behind them, so
        # the scan stops within the first few entries.
        batches = part.batches
        index = 0
        while index < len(batches) and batches[index].order < batch.order:
            index += 1
        batches.insert(index, batch)

    def _deallocate(self, batch: ProducerBatch) -> None:
        if batch.charged and batch.state is not BatchState.IN_FLIGHT:
            self._used -= batch.size
            batch.charged = False
            if self._exhausted:
                self._exhausted = False
                if self.on_space_freed is not None:
                    self.on_space_freed()

    # -- expiry, reset, abort ----------------------------------------------------------

    def expire(self, now: float, error_factory: ErrorFactory) -> list[ProducerBatch]:
        """Fail every batch older than delivery_timeout_ms; return them.

        Queued batches fail as NOT_PERSISTED (POSSIBLY_PERSISTED if an earlier
        attempt was ambiguous) and leave the queue. In-flight ones fail as
        POSSIBLY_PERSISTED but keep their in-flight slot until their request
        ends (the Sender then calls :meth:`release`). The Sender passes each
        returned batch to ``IdempotenceManager.handle_expired``.
        """
        deadline = now - self.settings.delivery_timeout_ms
        expired: list[ProducerBatch] = []
        for part in self._parts.values():
            for batch in part.inflight:
                if not batch.done and batch.created_ms <= deadline:
                    batch.fail(error_factory(batch, DeliveryState.POSSIBLY_PERSISTED),
                               DeliveryState.POSSIBLY_PERSISTED)  # fmt: skip
                    expired.append(batch)
            while part.batches and part.batches[0].created_ms <= deadline:
                expired.append(self._fail_queued(part, error_factory))
        return expired

    def _fail_queued(self, part: _Partition, error_factory: ErrorFactory) -> ProducerBatch:
        batch = part.batches.popleft()
        if part.open is batch:
            part.open = None
        state = (
            DeliveryState.POSSIBLY_PERSISTED
            if batch.possibly_persisted
            else DeliveryState.NOT_PERSISTED
        )
        batch.fail(error_factory(batch, state), state)
        self._deallocate(batch)
        return batch

    def reset_producer_state(self, error_factory: ErrorFactory) -> list[ProducerBatch]:
        """After an epoch bump: drop every queued batch's old sequence.

        Queued batches that may already be in the log fail as
        POSSIBLY_PERSISTED (returned) instead: resending them under the new
        epoch could write them twice. Must be called with nothing in flight.
        """
        if self._in_flight:
            raise RuntimeError("reset_producer_state() with batches in flight")
        failed: list[ProducerBatch] = []
        for part in self._parts.values():
            part.recovering = False
            keep: deque[ProducerBatch] = deque()
            for batch in part.batches:
                if batch.base_sequence >= 0 and batch.possibly_persisted:
                    state = DeliveryState.POSSIBLY_PERSISTED
                    batch.fail(error_factory(batch, state), state)
                    self._deallocate(batch)
                    failed.append(batch)
                else:
                    batch.clear_sequence()
                    keep.append(batch)
            part.batches = keep
        return failed

    def abort_all(self, error_factory: ErrorFactory) -> list[ProducerBatch]:
        """Fail everything (close with timeout, fatal error); free all slots.

        After this the Sender must ignore responses of requests still out.
        """
        aborted: list[ProducerBatch] = []
        for part in self._parts.values():
            for batch in part.inflight:
                if not batch.done:
                    state = DeliveryState.POSSIBLY_PERSISTED
                    batch.fail(error_factory(batch, state), state)
                    aborted.append(batch)
            self._in_flight -= len(part.inflight)
            inflight, part.inflight = part.inflight, []
            part.recovering = False
            for batch in inflight:
                self._deallocate(batch)
            while part.batches:
                aborted.append(self._fail_queued(part, error_factory))
        return aborted

    def fail_queued(self, error_factory: ErrorFactory) -> list[ProducerBatch]:
        """Fail every queued (undrained) batch and return them; in-flight batches are
        left to finish. A transaction's abort: nothing of it may be sent any more."""
        failed: list[ProducerBatch] = []
        for part in self._parts.values():
            while part.batches:
                failed.append(self._fail_queued(part, error_factory))
        return failed

    # -- flush and close ---------------------------------------------------------------

    def begin_flush(self) -> list[ProducerBatch]:
        """Make everything sendable now; returns the batches the flush waits for."""
        self._flushes += 1
        return self.incomplete_batches()

    def end_flush(self) -> None:
        self._flushes -= 1

    def close(self) -> None:
        """No more lingering: send everything queued as soon as possible."""
        self._closing = True

    def incomplete_batches(self) -> list[ProducerBatch]:
        self.settle_lanes()
        result: list[ProducerBatch] = []
        for part in self._parts.values():
            result.extend(b for b in part.inflight if not b.done)
            result.extend(part.batches)
        return result

    # -- inspection --------------------------------------------------------------------

    # Inspection settles the lanes first, so what it reports is exact.

    @property
    def used_bytes(self) -> int:
        self.settle_lanes()
        return self._used

    @property
    def in_flight_count(self) -> int:
        return self._in_flight

    @property
    def has_queued(self) -> bool:
        return any(part.batches for part in self._parts.values())

    def in_flight(self, tp: TP) -> list[ProducerBatch]:
        part = self._parts.get(tp)
        return list(part.inflight) if part is not None else []

    def queued(self, tp: TP) -> list[ProducerBatch]:
        self.settle_lanes()
        part = self._parts.get(tp)
        return list(part.batches) if part is not None else []

    def queued_bytes(self, tp: TP) -> int:
        """Estimated bytes waiting for ``tp`` (queued, not yet sent)."""
        self.settle_lanes()
        part = self._parts.get(tp)
        return sum(b.size for b in part.batches) if part is not None else 0

    def partition_loads(self, topic: str, partitions: Sequence[int]) -> list[int]:
        """The adaptive sticky partitioner's load (a ``LoadFunction``): per partition,
        its batches queued *or in flight*, as bytes of ``batch_size`` each (the Java
        client weighs partitions by this queue length too). A slow or unreachable
        leader leaves both growing (in flight first, then queued once max_in_flight
        is reached), so its partitions get fewer new keyless records. O(1) per
        partition: it runs at every sticky switch."""
        parts, unit = self._parts, self._batch_size
        loads: list[int] = []
        for partition in partitions:
            part = parts.get((topic, partition))
            loads.append(0 if part is None else (len(part.batches) + len(part.inflight)) * unit)
        return loads

    def is_recovering(self, tp: TP) -> bool:
        part = self._parts.get(tp)
        return part is not None and part.recovering
