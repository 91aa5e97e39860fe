"""Fetch (sessions, isolation, min bytes / max wait), ListOffsets, OffsetForLeaderEpoch."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kclient.testing.mock.codes import Err
from kclient.testing.mock.fetch_sessions import FetchSessions, SessionPartition
from kclient.testing.mock.handlers.common import Ctx, FetchWait
from kclient.testing.mock.log import PartitionLog
from kclient.testing.mock.state import ClusterState, Partition
from protocol.messages.fetch import (
    AbortedTransaction,
    FetchableTopicResponse,
    FetchRequest,
    FetchResponse,
    PartitionData,
)
from protocol.messages.list_offsets import (
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from protocol.messages.offset_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)

__all__ = ["handle_fetch", "handle_list_offsets", "handle_offset_for_leader_epoch"]

_ZERO_UUID = uuid.UUID(int=0)
READ_COMMITTED = 1
_ANSWER_NOW = 1 << 62


def epoch_error(current_leader_epoch: int, log: PartitionLog) -> int:
    """Leader-epoch fencing for requests that carry the client's view (KIP-320)."""
    if current_leader_epoch < 0 or current_leader_epoch == log.leader_epoch:
        return 0
    if current_leader_epoch < log.leader_epoch:
        return Err.FENCED_LEADER_EPOCH
    return Err.UNKNOWN_LEADER_EPOCH


@dataclass(slots=True)
class _Target:
    topic: str | None
    topic_id: uuid.UUID
    index: int
    part: SessionPartition
    current_leader_epoch: int


def handle_fetch(ctx: Ctx, req: FetchRequest) -> FetchResponse | FetchWait:
    sessions = _sessions(ctx)
    decision = sessions.resolve(req.session_id, req.session_epoch) if ctx.version >= 7 else None
    if decision is not None and decision.error:
        return FetchResponse(error_code=decision.error)
    targets = [
        _target(ctx.cluster, t.topic, t.topic_id, p) for t in req.topics for p in t.partitions
    ]
    session = decision.session if decision else None
    incremental = bool(decision and decision.incremental)
    if session is not None:
        forgotten = []
        for f in req.forgotten_topics_data:
            name = f.topic or _name_for(ctx.cluster, f.topic_id)
            forgotten += [(name or "", p) for p in f.partitions]
        requested = {(t.topic or "", t.index): t.part for t in targets}
        FetchSessions.update(session, requested, forgotten, incremental)
        targets = [
            _target_from_session(ctx.cluster, key, part, targets)
            for key, part in session.partitions.items()
        ]
    injected = ctx.partition_errors([(t.topic or "", t.index) for t in targets])
    session_id = decision.response_session_id if decision else 0

    def build() -> tuple[FetchResponse, int, Callable[[], None]]:
        return _build(ctx, req, targets, injected, session_id, incremental)

    if req.max_wait_ms > 0 and req.min_bytes > 0:
        return FetchWait(req.max_wait_ms / 1000, req.min_bytes, build)
    response, _, commit = build()
    commit()
    return response


def _sessions(ctx: Ctx) -> FetchSessions:
    return ctx.cluster.fetch_sessions.setdefault(ctx.broker, FetchSessions())


def _name_for(cluster: ClusterState, topic_id: uuid.UUID) -> str | None:
    topic = cluster.topic_by_id(topic_id)
    return topic.name if topic else None


def _target(cluster: ClusterState, name: str, topic_id: uuid.UUID, p: object) -> _Target:
    from protocol.messages.fetch import FetchPartition

    assert isinstance(p, FetchPartition)
    resolved = name or _name_for(cluster, topic_id)
    return _Target(
        resolved,
        topic_id,
        p.partition,
        SessionPartition(
            p.fetch_offset, p.partition_max_bytes, current_leader_epoch=p.current_leader_epoch
        ),
        p.current_leader_epoch,
    )


def _target_from_session(
    cluster: ClusterState, key: tuple[str, int], part: SessionPartition, listed: list[_Target]
) -> _Target:
    for t in listed:
        if (t.topic or "", t.index) == key:
            # the session's own record (it remembers what was last sent)
            return _Target(t.topic, t.topic_id, t.index, part, t.current_leader_epoch)
    topic = cluster.topics.get(key[0])
    topic_id = topic.topic_id if topic else _ZERO_UUID
    return _Target(key[0], topic_id, key[1], part, part.current_leader_epoch)


def _build(
    ctx: Ctx,
    req: FetchRequest,
    targets: list[_Target],
    injected: dict[tuple[str, int], int],
    session_id: int,
    incremental: bool,
) -> tuple[FetchResponse, int, Callable[[], None]]:
    """Build the response; the returned callback records what the session sent.

    The callback runs only for the response actually sent, because a fetch
    waiting for min_bytes rebuilds its response several times.
    """
    budget = req.max_bytes if ctx.version >= 3 else 2**31 - 1
    total = 0
    by_topic: dict[tuple[str | None, uuid.UUID], list[PartitionData]] = {}
    sent: list[tuple[SessionPartition, tuple[int, int, int, int]]] = []
    urgent = False  # errors are answered at once, without waiting for min_bytes (as Kafka does)
    for t in targets:
        data, size = _partition_data(ctx, req, t, injected, budget - total)
        total += size
        state = (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
            data.error_code,
        )
        if incremental and size == 0 and t.part.last_sent == state:
            continue
        sent.append((t.part, state))
        urgent = urgent or data.error_code != 0
        by_topic.setdefault((t.topic, t.topic_id), []).append(data)
    responses = [
        FetchableTopicResponse(topic=name or "", topic_id=topic_id, partitions=parts)
        for (name, topic_id), parts in by_topic.items()
    ]

    def commit() -> None:
        for part, state in sent:
            part.last_sent = state

    response = FetchResponse(error_code=0, session_id=session_id, responses=responses)
    return response, _ANSWER_NOW if urgent else total, commit


def _partition_data(
    ctx: Ctx, req: FetchRequest, t: _Target, injected: dict[tuple[str, int], int], budget: int
) -> tuple[PartitionData, int]:
    def fail(error: int) -> tuple[PartitionData, int]:
        # records must be empty, not null: librdkafka rejects a null record set
        return PartitionData(partition_index=t.index, error_code=error, records=b""), 0

    if t.topic is None:
        return fail(Err.UNKNOWN_TOPIC_ID)
    error, part = ctx.cluster.leader_check(t.topic, t.index, ctx.broker)
    if part is None or error:
        return fail(error)
    log = part.log
    error = injected.get((t.topic, t.index), 0) or epoch_error(t.current_leader_epoch, log)
    offset = t.part.fetch_offset
    if not error and (offset < log.log_start_offset or offset > log.high_watermark):
        error = Err.OFFSET_OUT_OF_RANGE
    if error:
        # The leader still reports its offsets with an error, as Kafka does: a
        # client resetting after OFFSET_OUT_OF_RANGE may use them.
        data = PartitionData(
            partition_index=t.index,
            error_code=error,
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            records=b"",
        )
        return data, 0
    committed = req.isolation_level == READ_COMMITTED
    upper = log.last_stable_offset if committed else log.high_watermark
    # The first batch is returned whole even past the limits (KIP-74), so a
    # consumer never stalls on one large batch; the request budget still stops
    # later partitions once spent.
    batches = log.read(offset, min(t.part.max_bytes, budget), upper) if budget > 0 else []
    records = b"".join(b.data for b in batches)
    aborted = None
    if committed:
        aborted = [
            AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
            for a in log.aborted_in(offset, upper)
        ]
    return (
        PartitionData(
            partition_index=t.index,
            error_code=0,
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
            aborted_transactions=aborted,
            records=records,
        ),
        len(records),
    )


def handle_list_offsets(ctx: Ctx, req: ListOffsetsRequest) -> ListOffsetsResponse:
    tps = [(t.name, p.partition_index) for t in req.topics for p in t.partitions]
    injected = ctx.partition_errors(tps)
    topics = []
    for t in req.topics:
        results = []
        for p in t.partitions:
            error, part = ctx.cluster.leader_check(t.name, p.partition_index, ctx.broker)
            error = injected.get((t.name, p.partition_index), error)
            if part is not None and not error:
                error = epoch_error(p.current_leader_epoch, part.log)
            if part is None or error:
                results.append(
                    ListOffsetsPartitionResponse(
                        partition_index=p.partition_index, error_code=error
                    )
                )
                continue
            offset, ts = _offset_for(part, p.timestamp, req.isolation_level)
            results.append(
                ListOffsetsPartitionResponse(
                    partition_index=p.partition_index,
                    error_code=0,
                    old_style_offsets=[offset] if offset >= 0 else [],
                    timestamp=ts,
                    offset=offset,
                    leader_epoch=part.log.leader_epoch,
                )
            )
        topics.append(ListOffsetsTopicResponse(name=t.name, partitions=results))
    return ListOffsetsResponse(topics=topics)


def _offset_for(part: Partition, timestamp: int, isolation: int) -> tuple[int, int]:
    log = part.log
    if timestamp == -2:  # earliest
        return log.log_start_offset, -1
    if timestamp == -1:  # latest
        return (log.last_stable_offset if isolation == READ_COMMITTED else log.high_watermark), -1
    if timestamp == -3:  # max timestamp
        return log.max_timestamp_offset()
    if timestamp == -4:  # earliest local == earliest (no tiered storage)
        return log.log_start_offset, -1
    return log.offset_for_timestamp(timestamp)


def handle_offset_for_leader_epoch(
    ctx: Ctx, req: OffsetForLeaderEpochRequest
) -> OffsetForLeaderEpochResponse:
    tps = [(t.topic, p.partition) for t in req.topics for p in t.partitions]
    injected = ctx.partition_errors(tps)
    topics = []
    for t in req.topics:
        results = []
        for p in t.partitions:
            error, part = ctx.cluster.leader_check(t.topic, p.partition, ctx.broker)
            error = injected.get((t.topic, p.partition), error)
            if part is not None and not error:
                error = epoch_error(p.current_leader_epoch, part.log)
            if part is None or error:
                results.append(EpochEndOffset(error_code=error, partition=p.partition))
                continue
            epoch, end = part.log.end_offset_for_epoch(p.leader_epoch)
            results.append(
                EpochEndOffset(
                    error_code=0, partition=p.partition, leader_epoch=epoch, end_offset=end
                )
            )
        topics.append(OffsetForLeaderTopicResult(topic=t.topic, partitions=results))
    return OffsetForLeaderEpochResponse(topics=topics)
