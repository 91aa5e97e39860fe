"""The pieces that wire transactions into the producer, without I/O: request building
per version, the manager's Sender-side queries, the idempotence hand-over of an
externally obtained producer id, the group metadata type and the error tree."""

from __future__ import annotations

import pytest

import kclient
from kclient._clock import ManualClock
from kclient.errors import (
    IllegalStateError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
    TransactionError,
    TransactionFatalError,
    TransactionOutcomeUnknownError,
    TransactionStateError,
)
from kclient.producer.batch import ProducerBatch
from kclient.producer.idempotence import IdempotenceManager, ProducerIdState
from kclient.producer.txn_plans import (
    AddPartitionsPlan,
    EndTxnPlan,
    FindCoordinatorPlan,
    InitProducerIdPlan,
    TxnOffsetCommitPlan,
    TxnState,
)
from kclient.producer.txn_requests import build_request, coordinator_of
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import OffsetAndMetadata
from protocol.messages.find_coordinator import Coordinator, FindCoordinatorResponse

from .test_transactions import in_txn, run

# -- request building ---------------------------------------------------------------


def test_find_coordinator_uses_key_list_from_v4() -> None:
    plan = FindCoordinatorPlan("tx", 1)
    old, new = build_request(plan, 3), build_request(plan, 4)
    assert (old.key, old.key_type) == ("tx", 1)  # type: ignore[attr-defined]
    assert (new.coordinator_keys, new.key_type) == (["tx"], 1)  # type: ignore[attr-defined]
    answer = FindCoordinatorResponse(
        coordinators=[Coordinator(key="other", node_id=9), Coordinator(key="tx", node_id=3)]
    )
    assert coordinator_of(plan, answer).node_id == 3
    legacy = FindCoordinatorResponse(error_code=15)
    assert coordinator_of(plan, legacy).error_code == 15


@pytest.mark.parametrize(
    ("version", "bump", "expected"), [(3, True, (7, 2)), (2, True, (-1, -1)), (5, False, (-1, -1))]
)
def test_init_producer_id_bumps_only_with_kip360(
    version: int, bump: bool, expected: tuple[int, int]
) -> None:
    request = build_request(InitProducerIdPlan(1, "tx", 7, 2, 60_000), version, bump=bump)
    assert (request.producer_id, request.producer_epoch) == expected  # type: ignore[attr-defined]
    assert request.transactional_id == "tx"  # type: ignore[attr-defined]


def test_add_partitions_groups_partitions_by_topic() -> None:
    plan = AddPartitionsPlan(1, "tx", 7, 2, (("a", 0), ("a", 2), ("b", 1)))
    request = build_request(plan, 3)
    topics = {t.name: t.partitions for t in request.v3_and_below_topics}  # type: ignore[attr-defined]
    assert topics == {"a": [0, 2], "b": [1]}
    assert request.v3_and_below_producer_epoch == 2  # type: ignore[attr-defined]


def test_txn_offset_commit_carries_the_group_identity() -> None:
    group = ConsumerGroupMetadata("g", 4, "m-1", "static-1")
    offsets = ((("in", 0), OffsetAndMetadata(42, "meta", 3)),)
    request = build_request(TxnOffsetCommitPlan(2, "tx", 7, 2, group, offsets), 3)
    r = request
    assert (r.group_id, r.generation_id, r.member_id, r.group_instance_id) == (  # type: ignore[attr-defined]
        "g", 4, "m-1", "static-1",
    )  # fmt: skip
    (part,) = r.topics[0].partitions  # type: ignore[attr-defined]
    assert (part.committed_offset, part.committed_metadata, part.committed_leader_epoch) == (
        42, "meta", 3,
    )  # fmt: skip
    assert build_request(EndTxnPlan(1, "tx", 7, 2, True), 4).committed  # type: ignore[attr-defined]


# -- the manager's Sender-side queries ----------------------------------------------


def test_bump_requested_while_aborting_replaces_end_txn() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    m.abort_transaction()
    assert m.is_aborting and not m.accepts_records and m.busy
    m.request_bump()  # e.g. an aborted batch left a sequence hole
    plans = m.poll(clock.monotonic_ms(), records_pending=False)
    assert isinstance(plans.request, InitProducerIdPlan) and plans.request.producer_id >= 0
    assert m.state is TxnState.INITIALIZING
    run(m, clock)  # (poll already took the request: nothing more is sent)
    assert m.busy  # until the InitProducerId answer arrives


def test_fatal_error_is_a_fresh_instance_each_time() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    assert m.fatal_error() is None and m.accepts_records and not m.is_fatal
    m.on_record_failed(90)
    first, second = m.fatal_error(), m.fatal_error()
    assert isinstance(first, ProducerFencedError) and isinstance(second, ProducerFencedError)
    assert first is not second and first.error_code == second.error_code == 90
    assert m.is_fatal and m.state is TxnState.FATAL_ERROR


# -- idempotence hand-over ----------------------------------------------------------


def test_adopted_producer_id_restarts_sequences_from_any_state() -> None:
    idem = IdempotenceManager(external_init=True)
    assert not idem.needs_init(0)  # the transaction manager owns InitProducerId
    idem.adopt_producer_id(5, 0)
    assert idem.state is ProducerIdState.READY and idem.can_send
    batch = ProducerBatch(("t", 0), 0, 1 << 20, (0,))
    for i in range(3):
        batch.try_append(i, None, b"x", (), 20)
    idem.assign_sequence(batch)
    assert idem.next_sequence(("t", 0)) > 0
    idem.adopt_producer_id(5, 1)  # READY -> new epoch
    assert (idem.producer_epoch, idem.next_sequence(("t", 0))) == (1, 0)
    idem.fail_fatally(90)
    idem.adopt_producer_id(5, 2)  # fatal stays fatal
    assert idem.state is ProducerIdState.FATAL


# -- types and errors ---------------------------------------------------------------


def test_group_metadata_validates() -> None:
    assert ConsumerGroupMetadata("g") == ConsumerGroupMetadata("g", -1, "", None)
    bad_values: list[dict[str, object]] = [
        {"group_id": ""},
        {"group_id": "g", "generation_id": -2},
        {"group_id": "g", "member_id": 3},
        {"group_id": "g", "group_instance_id": 1},
    ]
    for bad in bad_values:
        with pytest.raises(ValueError):
            ConsumerGroupMetadata(**bad)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        ConsumerGroupMetadata("g").group_id = "h"  # type: ignore[misc]


def test_error_tree_abortable_versus_fatal() -> None:
    assert TransactionAbortableError("x").abortable and not TransactionAbortableError("x").fatal
    assert TransactionOutcomeUnknownError("x").abortable
    assert ProducerFencedError("x", 90).fatal and isinstance(
        ProducerFencedError("x"), TransactionFatalError
    )
    assert issubclass(TransactionStateError, IllegalStateError)
    for cls in (TransactionAbortableError, TransactionAbortedError, TransactionFatalError):
        assert issubclass(cls, TransactionError) and not cls.retriable
        assert getattr(kclient, cls.__name__) is cls
    assert "error code 47" in str(TransactionFatalError("gone", 47))
    assert kclient.ConsumerGroupMetadata is ConsumerGroupMetadata
