"""Transactional plans to wire requests and wire responses to codes (pure).

The :class:`~kclient.producer.transactions.TransactionManager` plans in terms of
``*Plan`` values; this module turns a plan into the request dataclass for the
negotiated version, and a response into what the matching ``handle_*`` takes.
Version ceilings: AddPartitionsToTxn v4+ is the broker-to-broker batched form
(KIP-890) and EndTxn v5 changes the epoch on every commit (KIP-890 part 2); this
client implements neither, so it asks for at most v3 and v4.
"""

from __future__ import annotations

from dataclasses import dataclass

from kclient.producer.txn_plans import (
    TP,
    AddOffsetsPlan,
    AddPartitionsPlan,
    EndTxnPlan,
    FindCoordinatorPlan,
    InitProducerIdPlan,
    TxnOffsetCommitPlan,
    TxnRequest,
)
from protocol.api import Request
from protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic,
)
from protocol.messages.end_txn import EndTxnRequest
from protocol.messages.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse
from protocol.messages.init_producer_id import InitProducerIdRequest
from protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
    TxnOffsetCommitResponse,
)

__all__ = [
    "MAX_VERSIONS",
    "MIN_BUMP_VERSION",
    "MIN_VERSIONS",
    "Coordinator",
    "build_request",
    "coordinator_of",
    "offset_commit_codes",
    "partition_codes",
    "request_class",
]

MIN_BUMP_VERSION = 3  # InitProducerId carrying the current producer id/epoch (KIP-360)
# Highest versions this client speaks (see the module docstring).
MAX_VERSIONS: dict[type[Request], int] = {AddPartitionsToTxnRequest: 3, EndTxnRequest: 4}
# FindCoordinator v0 has no key type, so it cannot find a transaction coordinator.
MIN_VERSIONS: dict[type[Request], int] = {FindCoordinatorRequest: 1}


@dataclass(frozen=True, slots=True)
class Coordinator:
    """FindCoordinator's answer for one key."""

    error_code: int
    node_id: int = -1
    host: str = ""
    port: int = 0


def request_class(plan: TxnRequest) -> type[Request]:
    return _CLASSES[type(plan)]


def build_request(plan: TxnRequest, version: int, *, bump: bool = True) -> Request:
    """The request for ``plan`` at ``version``. ``bump=False``: an InitProducerId
    asks for a fresh producer id instead of bumping the current epoch (the broker
    or version lacks KIP-360; a fresh id fences and aborts all the same)."""
    if isinstance(plan, FindCoordinatorPlan):
        if version >= 4:
            return FindCoordinatorRequest(key_type=plan.key_type, coordinator_keys=[plan.key])
        return FindCoordinatorRequest(key=plan.key, key_type=plan.key_type)
    if isinstance(plan, InitProducerIdPlan):
        pid, epoch = plan.producer_id, plan.producer_epoch
        if not bump or version < MIN_BUMP_VERSION:
            pid, epoch = -1, -1
        return InitProducerIdRequest(
            transactional_id=plan.transactional_id,
            transaction_timeout_ms=plan.transaction_timeout_ms,
            producer_id=pid,
            producer_epoch=epoch,
        )
    if isinstance(plan, AddPartitionsPlan):
        topics: dict[str, list[int]] = {}
        for topic, partition in plan.partitions:
            topics.setdefault(topic, []).append(partition)
        return AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=plan.transactional_id,
            v3_and_below_producer_id=plan.producer_id,
            v3_and_below_producer_epoch=plan.producer_epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(name=t, partitions=p)
                                 for t, p in topics.items()],
        )  # fmt: skip
    if isinstance(plan, AddOffsetsPlan):
        return AddOffsetsToTxnRequest(
            transactional_id=plan.transactional_id,
            producer_id=plan.producer_id,
            producer_epoch=plan.producer_epoch,
            group_id=plan.group_id,
        )
    if isinstance(plan, TxnOffsetCommitPlan):
        return _txn_offset_commit(plan)
    return EndTxnRequest(
        transactional_id=plan.transactional_id,
        producer_id=plan.producer_id,
        producer_epoch=plan.producer_epoch,
        committed=plan.committed,
    )


def _txn_offset_commit(plan: TxnOffsetCommitPlan) -> TxnOffsetCommitRequest:
    by_topic: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
    for (topic, partition), om in plan.offsets:
        by_topic.setdefault(topic, []).append(
            TxnOffsetCommitRequestPartition(
                partition_index=partition,
                committed_offset=om.offset,
                committed_leader_epoch=om.leader_epoch,
                committed_metadata=om.metadata,
            )
        )
    group = plan.group
    return TxnOffsetCommitRequest(
        transactional_id=plan.transactional_id,
        group_id=group.group_id,
        producer_id=plan.producer_id,
        producer_epoch=plan.producer_epoch,
        generation_id=group.generation_id,
        member_id=group.member_id,
        group_instance_id=group.group_instance_id,
        topics=[TxnOffsetCommitRequestTopic(name=t, partitions=p) for t, p in by_topic.items()],
    )


def coordinator_of(plan: FindCoordinatorPlan, response: FindCoordinatorResponse) -> Coordinator:
    if response.coordinators:  # v4+: one entry per key asked
        match = [c for c in response.coordinators if c.key == plan.key] or response.coordinators
        c = match[0]
        return Coordinator(c.error_code, c.node_id, c.host, c.port)
    if response.error_code:
        return Coordinator(response.error_code)
    return Coordinator(0, response.node_id, response.host, response.port)


def partition_codes(response: AddPartitionsToTxnResponse) -> dict[TP, int]:
    return {
        (topic.name, part.partition_index): part.partition_error_code
        for topic in response.results_by_topic_v3_and_below
        for part in topic.results_by_partition
    }


def offset_commit_codes(response: TxnOffsetCommitResponse) -> dict[TP, int]:
    return {
        (topic.name, part.partition_index): part.error_code
        for topic in response.topics
        for part in topic.partitions
    }


_CLASSES: dict[type[object], type[Request]] = {
    FindCoordinatorPlan: FindCoordinatorRequest,
    InitProducerIdPlan: InitProducerIdRequest,
    AddPartitionsPlan: AddPartitionsToTxnRequest,
    AddOffsetsPlan: AddOffsetsToTxnRequest,
    TxnOffsetCommitPlan: TxnOffsetCommitRequest,
    EndTxnPlan: EndTxnRequest,
}
