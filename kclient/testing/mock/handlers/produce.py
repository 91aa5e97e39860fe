"""Produce: validate batches, run the idempotent/transactional checks, append.

acks only decides whether a response is sent (acks=0: none); with no
replication every append is immediately "fully replicated".
"""

from __future__ import annotations

from kclient.testing.mock.batches import BatchError, split_batches
from kclient.testing.mock.codes import Err
from kclient.testing.mock.handlers.common import Ctx
from kclient.testing.mock.log import PartitionLog
from kclient.testing.mock.producers import SequenceVerdict
from protocol.messages.produce import (
    LeaderIdAndEpoch,
    NodeEndpoint,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceResponse,
)

__all__ = ["handle_produce"]

_VERDICT_ERRORS = {
    SequenceVerdict.OUT_OF_ORDER: Err.OUT_OF_ORDER_SEQUENCE_NUMBER,
    SequenceVerdict.UNKNOWN_PRODUCER: Err.UNKNOWN_PRODUCER_ID,
    SequenceVerdict.FENCED_EPOCH: Err.INVALID_PRODUCER_EPOCH,
}


def handle_produce(ctx: Ctx, req: ProduceRequest) -> ProduceResponse | None:
    tps = [(t.name, p.index) for t in req.topic_data for p in t.partition_data]
    injected = ctx.partition_errors(tps)
    topics = []
    for t in req.topic_data:
        partitions = []
        for p in t.partition_data:
            error = injected.get((t.name, p.index))
            if error is not None:
                partitions.append(PartitionProduceResponse(index=p.index, error_code=error))
                continue
            partitions.append(_produce_partition(ctx, req, t.name, p.index, p.records or b""))
        topics.append(TopicProduceResponse(name=t.name, partition_responses=partitions))
    if req.acks == 0:
        return None
    # KIP-951: with a new leader in current_leader, say where that leader listens.
    leaders = {
        p.current_leader.leader_id
        for t in topics
        for p in t.partition_responses
        if p.current_leader.leader_id >= 0
    }
    endpoints = [
        NodeEndpoint(node_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
        for b in ctx.cluster.brokers.values()
        if b.node_id in leaders
    ]
    return ProduceResponse(responses=topics, node_endpoints=endpoints)


def _produce_partition(
    ctx: Ctx, req: ProduceRequest, topic: str, index: int, records: bytes
) -> PartitionProduceResponse:
    error, part = ctx.cluster.leader_check(topic, index, ctx.broker)
    if part is None or error:
        leader = LeaderIdAndEpoch()
        if part is not None:
            leader = LeaderIdAndEpoch(leader_id=part.leader, leader_epoch=part.log.leader_epoch)
        return PartitionProduceResponse(index=index, error_code=error, current_leader=leader)
    log = part.log
    if req.acks not in (-1, 0, 1):
        return _error(index, Err.INVALID_REQUEST, log)
    try:
        batches = split_batches(records)
    except BatchError as exc:
        return _error(index, Err.CORRUPT_MESSAGE, log, str(exc))
    for header, _ in batches:
        if header.transactional and not ctx.cluster.txn.partition_in_txn(
            header.producer_id, topic, index
        ):
            return _error(index, Err.INVALID_TXN_STATE, log)
    result = log.append(batches)
    if result.verdict is SequenceVerdict.DUPLICATE:
        return PartitionProduceResponse(
            index=index,
            error_code=Err.DUPLICATE_SEQUENCE_NUMBER,
            base_offset=result.base_offset,
            log_start_offset=log.log_start_offset,
        )
    if result.verdict is not SequenceVerdict.APPEND:
        return _error(index, _VERDICT_ERRORS[result.verdict], log)
    return PartitionProduceResponse(
        index=index,
        error_code=0,
        base_offset=result.base_offset,
        log_start_offset=log.log_start_offset,
    )


def _error(
    index: int, error: int, log: PartitionLog, message: str | None = None
) -> PartitionProduceResponse:
    return PartitionProduceResponse(
        index=index,
        error_code=error,
        base_offset=-1,
        log_start_offset=log.log_start_offset,
        error_message=message,
    )
