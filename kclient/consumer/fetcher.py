"""The fetcher's pure half: which partitions to fetch, how to read what came back.

Theory of operation
-------------------
*Planning.* :func:`plan_fetches` groups the fetchable partitions
(``SubscriptionState.fetchable_partitions()``: positioned, not paused, not being reset
or revoked) by leader, leaving out partitions whose buffered data already reached the
prefetch bound (:meth:`FetchBuffer.can_fetch`) and nodes that have a fetch in flight.
Each node's partitions go through its :class:`FetchSessionHandler` (KIP-227), and
:func:`build_fetch_request` turns the session request into the generated message. The
staleness ``epoch`` of every partition is captured in :class:`FetchContext` when the
request is built.

*Receiving.* :func:`handle_fetch_response` validates the session, then per partition:
data for a partition whose epoch moved meanwhile is dropped (seek, reset, revocation:
reliability C7/C8); good data advances ``fetch_offset`` to the end of the last *complete*
batch (a partial trailing batch is cut off by the broker's byte limit and fetched again)
and is queued, undecoded, as a :class:`CompletedFetch`; OFFSET_OUT_OF_RANGE and
authorization errors are queued as error entries *behind* the data before them, so
records fetched earlier are still delivered (C8) and the error surfaces exactly when the
application reaches that position.

*Delivering.* :meth:`FetchBuffer.drain` decodes lazily, batch by batch, straight from
the fetched buffer, skipping control batches and (read_committed) aborted transactions.
A corrupt batch raises :class:`CorruptBatchError` at the same position on every call:
the entry stays at the head of its partition's queue, and nothing behind it is handed
out, until a seek gives the partition a new epoch.

Prefetch is bounded: a partition holds at most ``PREFETCH_DEPTH`` queued responses
(each at most ``max_partition_fetch_bytes``) and no fetch is planned while the buffer
holds more than ``fetch_max_bytes`` in total.
"""

from __future__ import annotations

import gc
import heapq
import struct
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kclient.config import ConsumerConfig
from kclient.consumer._errors import ErrorCode, broker_error
from kclient.consumer.fetch_session import (
    FetchPartitionData,
    FetchSessionHandler,
    FetchSessionRequest,
)
from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState
from kclient.errors import CorruptBatchError
from kclient.structs import ConsumerRecord, TopicPartition
from protocol._errors_base import BrokerResponseError, CorruptRecordError
from protocol.messages.fetch import (
    FetchPartition,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    ForgottenTopic,
)
from protocol.records import LegacyBatch, RecordBatch, read_batches
from protocol.records.record import RecordFactory

__all__ = [
    "PREFETCH_DEPTH",
    "CompletedFetch",
    "CorruptBatchError",
    "FetchBuffer",
    "FetchContext",
    "FetchOutcome",
    "build_fetch_request",
    "complete_batches_end",
    "handle_fetch_response",
    "plan_fetches",
]

#: Responses a partition may have queued before it is fetched again: one being drained,
#: one arriving, so the network round trip overlaps with the application's processing.
PREFETCH_DEPTH = 2

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

#: Errors that mean our metadata (leader, epoch, topic) is out of date: refresh, retry.
_METADATA_ERRORS = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        5,  # LEADER_NOT_AVAILABLE
        56,  # KAFKA_STORAGE_ERROR
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.UNKNOWN_TOPIC_ID,
        ErrorCode.INCONSISTENT_TOPIC_ID,
        ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR,
        7,  # REQUEST_TIMED_OUT
    }
)
#: Errors the application must see (queued at the partition's position).
_USER_ERRORS = frozenset({ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.OFFSET_OUT_OF_RANGE})


# -- planning -------------------------------------------------------------------------------


@dataclass(slots=True)
class FetchContext:
    """What a fetch request was built from, for reading its response."""

    node_id: int
    session_request: FetchSessionRequest
    epochs: dict[TopicPartition, int]
    offsets: dict[TopicPartition, int]


def plan_fetches(
    subscriptions: SubscriptionState,
    buffer: FetchBuffer,
    leader_of: Callable[[TopicPartition], tuple[int, int] | None],
    busy_nodes: Mapping[int, object],
    max_partition_fetch_bytes: int,
) -> tuple[dict[int, dict[TopicPartition, FetchPartitionData]], list[TopicPartition]]:
    """Partitions to fetch per node, plus the partitions that have no known leader."""
    if not buffer.below_budget():
        return {}, []
    per_node: dict[int, dict[TopicPartition, FetchPartitionData]] = {}
    leaderless: list[TopicPartition] = []
    for tp in subscriptions.fetchable_partitions():
        if not buffer.can_fetch(tp):
            continue
        leader = leader_of(tp)
        if leader is None:
            leaderless.append(tp)
            continue
        node, leader_epoch = leader
        if node in busy_nodes:
            continue
        state = subscriptions.state(tp)
        assert state.fetch_offset is not None
        per_node.setdefault(node, {})[tp] = FetchPartitionData(
            state.fetch_offset, max_partition_fetch_bytes, current_leader_epoch=leader_epoch
        )
    return per_node, leaderless


def start_fetch(
    session: FetchSessionHandler,
    wanted: dict[TopicPartition, FetchPartitionData],
    subscriptions: SubscriptionState,
) -> FetchContext:
    request = session.build(wanted)
    epochs = {tp: subscriptions.state(tp).epoch for tp in wanted}
    offsets = {tp: d.fetch_offset for tp, d in wanted.items()}
    return FetchContext(session.node_id, request, epochs, offsets)


def build_fetch_request(ctx: FetchContext, config: ConsumerConfig, version: int) -> FetchRequest:
    """The generated Fetch message for one session request (topic names, so v <= 12)."""
    req = ctx.session_request
    topics: dict[str, list[FetchPartition]] = {}
    for tp, data in req.to_send.items():
        topics.setdefault(tp.topic, []).append(
            FetchPartition(
                partition=tp.partition,
                current_leader_epoch=data.current_leader_epoch if version >= 9 else -1,
                fetch_offset=data.fetch_offset,
                log_start_offset=-1,
                partition_max_bytes=data.max_bytes,
            )
        )
    forgotten: dict[str, list[int]] = {}
    for tp in req.to_forget:
        forgotten.setdefault(tp.topic, []).append(tp.partition)
    sessions = version >= 7
    return FetchRequest(
        max_wait_ms=config.fetch_max_wait_ms,
        min_bytes=config.fetch_min_bytes,
        max_bytes=config.fetch_max_bytes,
        isolation_level=1 if config.isolation_level == "read_committed" else 0,
        session_id=req.session_id if sessions else 0,
        session_epoch=req.epoch if sessions else -1,
        topics=[FetchTopic(topic=t, partitions=ps) for t, ps in topics.items()],
        forgotten_topics_data=[
            ForgottenTopic(topic=t, partitions=ps) for t, ps in forgotten.items()
        ]
        if sessions
        else [],
        rack_id=config.client_rack if version >= 11 else "",
    )


# -- receiving ------------------------------------------------------------------------------


def complete_batches_end(data: bytes) -> int | None:
    """Offset after the last complete batch in ``data`` (None if there is none).

    Walks only the 17-byte entry prefixes, so it costs nothing per record. For v2 the
    next offset is ``baseOffset + lastOffsetDelta + 1``; a legacy entry's offset field
    holds its last (inner) offset.
    """
    n = len(data)
    pos = 0
    end: int | None = None
    while n - pos >= 12:
        (length,) = _I32.unpack_from(data, pos + 8)
        if length < 0 or length > n - pos - 12:
            break
        (base,) = _I64.unpack_from(data, pos)
        if length >= 15 and data[pos + 16] == 2:
            if length < 49:
                break  # malformed; read_batches will report it
            (delta,) = _I32.unpack_from(data, pos + 23)
            end = base + delta + 1
        else:
            end = base + 1
        pos += 12 + length
    return end


@dataclass(slots=True)
class FetchOutcome:
    completed: list[CompletedFetch] = field(default_factory=list)
    refresh_metadata: bool = False
    session_ok: bool = True


def handle_fetch_response(
    ctx: FetchContext,
    response: FetchResponse,
    session: FetchSessionHandler,
    subscriptions: SubscriptionState,
    config: ConsumerConfig,
) -> FetchOutcome:
    entries = [
        (TopicPartition(t.topic, p.partition_index), p)
        for t in response.responses
        for p in t.partitions
    ]
    outcome = FetchOutcome()
    if not session.handle_response(
        ctx.session_request, response.error_code, response.session_id, [tp for tp, _ in entries]
    ):
        outcome.session_ok = False
        return outcome
    read_committed = config.isolation_level == "read_committed"
    for tp, part in entries:
        epoch = ctx.epochs.get(tp)
        if epoch is None or not subscriptions.is_current(tp, epoch):
            continue  # sought, reset or revoked since the request was built
        code = part.error_code
        if code == ErrorCode.NONE:
            subscriptions.update_watermarks(
                tp, part.high_watermark, part.last_stable_offset, part.log_start_offset
            )
            _take_records(ctx, tp, epoch, part, subscriptions, config, read_committed, outcome)
        elif code in _USER_ERRORS:
            outcome.completed.append(
                CompletedFetch.failed(tp, epoch, ctx.offsets[tp], broker_error(code, f"fetch {tp}"))
            )
        else:
            outcome.refresh_metadata = True  # _METADATA_ERRORS and anything unexpected
    return outcome


def _take_records(
    ctx: FetchContext,
    tp: TopicPartition,
    epoch: int,
    part: Any,
    subscriptions: SubscriptionState,
    config: ConsumerConfig,
    read_committed: bool,
    outcome: FetchOutcome,
) -> None:
    data: bytes = part.records or b""
    end = complete_batches_end(data)
    if end is None:
        return
    fetch_offset = ctx.offsets.get(tp, subscriptions.state(tp).fetch_offset or 0)
    end = max(end, fetch_offset)  # never move backwards (compacted leftovers)
    subscriptions.advance_fetch(tp, epoch, end, subscriptions.state(tp).fetch_epoch)
    aborted = None
    if read_committed and part.aborted_transactions:
        aborted = [(a.first_offset, a.producer_id) for a in part.aborted_transactions]
    outcome.completed.append(
        CompletedFetch(tp, epoch, fetch_offset, data, end, aborted, config.check_crcs)
    )


# -- decoding and delivering ----------------------------------------------------------------

Deserializer = Callable[[bytes | None], Any] | None


class CompletedFetch:
    """One partition's data from one fetch response, decoded lazily batch by batch."""

    __slots__ = (
        "_aborted",
        "_aborted_pids",
        "_batches",
        "_check_crcs",
        "_pending",
        "_pending_idx",
        "end_offset",
        "epoch",
        "error",
        "exhausted",
        "fetch_offset",
        "next_offset",
        "size",
        "tp",
    )

    def __init__(
        self,
        tp: TopicPartition,
        epoch: int,
        fetch_offset: int,
        data: bytes,
        end_offset: int,
        aborted: list[tuple[int, int]] | None,
        check_crcs: bool = True,
    ) -> None:
        self.tp = tp
        self.epoch = epoch
        self.fetch_offset = fetch_offset
        self.next_offset = fetch_offset  # position after what has been taken so far
        self.end_offset = end_offset
        self.size = len(data)
        self.error: BaseException | None = None
        self.exhausted = not data
        self._check_crcs = check_crcs
        self._batches: Iterator[RecordBatch | LegacyBatch] = read_batches(
            data, verify_crc=check_crcs
        )
        self._aborted = aborted
        if aborted:
            heapq.heapify(aborted)
        self._aborted_pids: set[int] = set()
        self._pending: list[ConsumerRecord[Any, Any]] = []
        self._pending_idx = 0

    @property
    def done(self) -> bool:
        """Everything decoded and handed out."""
        return self.exhausted and self._pending_idx >= len(self._pending)

    @classmethod
    def failed(
        cls, tp: TopicPartition, epoch: int, offset: int, error: BaseException
    ) -> CompletedFetch:
        entry = cls(tp, epoch, offset, b"", offset, None)
        entry.error = error
        entry.exhausted = False
        return entry

    def take(
        self, max_records: int, key_deserializer: Deserializer, value_deserializer: Deserializer
    ) -> list[ConsumerRecord[Any, Any]]:
        """Up to ``max_records`` records; raises the stored error when nothing precedes it."""
        out: list[ConsumerRecord[Any, Any]] = []
        while len(out) < max_records:
            pending = self._pending
            idx = self._pending_idx
            if idx < len(pending):
                chunk = pending[idx : idx + max_records - len(out)]
                self._pending_idx = idx + len(chunk)
                out.extend(chunk)
                self.next_offset = chunk[-1].offset + 1
                continue
            if self.error is not None:
                if out:
                    return out
                raise self.error
            if self.exhausted or not self._load_next_batch(key_deserializer, value_deserializer):
                break
        return out

    def _load_next_batch(self, kd: Deserializer, vd: Deserializer) -> bool:
        """Decode the next deliverable batch into ``_pending``; False when none is left."""
        while True:
            try:
                batch = next(self._batches, None)
                if batch is None:
                    self.exhausted = True
                    self.next_offset = max(self.next_offset, self.end_offset)
                    self._pending = []
                    return False
                if self._skip(batch):
                    self.next_offset = max(self.next_offset, batch.next_offset)
                    continue
                # Into a fresh list: a batch that fails half-way hands out nothing.
                pending = self._decode(batch, kd, vd)
            except CorruptRecordError as exc:
                self.error = CorruptBatchError(self.tp, self.next_offset, exc)
                self._pending = []
                return True
            self._pending = pending
            self._pending_idx = 0
            if not pending:
                self.next_offset = max(self.next_offset, batch.next_offset)
                continue
            return True

    def _skip(self, batch: RecordBatch | LegacyBatch) -> bool:
        if batch.next_offset <= self.next_offset:
            return True  # wholly before the position (the broker returns whole batches)
        if self._aborted is not None and batch.is_transactional:
            aborted, pids = self._aborted, self._aborted_pids
            while aborted and aborted[0][0] <= batch.last_offset:
                pids.add(heapq.heappop(aborted)[1])
            if batch.is_control:
                if batch.producer_id in pids and any(c.is_abort for c in batch.control_records()):
                    pids.discard(batch.producer_id)
                return True
            if batch.producer_id in pids:
                return True
        return batch.is_control

    def _decode(
        self, batch: RecordBatch | LegacyBatch, kd: Deserializer, vd: Deserializer
    ) -> list[ConsumerRecord[Any, Any]]:
        topic, partition = self.tp
        if type(batch) is not RecordBatch:
            return self._convert(batch, batch.records(), kd, vd)  # legacy: rare, not hot
        out: list[ConsumerRecord[Any, Any]] = []
        # Every record of a batch stays alive until handed out, so a collection in the
        # middle of decoding finds only survivors and promotes them to older generations,
        # whose collections are the expensive ones. Pausing the cyclic GC for the batch
        # (it creates no cycles) leaves one young collection afterwards instead.
        pause = gc.isenabled()
        if pause:
            gc.disable()
        try:
            if kd is None and vd is None:
                # The factory protocol's argument order is ConsumerRecord's, so the class
                # itself is the factory: no Python frame of ours runs per record.
                batch.records_into(out, ConsumerRecord, (topic, partition))
            else:
                batch.records_into(out, _deserializing_factory(topic, partition, kd, vd))
        finally:
            if pause:
                gc.enable()
        start = self.next_offset
        if out and out[0].offset < start:
            out = [r for r in out if r.offset >= start]  # the broker sent the whole batch
        return out

    def _convert(
        self,
        batch: RecordBatch | LegacyBatch,
        records: list[Any],
        kd: Deserializer,
        vd: Deserializer,
    ) -> list[ConsumerRecord[Any, Any]]:
        topic, partition = self.tp
        ts_type = int(batch.timestamp_type)
        epoch = batch.partition_leader_epoch
        cr = ConsumerRecord
        start = self.next_offset
        if records and records[0][0] < start:
            records = [r for r in records if r[0] >= start]
        # One comprehension per batch: the hot loop of the consumer. Sizes use the
        # undecoded bytes (Java's serializedKeySize), -1 for null.
        if kd is None and vd is None:
            return [
                cr(topic, partition, o, t, ts_type, k, v, h, epoch,
                   -1 if k is None else len(k), -1 if v is None else len(v))
                for o, t, k, v, h in records
            ]  # fmt: skip
        kd_ = kd or _identity
        vd_ = vd or _identity
        return [
            cr(topic, partition, o, t, ts_type, kd_(k), vd_(v), h, epoch,
               -1 if k is None else len(k), -1 if v is None else len(v))
            for o, t, k, v, h in records
        ]  # fmt: skip


def _identity(data: bytes | None) -> Any:
    return data


def _deserializing_factory(
    topic: str, partition: int, kd: Deserializer, vd: Deserializer
) -> RecordFactory[ConsumerRecord[Any, Any]]:
    cr = ConsumerRecord
    kd_ = kd or _identity
    vd_ = vd or _identity

    def make(
        offset: int,
        timestamp: int,
        ts_type: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
        epoch: int,
        ks: int,
        vs: int,
    ) -> ConsumerRecord[Any, Any]:
        return cr(
            topic, partition, offset, timestamp, ts_type, kd_(key), vd_(value), headers, epoch,
            ks, vs,
        )  # fmt: skip

    return make


class FetchBuffer:
    """Completed fetches per partition, FIFO, with the byte accounting for prefetch."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max(1, max_bytes)
        self._queues: dict[TopicPartition, deque[CompletedFetch]] = {}
        self._bytes = 0
        self._rotation = 0

    def below_budget(self) -> bool:
        return self._bytes < self._max_bytes

    def can_fetch(self, tp: TopicPartition) -> bool:
        queue = self._queues.get(tp)
        if queue is None:
            return True
        if queue and queue[0].error is not None:
            return False  # an error waits for the application; fetching more is pointless
        return len(queue) < PREFETCH_DEPTH

    def add(self, entry: CompletedFetch) -> None:
        self._queues.setdefault(entry.tp, deque()).append(entry)
        self._bytes += entry.size

    def buffered_partitions(self) -> frozenset[TopicPartition]:
        return frozenset(tp for tp, q in self._queues.items() if q)

    def clear(self, partitions: Mapping[TopicPartition, object] | None = None) -> None:
        targets = list(self._queues) if partitions is None else list(partitions)
        for tp in targets:
            for entry in self._queues.pop(tp, ()):
                self._bytes -= entry.size

    def _pop(self, tp: TopicPartition) -> None:
        queue = self._queues[tp]
        self._bytes -= queue.popleft().size
        if not queue:
            del self._queues[tp]

    def has_deliverable(self, subscriptions: SubscriptionState) -> bool:
        for tp, queue in self._queues.items():
            if queue and subscriptions.is_current(tp, queue[0].epoch):
                if not subscriptions.state(tp).paused:
                    return True
        return False

    def drain(
        self,
        subscriptions: SubscriptionState,
        max_records: int,
        key_deserializer: Deserializer = None,
        value_deserializer: Deserializer = None,
        only: Collection[TopicPartition] | None = None,
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Hand out up to ``max_records`` records, advancing positions (``deliver``).

        Partitions are visited from a rotating start so one busy partition cannot starve
        the others. An error is raised only when nothing was collected before it in this
        call; otherwise it stays queued for the next call.
        """
        out: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        order = list(self._queues) if only is None else [tp for tp in self._queues if tp in only]
        if not order:
            return out
        self._rotation = (self._rotation + 1) % len(order)
        order = order[self._rotation :] + order[: self._rotation]
        remaining = max_records
        for tp in order:
            if remaining <= 0:
                break
            try:
                got = self._drain_partition(
                    tp, subscriptions, remaining, key_deserializer, value_deserializer
                )
            except BaseException:
                if out:
                    return out
                raise
            if got:
                out[tp] = got
                remaining -= len(got)
        return out

    def _drain_partition(
        self,
        tp: TopicPartition,
        subscriptions: SubscriptionState,
        max_records: int,
        kd: Deserializer,
        vd: Deserializer,
    ) -> list[ConsumerRecord[Any, Any]]:
        got: list[ConsumerRecord[Any, Any]] = []
        while tp in self._queues and len(got) < max_records:
            entry = self._queues[tp][0]
            state = subscriptions._assignment.get(tp)  # hot path: one lookup, no exception
            if state is None or state.epoch != entry.epoch or state.pending_revocation:
                self._pop(tp)  # stale: sought, reset or revoked since it was fetched
                continue
            if state.paused:
                break  # kept back, in order, until resume()
            if entry.next_offset != state.position:
                self._pop(tp)  # not contiguous with what was delivered: refetch instead
                continue
            if got and entry.error is not None:
                break
            if isinstance(entry.error, BrokerResponseError) and entry.error.errno == 1:
                self._out_of_range(tp, entry, subscriptions)
                continue
            records = entry.take(max_records - len(got), kd, vd)
            got.extend(records)
            leader_epoch = records[-1].leader_epoch if records else state.position_epoch
            subscriptions.deliver(tp, entry.epoch, entry.next_offset, leader_epoch)
            if entry.done:
                self._pop(tp)
            elif not records:
                break
        return got

    def _out_of_range(
        self, tp: TopicPartition, entry: CompletedFetch, subscriptions: SubscriptionState
    ) -> None:
        if subscriptions.default_reset is OffsetResetStrategy.NONE:
            assert entry.error is not None
            raise entry.error
        self._pop(tp)
        subscriptions.request_offset_reset(tp)
