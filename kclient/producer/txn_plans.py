"""Data the transaction manager exchanges with its driver: codes, plans, decisions.

Each ``*Plan`` names one request to send and carries what the Sender needs to
build it; the ``node_id`` is the coordinator it goes to (-1: not known yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kclient.errors import KafkaError
from kclient.producer.idempotence import NO_RESPONSE
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import OffsetAndMetadata
from protocol.errors import error_for_code

__all__ = [
    "COORDINATOR_GROUP",
    "COORDINATOR_TRANSACTION",
    "RECORD_EXPIRED",
    "TRANSITIONS",
    "AddOffsetsPlan",
    "AddPartitionsPlan",
    "EndTxnPlan",
    "FindCoordinatorPlan",
    "GroupMetadata",
    "InitProducerIdPlan",
    "TxnAction",
    "TxnDecision",
    "TxnOffsetCommitPlan",
    "TxnOperation",
    "TxnPoll",
    "TxnRequest",
    "TxnState",
    "broker_retriable",
]

TP = tuple[str, int]
# Not a Kafka code: a record of the transaction expired locally (delivery timeout).
RECORD_EXPIRED = -102
UNKNOWN_SERVER_ERROR = -1
REQUEST_TIMED_OUT = 7
NETWORK_EXCEPTION = 13
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
CONCURRENT_TRANSACTIONS = 51
PRODUCER_FENCED = 90
INVALID_PRODUCER_EPOCH = 47
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNKNOWN_PRODUCER_ID = 59
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
OPERATION_NOT_ATTEMPTED = 55
COORDINATOR_GROUP = 0
COORDINATOR_TRANSACTION = 1

_FENCED = frozenset({PRODUCER_FENCED, INVALID_PRODUCER_EPOCH})
# Fatal besides fencing: authorization of the id/cluster, INVALID_TXN_STATE,
# UNSUPPORTED_VERSION, INVALID_TRANSACTION_TIMEOUT, TRANSACTION_COORDINATOR_FENCED.
_FATAL = _FENCED | {TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 31, 35, 48, 50, 52}
# Find the coordinator again, then retry (a loading coordinator may be a new one).
_COORDINATOR_MOVED = frozenset(
    {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR}
)
# EndTxn(commit) answers that prove the commit did not happen (the producer's
# state was gone or KIP-890's TRANSACTION_ABORTABLE): the transaction is abortable.
_REJECTED_COMMIT = frozenset({UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER, 49, 120})
_UNCONFIRMED = frozenset({NO_RESPONSE, REQUEST_TIMED_OUT, NETWORK_EXCEPTION, UNKNOWN_SERVER_ERROR})


def broker_retriable(code: int) -> bool:
    return code == NO_RESPONSE or error_for_code(code).retriable


class TxnState(Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    IN_TRANSACTION = "in_transaction"
    COMMITTING_TRANSACTION = "committing_transaction"
    ABORTING_TRANSACTION = "aborting_transaction"
    ABORTABLE_ERROR = "abortable_error"
    END_TXN_UNKNOWN = "end_txn_unknown"  # EndTxn(commit) outcome unknown: must re-initialise
    FATAL_ERROR = "fatal_error"


_S = TxnState
TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    _S.UNINITIALIZED: frozenset({_S.INITIALIZING, _S.FATAL_ERROR}),
    _S.INITIALIZING: frozenset({_S.READY, _S.FATAL_ERROR}),
    _S.READY: frozenset({_S.IN_TRANSACTION, _S.FATAL_ERROR}),
    _S.IN_TRANSACTION: frozenset(
        {_S.COMMITTING_TRANSACTION, _S.ABORTING_TRANSACTION, _S.ABORTABLE_ERROR, _S.FATAL_ERROR}
    ),
    _S.COMMITTING_TRANSACTION: frozenset(
        {_S.READY, _S.ABORTABLE_ERROR, _S.END_TXN_UNKNOWN, _S.FATAL_ERROR}
    ),
    _S.ABORTING_TRANSACTION: frozenset({_S.READY, _S.INITIALIZING, _S.FATAL_ERROR}),
    _S.ABORTABLE_ERROR: frozenset({_S.ABORTING_TRANSACTION, _S.FATAL_ERROR}),
    _S.END_TXN_UNKNOWN: frozenset({_S.INITIALIZING, _S.FATAL_ERROR}),
    _S.FATAL_ERROR: frozenset(),
}


class TxnAction(Enum):
    """What a handled response meant (the manager has already updated itself)."""

    DONE = "done"
    RETRY = "retry"  # after backoff; poll() returns the request again
    FIND_COORDINATOR = "find_coordinator"  # coordinator moved: rediscover, then retry
    ABORTABLE = "abortable"
    FATAL = "fatal"
    OUTCOME_UNKNOWN = "outcome_unknown"
    IGNORED = "ignored"  # a stale response (not the outstanding request)


@dataclass(frozen=True, slots=True)
class TxnDecision:
    action: TxnAction
    error_code: int = 0


# The manager's name for the consumer's group identity (one type, owned by txn_types).
GroupMetadata = ConsumerGroupMetadata


@dataclass(frozen=True, slots=True)
class FindCoordinatorPlan:
    key: str
    key_type: int  # COORDINATOR_GROUP or COORDINATOR_TRANSACTION


@dataclass(frozen=True, slots=True)
class InitProducerIdPlan:
    node_id: int
    transactional_id: str
    producer_id: int  # -1/-1 first time; the current pair for a bump (KIP-360)
    producer_epoch: int
    transaction_timeout_ms: int


@dataclass(frozen=True, slots=True)
class AddPartitionsPlan:
    node_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[TP, ...]


@dataclass(frozen=True, slots=True)
class AddOffsetsPlan:
    node_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitPlan:
    node_id: int  # the group coordinator
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group: GroupMetadata
    offsets: tuple[tuple[TP, OffsetAndMetadata], ...]


@dataclass(frozen=True, slots=True)
class EndTxnPlan:
    node_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    committed: bool


TxnRequest = (
    FindCoordinatorPlan
    | InitProducerIdPlan
    | AddPartitionsPlan
    | AddOffsetsPlan
    | TxnOffsetCommitPlan
    | EndTxnPlan
)


@dataclass(frozen=True, slots=True)
class TxnPoll:
    request: TxnRequest | None
    next_deadline_ms: float | None  # when to poll again if nothing else happens


@dataclass(slots=True)
class TxnOperation:
    """A user call's completion: the facade waits until ``done``, then raises ``error``."""

    kind: str
    done: bool = False
    error: KafkaError | None = None

    def finish(self, error: KafkaError | None = None) -> None:
        if not self.done:
            self.done, self.error = True, error
