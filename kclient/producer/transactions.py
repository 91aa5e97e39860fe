"""Transaction state machine and transactional request planning (pure, I/O-free).

Theory of operation
-------------------
A transactional producer owns a ``transactional_id``. InitProducerId at the
transaction coordinator gives it a producer id and epoch and fences every older
instance with the same id (their epoch is now stale). A transaction is then:
AddPartitionsToTxn for each partition before its first batch is sent (batched:
one request carries every newly touched partition), optionally AddOffsetsToTxn
(coordinator learns the group) plus TxnOffsetCommit at the *group* coordinator
(carrying the consumer's generation and member id, so a zombie from an older
generation is fenced, KIP-447), and finally EndTxn(commit or abort), which the
coordinator turns into markers on every partition.

Only one transactional request is outstanding at a time, in priority order:
FindCoordinator (when the next request's coordinator is unknown), InitProducerId,
AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn. InitProducerId
(as an epoch bump) and EndTxn wait until no record of the transaction is queued
or in flight (``records_pending``), so no batch of the old epoch or transaction
lands after the marker.

Errors (reliability.md 1.5 rule 5, scenarios T1-T4):

* NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE: find the coordinator again, then
  retry. CONCURRENT_TRANSACTIONS and other retriable codes: retry after an
  exponential backoff. Neither is visible to the caller.
* Idempotence errors inside a transaction (UNKNOWN_PRODUCER_ID, OOSN, a record
  that failed or expired, reported with :meth:`on_record_failed`) make the
  transaction *abortable*: ``commit_transaction()`` raises
  :class:`TransactionAbortableError` and never reports success. A failed record
  may leave a sequence hole, so the abort is an epoch bump (InitProducerId with
  the current pid/epoch, KIP-360) instead of EndTxn; the coordinator aborts the
  open transaction itself.
* Fencing (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED) is FATAL: every later call raises.
* EndTxn(commit) without a definitive answer (no response, timeout,
  UNKNOWN_SERVER_ERROR) may or may not have committed. Re-sending it could
  silently fold the next transaction's work into an unknown one, so the state
  becomes END_TXN_UNKNOWN: the commit raises
  :class:`TransactionOutcomeUnknownError`, a second commit is refused, and
  ``abort_transaction()`` or the next ``begin_transaction()`` re-initialises
  (epoch bump) first; the bump makes the coordinator finish the old one.

States (``TxnState``)::

    UNINITIALIZED -init-> INITIALIZING -ok-> READY -begin-> IN_TRANSACTION
    IN_TRANSACTION -commit-> COMMITTING_TRANSACTION -ok-> READY
                                     └─unknown EndTxn─> END_TXN_UNKNOWN -abort/begin-> INITIALIZING
    IN_TRANSACTION / COMMITTING -abortable-> ABORTABLE_ERROR -abort-> ABORTING_TRANSACTION
    ABORTING_TRANSACTION -ok-> READY, or -bump-> INITIALIZING -ok-> READY
    any -fatal-> FATAL_ERROR (terminal)

User calls return a :class:`TxnOperation` the facade waits on; the Sender calls
:meth:`TransactionManager.poll`, sends the returned plan, and feeds the answer
to the matching ``handle_*``. Time is an injected ``now`` in milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kclient.errors import (
    KafkaError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionFatalError,
    TransactionOutcomeUnknownError,
    TransactionStateError,
)
from kclient.producer.idempotence import NO_RESPONSE
from kclient.producer.txn_plans import (
    _COORDINATOR_MOVED,
    _FATAL,
    _FENCED,
    _REJECTED_COMMIT,
    _UNCONFIRMED,
    CONCURRENT_TRANSACTIONS,
    COORDINATOR_GROUP,
    COORDINATOR_TRANSACTION,
    OPERATION_NOT_ATTEMPTED,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    RECORD_EXPIRED,
    TP,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    TRANSITIONS,
    UNKNOWN_PRODUCER_ID,
    AddOffsetsPlan,
    AddPartitionsPlan,
    EndTxnPlan,
    FindCoordinatorPlan,
    GroupMetadata,
    InitProducerIdPlan,
    TxnAction,
    TxnDecision,
    TxnOffsetCommitPlan,
    TxnOperation,
    TxnPoll,
    TxnRequest,
    TxnState,
    broker_retriable,
)
from kclient.structs import OffsetAndMetadata

__all__ = ["RECORD_EXPIRED", "TRANSITIONS", "TransactionManager", "TxnState"]


_UNUSABLE = "the transactional producer is unusable"


@dataclass(slots=True)
class _Txn:
    """What the current transaction touched and still has to tell the coordinator."""

    pending: set[TP] = field(default_factory=set)  # touched, AddPartitions not yet sent/ok
    added: set[TP] = field(default_factory=set)
    offsets: dict[TP, OffsetAndMetadata] = field(default_factory=dict)
    group: GroupMetadata | None = None
    group_added: bool = False  # AddOffsetsToTxn succeeded for ``group``
    started: bool = False  # the coordinator knows this transaction (EndTxn needed)


class TransactionManager:
    """Transaction state, user operations, and the next transactional request."""

    def __init__(
        self,
        transactional_id: str,
        *,
        transaction_timeout_ms: int = 60_000,
        retry_backoff_ms: float = 100.0,
        retry_backoff_max_ms: float = 1_000.0,
        jitter: Callable[[float, float], float] | None = None,
        is_retriable: Callable[[int], bool] = broker_retriable,
    ) -> None:
        self.transactional_id = transactional_id
        self._timeout_ms = transaction_timeout_ms
        self._backoff_ms = retry_backoff_ms
        self._backoff_max_ms = retry_backoff_max_ms
        self._jitter = jitter if jitter is not None else random.Random().uniform
        self._is_retriable = is_retriable
        self.state = TxnState.UNINITIALIZED
        self.producer_id = -1
        self.producer_epoch = -1
        self.generation = 0  # bumped by every successful InitProducerId
        self.last_error_code = 0
        self._fatal: TransactionFatalError | None = None
        self._abortable_code = 0
        self._bump_required = False
        self._begin_after_init = False
        self._txn = _Txn()
        self._op: TxnOperation | None = None  # init / begin-after-bump / commit / abort
        self._offsets_op: TxnOperation | None = None
        self._in_flight: TxnRequest | None = None
        self._retry_at = 0.0
        self._attempts = 0
        self.coordinators: dict[tuple[int, str], int] = {}

    # -- state machine -----------------------------------------------------------

    def _transition_to(self, new: TxnState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise TransactionStateError(f"illegal transition {self.state.value} -> {new.value}")
        self.state = new

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:  # a fresh instance: one shared would pile up tracebacks
            raise type(self._fatal)(_UNUSABLE, self._fatal.error_code)

    def _state_error(self, call: str) -> TransactionStateError:
        return TransactionStateError(f"{call}() is not allowed in state {self.state.value}")

    def _abortable_error(self) -> TransactionAbortableError:
        return TransactionAbortableError(
            "the transaction cannot commit and must be aborted", self._abortable_code
        )

    # -- user operations ---------------------------------------------------------

    def init_transactions(self) -> TxnOperation:
        self._raise_if_fatal()
        if self.state is not TxnState.UNINITIALIZED:
            raise self._state_error("init_transactions")
        self._transition_to(TxnState.INITIALIZING)
        return self._new_op("init")

    def begin_transaction(self) -> TxnOperation:
        """Start a transaction; after an unknown EndTxn this first re-initialises."""
        self._raise_if_fatal()
        if self.state is TxnState.END_TXN_UNKNOWN:
            self._start_bump()
            self._begin_after_init = True
            return self._new_op("begin")
        if self.state is not TxnState.READY:
            raise self._state_error("begin_transaction")
        self._transition_to(TxnState.IN_TRANSACTION)
        self._txn = _Txn()
        return TxnOperation("begin", done=True)

    def add_partition(self, tp: TP) -> None:
        """Record that a record for ``tp`` is about to be appended in this transaction."""
        self._raise_if_fatal()
        if self.state is TxnState.ABORTABLE_ERROR:
            raise self._abortable_error()
        if self.state is not TxnState.IN_TRANSACTION:
            raise self._state_error("send")
        if tp not in self._txn.added:
            self._txn.pending.add(tp)

    def send_offsets_to_transaction(
        self, offsets: Mapping[TP, OffsetAndMetadata], group: GroupMetadata
    ) -> TxnOperation:
        self._raise_if_fatal()
        if self.state is TxnState.ABORTABLE_ERROR:
            raise self._abortable_error()
        if self.state is not TxnState.IN_TRANSACTION or self._offsets_op is not None:
            raise self._state_error("send_offsets_to_transaction")
        if self._txn.group is not None and self._txn.group.group_id != group.group_id:
            self._txn.group_added = False
        self._txn.group = group
        self._txn.offsets = dict(offsets)
        self._offsets_op = TxnOperation("send_offsets")
        return self._offsets_op

    def commit_transaction(self) -> TxnOperation:
        """Commit; raises instead of committing a doomed or unknown transaction."""
        self._raise_if_fatal()
        if self.state is TxnState.ABORTABLE_ERROR:
            raise self._abortable_error()
        if self.state is TxnState.END_TXN_UNKNOWN:
            raise TransactionOutcomeUnknownError(
                "the last commit's outcome is unknown; retrying it is refused, "
                "abort or begin a new transaction",
                self.last_error_code,
            )
        if self.state is not TxnState.IN_TRANSACTION:
            raise self._state_error("commit_transaction")
        self._transition_to(TxnState.COMMITTING_TRANSACTION)
        op = self._new_op("commit")
        if not self._txn.pending and self._offsets_op is None and self._unstarted():
            self._finish_transaction()  # nothing reached the coordinator
        return op

    def abort_transaction(self) -> TxnOperation:
        self._raise_if_fatal()
        if self.state is TxnState.END_TXN_UNKNOWN:
            self._start_bump()
            return self._new_op("abort")
        if self.state not in (TxnState.IN_TRANSACTION, TxnState.ABORTABLE_ERROR):
            raise self._state_error("abort_transaction")
        self._transition_to(TxnState.ABORTING_TRANSACTION)
        op = self._new_op("abort")
        self._txn.pending.clear()
        self._txn.offsets.clear()
        if self._offsets_op is not None:
            self._offsets_op.finish(TransactionStateError("the transaction was aborted"))
            self._offsets_op = None
        if self._bump_required:
            self._start_bump()
        elif self._unstarted():
            self._finish_transaction()
        return op

    def on_record_failed(self, error_code: int) -> None:
        """A record of the transaction failed (Kafka code) or expired (RECORD_EXPIRED)."""
        if error_code in _FENCED or error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            self._fail_fatally(error_code)
        elif self.state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING_TRANSACTION):
            self._bump_required = True  # its sequence may leave a hole
            self._to_abortable(error_code)

    def request_bump(self) -> None:
        """The idempotence layer needs a new epoch (a sequence hole, an unknown
        producer id): the abort of this transaction re-initialises instead of EndTxn."""
        if self.state is not TxnState.FATAL_ERROR:
            self._bump_required = True

    # -- Sender side -------------------------------------------------------------

    @property
    def is_fatal(self) -> bool:
        return self.state is TxnState.FATAL_ERROR

    def fatal_error(self) -> TransactionFatalError | None:
        """A fresh instance of the fatal error (None while usable)."""
        if self._fatal is None:
            return None
        return type(self._fatal)(_UNUSABLE, self._fatal.error_code)

    @property
    def busy(self) -> bool:
        """A user operation or a transactional request is still under way."""
        waiting = (
            TxnState.INITIALIZING,
            TxnState.COMMITTING_TRANSACTION,
            TxnState.ABORTING_TRANSACTION,
        )
        return self._in_flight is not None or self.state in waiting

    @property
    def accepts_records(self) -> bool:
        """Whether batches may be queued now; any other batch belongs to a
        transaction that is being (or was) aborted and must fail unsent."""
        return self.state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING_TRANSACTION)

    @property
    def is_aborting(self) -> bool:
        """The Sender fails queued (undrained) batches of the transaction while true."""
        return self.state in (TxnState.ABORTING_TRANSACTION, TxnState.ABORTABLE_ERROR)

    def partition_ready(self, tp: TP) -> bool:
        """Whether batches for ``tp`` may be drained (AddPartitionsToTxn succeeded)."""
        sending = self.state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING_TRANSACTION)
        return sending and tp in self._txn.added

    def poll(self, now: float, *, records_pending: bool) -> TxnPoll:
        """The next request to send, or None with the time to poll again."""
        if self._in_flight is not None or self.state is TxnState.FATAL_ERROR:
            return TxnPoll(None, None)
        if now < self._retry_at:
            return TxnPoll(None, self._retry_at)
        plan = self._next_plan(records_pending)
        if plan is None:
            return TxnPoll(None, None)
        node = self._coordinator_for(plan)
        if node is None:
            plan = self._find_plan(plan)
        self._in_flight = plan
        return TxnPoll(plan, None)

    def _next_plan(self, records_pending: bool) -> TxnRequest | None:
        s, txn = self.state, self._txn
        if s is TxnState.INITIALIZING:
            return None if records_pending else self.create_init_producer_id()
        if s not in (TxnState.IN_TRANSACTION, TxnState.COMMITTING_TRANSACTION):
            if s is TxnState.ABORTING_TRANSACTION and self._bump_required:
                # A hole appeared after abort() decided on EndTxn: bump instead.
                self._start_bump()
                return None if records_pending else self.create_init_producer_id()
            if s is TxnState.ABORTING_TRANSACTION and not records_pending:
                return self._end_or_finish(committed=False)
            return None
        if txn.pending:
            return self.create_add_partitions()
        if txn.group is not None and txn.offsets and not txn.group_added:
            return self.create_add_offsets()
        if txn.group is not None and txn.offsets:
            return self.create_txn_offset_commit()
        if s is TxnState.COMMITTING_TRANSACTION and not records_pending:
            return self._end_or_finish(committed=True)
        return None

    def _end_or_finish(self, *, committed: bool) -> EndTxnPlan | None:
        if self._txn.started:
            return self.create_end_txn(committed=committed)
        self._finish_transaction()
        return None

    def _unstarted(self) -> bool:
        """The coordinator surely knows nothing of this transaction: EndTxn is not needed."""
        in_flight = isinstance(self._in_flight, (AddPartitionsPlan, AddOffsetsPlan))
        return not self._txn.started and not in_flight

    def _coordinator_for(self, plan: TxnRequest) -> int | None:
        if isinstance(plan, TxnOffsetCommitPlan):
            return self.coordinators.get((COORDINATOR_GROUP, plan.group.group_id))
        return self.coordinators.get((COORDINATOR_TRANSACTION, self.transactional_id))

    def _find_plan(self, plan: TxnRequest) -> FindCoordinatorPlan:
        if isinstance(plan, TxnOffsetCommitPlan):
            return FindCoordinatorPlan(plan.group.group_id, COORDINATOR_GROUP)
        return FindCoordinatorPlan(self.transactional_id, COORDINATOR_TRANSACTION)

    # -- request planners: create_* / handle_* -----------------------------------

    def _ids(self) -> tuple[int, str, int, int]:
        node = self.coordinators.get((COORDINATOR_TRANSACTION, self.transactional_id), -1)
        return node, self.transactional_id, self.producer_id, self.producer_epoch

    def create_init_producer_id(self) -> InitProducerIdPlan:
        return InitProducerIdPlan(*self._ids(), self._timeout_ms)

    def create_add_partitions(self) -> AddPartitionsPlan:
        return AddPartitionsPlan(*self._ids(), tuple(sorted(self._txn.pending)))

    def create_add_offsets(self) -> AddOffsetsPlan:
        assert self._txn.group is not None
        return AddOffsetsPlan(*self._ids(), self._txn.group.group_id)

    def create_txn_offset_commit(self) -> TxnOffsetCommitPlan:
        group = self._txn.group
        assert group is not None
        _, tid, pid, epoch = self._ids()
        node = self.coordinators.get((COORDINATOR_GROUP, group.group_id), -1)
        offsets = tuple(sorted(self._txn.offsets.items()))
        return TxnOffsetCommitPlan(node, tid, pid, epoch, group, offsets)

    def create_end_txn(self, *, committed: bool) -> EndTxnPlan:
        return EndTxnPlan(*self._ids(), committed)

    def _take(self, plan: TxnRequest) -> bool:
        """Accept the response to ``plan`` only if it is the outstanding request."""
        if self._in_flight is not plan:
            return False
        self._in_flight = None
        return self.state is not TxnState.FATAL_ERROR

    def handle_find_coordinator(
        self, plan: FindCoordinatorPlan, error_code: int, node_id: int, now: float
    ) -> TxnDecision:
        if not self._take(plan):
            return TxnDecision(TxnAction.IGNORED, error_code)
        if error_code == 0:
            self.coordinators[(plan.key_type, plan.key)] = node_id
            return TxnDecision(TxnAction.DONE)
        if plan.key_type == COORDINATOR_TRANSACTION or error_code in _FATAL:
            return self._common(error_code, now, abortable=False)
        return self._common(error_code, now, abortable=True)

    def handle_init_producer_id(
        self, plan: InitProducerIdPlan, error_code: int, producer_id: int, epoch: int, now: float
    ) -> TxnDecision:
        if not self._take(plan):
            return TxnDecision(TxnAction.IGNORED, error_code)
        if error_code != 0:
            return self._common(error_code, now, abortable=False)
        self._succeeded()
        self.producer_id, self.producer_epoch = producer_id, epoch
        self.generation += 1
        self._bump_required = False
        self._abortable_code = 0
        self._transition_to(TxnState.READY)
        self._txn = _Txn()
        if self._begin_after_init:
            self._begin_after_init = False
            self._transition_to(TxnState.IN_TRANSACTION)
        self._finish_op()
        return TxnDecision(TxnAction.DONE)

    def handle_add_partitions(
        self, plan: AddPartitionsPlan, results: Mapping[TP, int], now: float, top_level: int = 0
    ) -> TxnDecision:
        """``results`` maps each partition to its code; ``top_level`` is v4's request code."""
        if not self._take(plan):
            return TxnDecision(TxnAction.IGNORED, top_level)
        codes = [top_level]
        if not top_level:
            codes = [results.get(tp, NO_RESPONSE) for tp in plan.partitions]
            for tp, code in zip(plan.partitions, codes, strict=True):
                if code != 0:
                    continue
                self._txn.pending.discard(tp)
                self._txn.added.add(tp)
                self._txn.started = True
        failed = [c for c in codes if c not in (0, OPERATION_NOT_ATTEMPTED)]
        if not failed:
            self._succeeded()
            return TxnDecision(TxnAction.DONE)
        return self._common(self._worst(failed), now, abortable=True)

    def handle_add_offsets(self, plan: AddOffsetsPlan, error_code: int, now: float) -> TxnDecision:
        if not self._take(plan):
            return TxnDecision(TxnAction.IGNORED, error_code)
        if error_code != 0:
            return self._common(error_code, now, abortable=True)
        self._succeeded()
        self._txn.group_added = True
        self._txn.started = True
        return TxnDecision(TxnAction.DONE)

    def handle_txn_offset_commit(
        self, plan: TxnOffsetCommitPlan, results: Mapping[TP, int], now: float
    ) -> TxnDecision:
        """Per-partition codes; committed partitions are dropped, the rest retried."""
        if not self._take(plan):
            return TxnDecision(TxnAction.IGNORED)
        failed = []
        for tp, _ in plan.offsets:
            code = results.get(tp, NO_RESPONSE)
            if code == 0:
                self._txn.offsets.pop(tp, None)
            else:
                failed.append(code)
        if not failed:
            self._succeeded()
            if self._offsets_op is not None:
                self._offsets_op.finish()
                self._offsets_op = None
            return TxnDecision(TxnAction.DONE)
        code = self._worst(failed)
        if code in _COORDINATOR_MOVED:
            self.coordinators.pop((COORDINATOR_GROUP, plan.group.group_id), None)
            self._schedule_retry(now)
            return TxnDecision(TxnAction.FIND_COORDINATOR, code)
        return self._common(code, now, abortable=True)

    def handle_end_txn(self, plan: EndTxnPlan, error_code: int, now: float) -> TxnDecision:
        ending = (TxnState.COMMITTING_TRANSACTION, TxnState.ABORTING_TRANSACTION)
        if not self._take(plan) or self.state not in ending:
            return TxnDecision(TxnAction.IGNORED, error_code)
        if error_code == 0:
            self._succeeded()
            self._finish_transaction()
            return TxnDecision(TxnAction.DONE)
        retry = error_code not in _UNCONFIRMED and self._is_retriable(error_code)
        if error_code in _FATAL or error_code in _COORDINATOR_MOVED or retry:
            return self._common(error_code, now, abortable=True)
        self.last_error_code = error_code
        if plan.committed and error_code in _REJECTED_COMMIT:
            return self._common(error_code, now, abortable=True)
        if not plan.committed:  # an unconfirmed or failed abort: the bump aborts instead
            self._start_bump()
            return TxnDecision(TxnAction.RETRY, error_code)
        self._transition_to(TxnState.END_TXN_UNKNOWN)
        self._txn = _Txn()
        self._finish_op(
            TransactionOutcomeUnknownError("EndTxn(commit) outcome unknown", error_code)
        )
        return TxnDecision(TxnAction.OUTCOME_UNKNOWN, error_code)

    # -- shared outcome handling -------------------------------------------------

    def _worst(self, codes: list[int]) -> int:
        """The code that decides a multi-partition answer: fatal > abortable > retry."""

        def rank(c: int) -> int:
            if c in _FATAL:
                return 0
            return 2 if c in _COORDINATOR_MOVED or self._is_retriable(c) else 1

        return min(codes, key=rank)

    def _common(self, code: int, now: float, *, abortable: bool) -> TxnDecision:
        """Classify a failure: fatal, coordinator moved, retriable, else abortable/fatal."""
        self.last_error_code = code
        if code in _FATAL:
            self._fail_fatally(code)
            return TxnDecision(TxnAction.FATAL, code)
        if code in _COORDINATOR_MOVED:
            self.coordinators.pop((COORDINATOR_TRANSACTION, self.transactional_id), None)
            self._schedule_retry(now)
            return TxnDecision(TxnAction.FIND_COORDINATOR, code)
        if code == CONCURRENT_TRANSACTIONS or self._is_retriable(code):
            self._schedule_retry(now)
            return TxnDecision(TxnAction.RETRY, code)
        if not abortable:  # InitProducerId, FindCoordinator(transaction): nothing to abort
            self._fail_fatally(code)
            return TxnDecision(TxnAction.FATAL, code)
        if code in (UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER):
            self._bump_required = True
        self._to_abortable(code)
        return TxnDecision(TxnAction.ABORTABLE, code)

    def _schedule_retry(self, now: float) -> None:
        delay = min(self._backoff_ms * 2.0**self._attempts, self._backoff_max_ms)
        self._attempts += 1
        self._retry_at = now + delay * self._jitter(0.8, 1.2)

    def _succeeded(self) -> None:
        self._attempts = 0
        self._retry_at = 0.0

    def _to_abortable(self, code: int) -> None:
        if self.state not in (TxnState.IN_TRANSACTION, TxnState.COMMITTING_TRANSACTION):
            return
        self._abortable_code = code
        self._transition_to(TxnState.ABORTABLE_ERROR)
        self._txn.pending.clear()
        error = self._abortable_error()
        if self._offsets_op is not None:
            self._offsets_op.finish(error)
            self._offsets_op = None
        self._finish_op(error)

    def _fail_fatally(self, code: int) -> None:
        if self.state is TxnState.FATAL_ERROR:
            return
        cls = ProducerFencedError if code in _FENCED else TransactionFatalError
        self._fatal = cls(_UNUSABLE, code)
        self._transition_to(TxnState.FATAL_ERROR)
        self._in_flight = None
        for op in (self._op, self._offsets_op):
            if op is not None:
                op.finish(self._fatal)
        self._op = self._offsets_op = None

    def _start_bump(self) -> None:
        """Re-initialise with the current pid/epoch (KIP-360); aborts the open transaction."""
        self._transition_to(TxnState.INITIALIZING)
        self._txn = _Txn()

    def _finish_transaction(self) -> None:
        self._transition_to(TxnState.READY)
        self._txn = _Txn()
        self._finish_op()

    def _new_op(self, kind: str) -> TxnOperation:
        self._op = TxnOperation(kind)
        return self._op

    def _finish_op(self, error: KafkaError | None = None) -> None:
        if self._op is not None:
            self._op.finish(error)
            self._op = None
