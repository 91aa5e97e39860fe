"""InitProducerId and the transaction APIs (AddPartitions/AddOffsets/EndTxn/TxnOffsetCommit)."""

from __future__ import annotations

from kclient.testing.mock.codes import Err
from kclient.testing.mock.groups import CommittedOffset
from kclient.testing.mock.handlers.common import Ctx
from kclient.testing.mock.handlers.groups import coordinator_error as group_coordinator_error
from protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse
from protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopicResult,
)
from protocol.messages.end_txn import EndTxnRequest, EndTxnResponse
from protocol.messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

__all__ = [
    "handle_add_offsets_to_txn",
    "handle_add_partitions_to_txn",
    "handle_end_txn",
    "handle_init_producer_id",
    "handle_txn_offset_commit",
]


def _txn_coordinator_error(ctx: Ctx, transactional_id: str) -> int:
    injected = ctx.request_error()
    if injected is not None:
        return injected
    if ctx.cluster.txn_coordinator(transactional_id) != ctx.broker:
        return Err.NOT_COORDINATOR
    return 0


def _fenced_code(ctx: Ctx, error: int) -> int:
    # Clients older than PRODUCER_FENCED (InitProducerId < v4 era) expect
    # INVALID_PRODUCER_EPOCH for the same condition.
    if error == Err.PRODUCER_FENCED and ctx.api_key == 22 and ctx.version < 4:
        return Err.INVALID_PRODUCER_EPOCH
    return error


def handle_init_producer_id(ctx: Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse:
    tid = req.transactional_id
    error = _txn_coordinator_error(ctx, tid) if tid else (ctx.request_error() or 0)
    if error:
        return InitProducerIdResponse(error_code=error, producer_id=-1, producer_epoch=-1)
    error, pid, epoch, effect = ctx.cluster.txn.init_producer_id(
        tid, req.transaction_timeout_ms, req.producer_id, req.producer_epoch, ctx.now
    )
    if effect is not None:
        ctx.cluster.apply_end_txn(effect, ctx.now)
    return InitProducerIdResponse(
        error_code=_fenced_code(ctx, error), producer_id=pid, producer_epoch=epoch
    )


def handle_add_partitions_to_txn(
    ctx: Ctx, req: AddPartitionsToTxnRequest
) -> AddPartitionsToTxnResponse:
    tid = req.v3_and_below_transactional_id
    error = _txn_coordinator_error(ctx, tid) or ctx.cluster.txn.check(
        tid, req.v3_and_below_producer_id, req.v3_and_below_producer_epoch
    )
    wanted = [(t.name, p) for t in req.v3_and_below_topics for p in t.partitions]
    per: dict[tuple[str, int], int] = {}
    if not error:
        unknown = [tp for tp in wanted if ctx.cluster.partition(*tp) is None]
        if unknown:
            per = {tp: Err.OPERATION_NOT_ATTEMPTED for tp in wanted}
            per.update({tp: Err.UNKNOWN_TOPIC_OR_PARTITION for tp in unknown})
        else:
            ctx.cluster.txn.add(tid, partitions=tuple(wanted), now=ctx.now)
    results = []
    for t in req.v3_and_below_topics:
        results.append(
            AddPartitionsToTxnTopicResult(
                name=t.name,
                results_by_partition=[
                    AddPartitionsToTxnPartitionResult(
                        partition_index=p, partition_error_code=per.get((t.name, p), error)
                    )
                    for p in t.partitions
                ],
            )
        )
    return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=results)


def handle_add_offsets_to_txn(ctx: Ctx, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    tid = req.transactional_id
    error = _txn_coordinator_error(ctx, tid) or ctx.cluster.txn.check(
        tid, req.producer_id, req.producer_epoch
    )
    if not error:
        ctx.cluster.txn.add(tid, group=req.group_id, now=ctx.now)
    return AddOffsetsToTxnResponse(error_code=error)


def handle_end_txn(ctx: Ctx, req: EndTxnRequest) -> EndTxnResponse:
    tid = req.transactional_id
    error = _txn_coordinator_error(ctx, tid)
    if not error:
        code, effect = ctx.cluster.txn.end(tid, req.producer_id, req.producer_epoch, req.committed)
        error = code
        if effect is not None:
            ctx.cluster.apply_end_txn(effect, ctx.now)
    return EndTxnResponse(error_code=error, producer_id=-1, producer_epoch=-1)


def handle_txn_offset_commit(ctx: Ctx, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    error = group_coordinator_error(ctx, req.group_id)
    if not error:
        entry = ctx.cluster.txn.entries.get(req.transactional_id)
        if entry is None or entry.producer_id != req.producer_id:
            error = Err.INVALID_PRODUCER_ID_MAPPING
        elif req.producer_epoch < entry.epoch:
            error = Err.PRODUCER_FENCED
        elif req.group_id not in entry.groups:
            error = Err.INVALID_TXN_STATE
    if not error and ctx.version >= 3 and req.generation_id >= 0:
        group = ctx.cluster.group(req.group_id, create=False)
        if group is not None:
            error = group.check_commit(req.member_id, req.group_instance_id, req.generation_id)
    if not error:
        offsets = {
            (t.name, p.partition_index): CommittedOffset(
                p.committed_offset, p.committed_leader_epoch, p.committed_metadata
            )
            for t in req.topics
            for p in t.partitions
        }
        ctx.cluster.txn_offset_commit(req.group_id, req.producer_id, offsets)
    return TxnOffsetCommitResponse(
        topics=[
            TxnOffsetCommitResponseTopic(
                name=t.name,
                partitions=[
                    TxnOffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=error
                    )
                    for p in t.partitions
                ],
            )
            for t in req.topics
        ]
    )
