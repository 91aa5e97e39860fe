"""TransactionManager: transition table, request planning, T2-T4 rules, a stateful model.

The unit tests play the coordinator by hand on a manual clock. The stateful test
throws random user calls and injected responses at the manager and checks the
promises of reliability.md 1.5 rule 5: no commit reported successful after an
abortable error in its transaction, every call fails fast after a fatal error,
and an EndTxn with an unknown outcome is always followed by a re-initialisation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kclient._clock import ManualClock
from kclient.errors import (
    IllegalStateError,
    KafkaError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionFatalError,
    TransactionOutcomeUnknownError,
    TransactionStateError,
)
from kclient.producer.idempotence import NO_RESPONSE
from kclient.producer.transactions import TRANSITIONS, TransactionManager, TxnState
from kclient.producer.txn_plans import (
    COORDINATOR_GROUP,
    COORDINATOR_TRANSACTION,
    RECORD_EXPIRED,
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
    TxnRequest,
)
from kclient.structs import OffsetAndMetadata

S = TxnState
UNKNOWN_SERVER_ERROR = -1
UNKNOWN_TOPIC_OR_PARTITION = 3
REQUEST_TIMED_OUT = 7
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
TOPIC_AUTHORIZATION_FAILED = 29
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNKNOWN_PRODUCER_ID = 59
PRODUCER_FENCED = 90
FENCING = (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
PID = 1000
GROUP = GroupMetadata("g", generation_id=7, member_id="m-1", group_instance_id=None)
OFFSETS = {("in", 0): OffsetAndMetadata(42), ("in", 1): OffsetAndMetadata(7, "meta")}


def manager() -> TransactionManager:
    return TransactionManager("tx", retry_backoff_ms=100, jitter=lambda lo, hi: 1.0)


Code = int | dict[tuple[str, int], int]


def answer(m: TransactionManager, plan: TxnRequest, code: Code, now: float) -> TxnDecision:
    """Play the broker: ``code`` for every part of ``plan`` (or per partition)."""
    if isinstance(plan, AddPartitionsPlan | TxnOffsetCommitPlan):
        tps = (
            plan.partitions if isinstance(plan, AddPartitionsPlan) else [t for t, _ in plan.offsets]
        )
        codes = code if isinstance(code, dict) else dict.fromkeys(tps, code)
        if isinstance(plan, AddPartitionsPlan):
            return m.handle_add_partitions(plan, codes, now)
        return m.handle_txn_offset_commit(plan, codes, now)
    assert isinstance(code, int)
    if isinstance(plan, FindCoordinatorPlan):
        node = 2 if plan.key_type == COORDINATOR_GROUP else 1
        return m.handle_find_coordinator(plan, code, node, now)
    if isinstance(plan, InitProducerIdPlan):
        pid = PID if plan.producer_id < 0 else plan.producer_id
        return m.handle_init_producer_id(plan, code, pid, plan.producer_epoch + 1, now)
    if isinstance(plan, AddOffsetsPlan):
        return m.handle_add_offsets(plan, code, now)
    return m.handle_end_txn(plan, code, now)


def run(
    m: TransactionManager, clock: ManualClock, codes: Callable[[TxnRequest], Code] = lambda p: 0
) -> list[TxnRequest]:
    """Poll and answer (sleeping through backoffs) until nothing is left to send."""
    sent: list[TxnRequest] = []
    for _ in range(100):
        polled = m.poll(clock.monotonic_ms(), records_pending=False)
        if polled.request is None:
            if polled.next_deadline_ms is None:
                return sent
            clock.advance(polled.next_deadline_ms - clock.monotonic_ms())
            continue
        sent.append(polled.request)
        answer(m, polled.request, codes(polled.request), clock.monotonic_ms())
    raise AssertionError("the manager never settled")


def ready(clock: ManualClock | None = None) -> TransactionManager:
    m = manager()
    op = m.init_transactions()
    run(m, clock or ManualClock())
    assert op.done and op.error is None and m.state is S.READY
    return m


def in_txn(clock: ManualClock, *tps: tuple[str, int]) -> TransactionManager:
    m = ready(clock)
    m.begin_transaction()
    for tp in tps:
        m.add_partition(tp)
    run(m, clock)
    return m


def state(m: TransactionManager) -> TxnState:
    """The current state, read without mypy's narrowing from earlier asserts."""
    return m.state


def kinds(sent: list[TxnRequest]) -> list[str]:
    return [type(p).__name__.removesuffix("Plan") for p in sent]


# -- transition table -----------------------------------------------------------


def test_table_covers_every_state_and_fatal_is_terminal() -> None:
    assert set(TRANSITIONS) == set(TxnState)
    assert TRANSITIONS[S.FATAL_ERROR] == frozenset()
    for state in TxnState:
        if state is not S.FATAL_ERROR:
            assert S.FATAL_ERROR in TRANSITIONS[state]


ALL_MOVES = list(itertools.product(TxnState, TxnState))


@pytest.mark.parametrize(
    ("src", "dst"), ALL_MOVES, ids=[f"{a.name}->{b.name}" for a, b in ALL_MOVES]
)
def test_transition_table(src: TxnState, dst: TxnState) -> None:
    m = manager()
    m.state = src
    if dst in TRANSITIONS[src]:
        m._transition_to(dst)
        assert m.state is dst
    else:
        with pytest.raises(IllegalStateError):
            m._transition_to(dst)
        assert m.state is src


def test_illegal_user_calls_raise_state_errors() -> None:
    m = manager()
    for call in (m.begin_transaction, m.commit_transaction, m.abort_transaction):
        with pytest.raises(TransactionStateError):
            call()
    with pytest.raises(TransactionStateError):
        m.add_partition(("t", 0))
    m = ready()
    with pytest.raises(TransactionStateError):
        m.init_transactions()
    with pytest.raises(TransactionStateError):
        m.send_offsets_to_transaction(OFFSETS, GROUP)


# -- planning --------------------------------------------------------------------


def test_happy_path_plans_and_batches_add_partitions() -> None:
    clock = ManualClock()
    m = manager()
    op = m.init_transactions()
    sent = run(m, clock)
    assert kinds(sent) == ["FindCoordinator", "InitProducerId"]
    init = sent[1]
    assert isinstance(init, InitProducerIdPlan)
    assert (init.node_id, init.producer_id, init.producer_epoch) == (1, -1, -1)
    assert op.done and op.error is None and (m.producer_id, m.producer_epoch) == (PID, 0)

    assert m.begin_transaction().done
    m.add_partition(("t", 1))
    m.add_partition(("t", 0))
    m.add_partition(("t", 0))
    assert not m.partition_ready(("t", 0))
    sent = run(m, clock)
    assert sent == [AddPartitionsPlan(1, "tx", PID, 0, (("t", 0), ("t", 1)))]
    assert m.partition_ready(("t", 0)) and m.partition_ready(("t", 1))
    m.add_partition(("t", 0))  # already added: nothing new to send
    m.add_partition(("u", 0))
    sent = run(m, clock)
    assert sent == [AddPartitionsPlan(1, "tx", PID, 0, (("u", 0),))]


def test_send_offsets_carries_group_generation_to_group_coordinator() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.send_offsets_to_transaction(OFFSETS, GROUP)
    sent = run(m, clock)
    assert kinds(sent) == ["AddOffsets", "FindCoordinator", "TxnOffsetCommit"]
    assert sent[0] == AddOffsetsPlan(1, "tx", PID, 0, "g")
    assert sent[1] == FindCoordinatorPlan("g", COORDINATOR_GROUP)
    commit = sent[2]
    assert isinstance(commit, TxnOffsetCommitPlan)
    assert commit.node_id == 2
    assert (commit.group.generation_id, commit.group.member_id) == (7, "m-1")
    assert dict(commit.offsets) == OFFSETS
    assert op.done and op.error is None


def test_txn_offset_commit_retries_only_failed_partitions() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.send_offsets_to_transaction(OFFSETS, GROUP)
    partial = iter([{("in", 0): 0, ("in", 1): UNKNOWN_TOPIC_OR_PARTITION}])
    sent = run(m, clock, lambda p: next(partial, 0) if isinstance(p, TxnOffsetCommitPlan) else 0)
    commits = [p for p in sent if isinstance(p, TxnOffsetCommitPlan)]
    assert [tuple(tp for tp, _ in c.offsets) for c in commits] == [
        (("in", 0), ("in", 1)),
        (("in", 1),),
    ]
    assert op.done and op.error is None


def test_commit_waits_for_records_then_ends_transaction() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.commit_transaction()
    assert m.state is S.COMMITTING_TRANSACTION
    assert m.poll(0, records_pending=True).request is None
    polled = m.poll(0, records_pending=False)
    assert polled.request == EndTxnPlan(1, "tx", PID, 0, committed=True)
    assert not op.done
    assert answer(m, polled.request, 0, 0).action is TxnAction.DONE
    assert op.done and op.error is None and m.state is S.READY


def test_empty_transaction_commits_and_aborts_locally() -> None:
    clock = ManualClock()
    m = ready(clock)
    m.begin_transaction()
    op = m.commit_transaction()
    assert op.done and op.error is None and m.state is S.READY
    m.begin_transaction()
    op = m.abort_transaction()
    assert op.done and op.error is None and m.state is S.READY
    assert run(m, clock) == []


def test_stale_response_is_ignored() -> None:
    clock = ManualClock()
    m = in_txn(clock)
    m.add_partition(("t", 0))
    plan = m.poll(0, records_pending=False).request
    assert isinstance(plan, AddPartitionsPlan)
    other = AddPartitionsPlan(1, "tx", PID, 0, (("t", 0),))
    assert m.handle_add_partitions(other, {("t", 0): 0}, 0).action is TxnAction.IGNORED
    assert m.poll(0, records_pending=False).request is None  # still one in flight


# -- T1: coordinator moves, CONCURRENT_TRANSACTIONS backoff -------------------------


@pytest.mark.parametrize(
    "code", [NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS]
)
def test_coordinator_moved_rediscovers_after_backoff(code: int) -> None:
    clock = ManualClock()
    m = in_txn(clock)
    m.add_partition(("t", 0))
    plan = m.poll(0, records_pending=False).request
    assert isinstance(plan, AddPartitionsPlan)
    assert answer(m, plan, code, 0).action is TxnAction.FIND_COORDINATOR
    assert m.poll(50, records_pending=False).next_deadline_ms == 100
    find = m.poll(100, records_pending=False).request
    assert find == FindCoordinatorPlan("tx", COORDINATOR_TRANSACTION)
    m.handle_find_coordinator(find, 0, 5, 100)
    again = m.poll(100, records_pending=False).request
    assert again == AddPartitionsPlan(5, "tx", PID, 0, (("t", 0),))


def test_end_txn_not_coordinator_is_retried_not_unknown() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.commit_transaction()
    codes = iter([NOT_COORDINATOR])
    sent = run(m, clock, lambda p: next(codes, 0) if isinstance(p, EndTxnPlan) else 0)
    assert kinds(sent) == ["EndTxn", "FindCoordinator", "EndTxn"]
    assert op.done and op.error is None and m.state is S.READY


def test_concurrent_transactions_backs_off_exponentially_with_cap() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.commit_transaction()
    times: list[float] = []
    for _ in range(6):
        polled = m.poll(clock.monotonic_ms(), records_pending=False)
        while polled.request is None:
            assert polled.next_deadline_ms is not None
            clock.advance(polled.next_deadline_ms - clock.monotonic_ms())
            polled = m.poll(clock.monotonic_ms(), records_pending=False)
        assert isinstance(polled.request, EndTxnPlan)
        times.append(clock.monotonic_ms())
        decision = answer(m, polled.request, CONCURRENT_TRANSACTIONS, clock.monotonic_ms())
        assert decision.action is TxnAction.RETRY
    assert [b - a for a, b in itertools.pairwise(times)] == [100, 200, 400, 800, 1000]
    assert not op.done
    run(m, clock)
    assert op.done and op.error is None and m.state is S.READY


# -- T2: EndTxn with an unknown outcome ---------------------------------------------


@pytest.mark.parametrize("code", [NO_RESPONSE, REQUEST_TIMED_OUT, UNKNOWN_SERVER_ERROR])
@pytest.mark.parametrize("reinit_by", ["begin", "abort"])
def test_unknown_end_txn_refuses_retry_and_reinitialises(code: int, reinit_by: str) -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.commit_transaction()
    sent = run(m, clock, lambda p: code if isinstance(p, EndTxnPlan) else 0)
    assert kinds(sent) == ["EndTxn"]  # never re-sent
    assert isinstance(op.error, TransactionOutcomeUnknownError)
    assert m.state is S.END_TXN_UNKNOWN
    with pytest.raises(TransactionOutcomeUnknownError):
        m.commit_transaction()
    with pytest.raises(TransactionStateError):
        m.add_partition(("t", 0))
    assert m.poll(clock.monotonic_ms(), records_pending=False).request is None
    op = m.begin_transaction() if reinit_by == "begin" else m.abort_transaction()
    assert not op.done and state(m) is S.INITIALIZING
    sent = run(m, clock)
    assert sent == [InitProducerIdPlan(1, "tx", PID, 0, 60_000)]  # bump with the current pair
    assert op.done and op.error is None and m.producer_epoch == 1
    if reinit_by == "abort":
        assert m.state is S.READY
        m.begin_transaction()
    assert m.state is S.IN_TRANSACTION
    m.add_partition(("t", 0))
    done = m.commit_transaction()
    sent = run(m, clock)
    assert [
        (type(p).__name__, p.producer_epoch) for p in sent if not isinstance(p, FindCoordinatorPlan)
    ] == [
        ("AddPartitionsPlan", 1),
        ("EndTxnPlan", 1),
    ]
    assert done.done and done.error is None


# -- T3: fencing -----------------------------------------------------------------


def assert_fails_fast(m: TransactionManager, code: int) -> None:
    expected = (
        ProducerFencedError
        if code != TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        else TransactionFatalError
    )
    assert m.state is S.FATAL_ERROR
    calls: list[Callable[[], object]] = [
        m.init_transactions,
        m.begin_transaction,
        m.commit_transaction,
        m.abort_transaction,
        lambda: m.add_partition(("t", 0)),
        lambda: m.send_offsets_to_transaction(OFFSETS, GROUP),
    ]
    for call in calls:
        with pytest.raises(expected) as info:
            call()
        assert info.value.error_code == code
    assert m.poll(10**9, records_pending=False).request is None


@pytest.mark.parametrize("code", FENCING)
@pytest.mark.parametrize("where", ["InitProducerId", "AddPartitions", "EndTxn", "produce"])
def test_fencing_is_fatal_and_every_later_call_fails_fast(code: int, where: str) -> None:
    clock = ManualClock()
    m = manager()
    op: TxnOperation = m.init_transactions()
    if where != "InitProducerId":
        run(m, clock)
        m.begin_transaction()
        m.add_partition(("t", 0))
        if where != "AddPartitions":
            run(m, clock)
            op = m.commit_transaction()
    if where == "produce":
        m.on_record_failed(code)
    else:
        run(m, clock, lambda p: code if type(p).__name__ == where + "Plan" else 0)
    assert (
        isinstance(op.error, ProducerFencedError | TransactionFatalError)
        or where == "AddPartitions"
    )
    assert_fails_fast(m, code)


# -- T4: a record fails inside a transaction -----------------------------------------


@pytest.mark.parametrize(
    "code", [UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER, RECORD_EXPIRED]
)
def test_failed_record_makes_commit_abortable_then_abort_bumps(code: int) -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    m.on_record_failed(code)
    assert m.state is S.ABORTABLE_ERROR
    with pytest.raises(TransactionAbortableError) as info:
        m.commit_transaction()
    assert info.value.error_code == code
    with pytest.raises(TransactionAbortableError):
        m.add_partition(("t", 1))
    op = m.abort_transaction()
    assert state(m) is S.INITIALIZING
    assert m.poll(0, records_pending=True).request is None  # waits for in-flight batches
    sent = run(m, clock)
    assert sent == [InitProducerIdPlan(1, "tx", PID, 0, 60_000)]  # no EndTxn: the bump aborts
    assert op.done and op.error is None and state(m) is S.READY and m.producer_epoch == 1
    m.begin_transaction()
    m.add_partition(("t", 0))
    done = m.commit_transaction()
    assert kinds(run(m, clock)) == ["AddPartitions", "EndTxn"]
    assert done.done and done.error is None


def test_record_failing_while_committing_fails_the_commit() -> None:
    clock = ManualClock()
    m = in_txn(clock, ("t", 0))
    op = m.commit_transaction()
    assert m.poll(0, records_pending=True).request is None
    m.on_record_failed(RECORD_EXPIRED)
    assert isinstance(op.error, TransactionAbortableError)
    assert m.state is S.ABORTABLE_ERROR
    assert m.poll(0, records_pending=False).request is None  # no EndTxn(commit) ever


@pytest.mark.parametrize(
    ("plan_kind", "code"),
    [
        ("AddPartitions", UNKNOWN_PRODUCER_ID),
        ("AddPartitions", TOPIC_AUTHORIZATION_FAILED),
        ("TxnOffsetCommit", ILLEGAL_GENERATION),
        ("EndTxn", UNKNOWN_PRODUCER_ID),
    ],
)
def test_abortable_responses(plan_kind: str, code: int) -> None:
    clock = ManualClock()
    m = in_txn(clock)
    m.add_partition(("t", 0))
    m.send_offsets_to_transaction(OFFSETS, GROUP)
    op = m.commit_transaction()
    run(m, clock, lambda p: code if type(p).__name__ == plan_kind + "Plan" else 0)
    assert m.state is S.ABORTABLE_ERROR
    assert isinstance(op.error, TransactionAbortableError)
    assert m.abort_transaction() is not None
    run(m, clock)
    assert state(m) is S.READY


# -- stateful model ------------------------------------------------------------------

# Mostly success, so that transactions get far; fatal codes are rare.
RESPONSE_CODES = st.sampled_from(
    [0] * 16
    + [NO_RESPONSE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS, REQUEST_TIMED_OUT]
    + [UNKNOWN_SERVER_ERROR, UNKNOWN_PRODUCER_ID, ILLEGAL_GENERATION, TOPIC_AUTHORIZATION_FAILED]
    + [PRODUCER_FENCED]
)
RECORD_CODES = st.sampled_from(
    [UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER, RECORD_EXPIRED] * 3 + [PRODUCER_FENCED]
)


class TransactionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = TransactionManager("tx", jitter=lambda lo, hi: 1.0)
        self.now = 0.0
        self.records = 0  # records of the current transaction queued or in flight
        self.plan: TxnRequest | None = None
        self.serial = 0  # the transaction the next commit belongs to
        self.doomed: set[int] = set()
        self.commits: list[tuple[int, TxnOperation]] = []
        self.fatal_code: int | None = None
        self.unknown_at_generation: int | None = None

    def call(self, fn: Callable[[], object]) -> object:
        """Run a user call; after FATAL it must raise the fatal error, nothing else."""
        if self.m.state is S.FATAL_ERROR:
            with pytest.raises(TransactionFatalError):
                fn()
            return None
        try:
            return fn()
        except KafkaError as exc:
            assert isinstance(
                exc, TransactionAbortableError | TransactionOutcomeUnknownError | IllegalStateError
            )
            return None

    def observe(self) -> None:
        if self.m.state is S.ABORTABLE_ERROR:
            self.doomed.add(self.serial)
        if self.m.state is S.END_TXN_UNKNOWN and self.unknown_at_generation is None:
            self.unknown_at_generation = self.m.generation

    @initialize()
    def start(self) -> None:
        self.m.init_transactions()

    @rule()
    def init(self) -> None:
        self.call(self.m.init_transactions)

    @rule()
    def begin(self) -> None:
        if self.call(self.m.begin_transaction) is not None:
            self.serial += 1

    @rule(tp=st.sampled_from([("t", 0), ("t", 1), ("u", 0)]))
    def send(self, tp: tuple[str, int]) -> None:
        before = self.m.state
        self.call(lambda: self.m.add_partition(tp))
        if before is S.IN_TRANSACTION:
            self.records += 1

    @rule()
    def send_offsets(self) -> None:
        self.call(lambda: self.m.send_offsets_to_transaction(OFFSETS, GROUP))

    @rule()
    def commit(self) -> None:
        if self.m.state is S.ABORTABLE_ERROR:
            with pytest.raises(TransactionAbortableError):
                self.m.commit_transaction()
            return
        op = self.call(self.m.commit_transaction)
        if isinstance(op, TxnOperation):
            self.commits.append((self.serial, op))
        self.observe()

    @rule()
    def abort(self) -> None:
        self.call(self.m.abort_transaction)

    @precondition(lambda self: self.records > 0)
    @rule(code=RECORD_CODES)
    def record_fails(self, code: int) -> None:
        if self.m.state in (S.IN_TRANSACTION, S.COMMITTING_TRANSACTION):
            self.doomed.add(self.serial)
        self.m.on_record_failed(code)
        self.records -= 1
        self.observe()

    @precondition(lambda self: self.records > 0)
    @rule()
    def record_done(self) -> None:
        self.records -= 1

    @rule(ms=st.sampled_from([1, 100, 1_000]))
    def tick(self, ms: int) -> None:
        self.now += ms

    @precondition(lambda self: self.plan is None)
    @rule()
    def poll_once(self) -> None:
        self.poll()

    def poll(self) -> None:
        polled = self.m.poll(self.now, records_pending=self.records > 0)
        self.plan = polled.request
        if self.unknown_at_generation is not None and self.plan is not None:
            assert isinstance(self.plan, FindCoordinatorPlan | InitProducerIdPlan)

    @precondition(lambda self: self.plan is not None)
    @rule(code=RESPONSE_CODES)
    def respond(self, code: int) -> None:
        assert self.plan is not None
        plan, self.plan = self.plan, None
        self.answer(plan, code)

    @rule(codes=st.lists(RESPONSE_CODES, min_size=1, max_size=6), drain=st.booleans())
    def exchange(self, codes: list[int], drain: bool) -> None:
        """Poll and answer several requests in a row (the Sender's normal rhythm)."""
        if drain:
            self.records = 0  # every record acknowledged
        for code in codes:
            if self.plan is None:
                self.now += 1_000  # past any backoff
                self.poll()
            if self.plan is None:
                return
            self.respond(code)

    @rule(
        codes=st.lists(RESPONSE_CODES, min_size=1, max_size=8),
        offsets=st.booleans(),
        fail=st.none() | RECORD_CODES,
    )
    def whole_transaction(self, codes: list[int], offsets: bool, fail: int | None) -> None:
        self.begin()
        self.send(("t", 0))
        if offsets:
            self.send_offsets()
        if fail is not None and self.records > 0:
            self.record_fails(fail)
        self.commit()
        self.exchange(codes, drain=True)

    def answer(self, plan: TxnRequest, code: int) -> None:
        if isinstance(plan, FindCoordinatorPlan) and code != 0:
            code = COORDINATOR_NOT_AVAILABLE
        if isinstance(plan, InitProducerIdPlan) and code not in (*FENCING, CONCURRENT_TRANSACTIONS):
            code = 0  # keep init alive so that transactions happen
        unconfirmed = code in (NO_RESPONSE, REQUEST_TIMED_OUT, UNKNOWN_SERVER_ERROR)
        committing = self.m.state is S.COMMITTING_TRANSACTION
        decision = answer(self.m, plan, code, self.now)
        if isinstance(plan, EndTxnPlan) and plan.committed and unconfirmed and committing:
            # The model's own record: whatever the manager thinks, it must re-initialise.
            self.unknown_at_generation = self.m.generation
            assert isinstance(self.commits[-1][1].error, TransactionOutcomeUnknownError)
        if decision.action is TxnAction.FATAL and self.fatal_code is None:
            self.fatal_code = decision.error_code
        self.observe()

    @invariant()
    def no_success_after_abortable_error(self) -> None:
        for serial, op in self.commits:
            if op.done and op.error is None:
                assert serial not in self.doomed

    @invariant()
    def unknown_end_txn_forces_reinitialisation(self) -> None:
        gen = self.unknown_at_generation
        if gen is None:
            return
        if self.m.state in (S.READY, S.IN_TRANSACTION, S.COMMITTING_TRANSACTION):
            assert self.m.generation > gen
            self.unknown_at_generation = None
        else:
            assert self.m.state in (S.END_TXN_UNKNOWN, S.INITIALIZING, S.FATAL_ERROR)

    @invariant()
    def fatal_is_terminal(self) -> None:
        if self.fatal_code is not None:
            assert self.m.state is S.FATAL_ERROR


TransactionMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_transaction_state_machine = TransactionMachine.TestCase


def test_late_add_partitions_error_during_abort_bump_is_not_fatal() -> None:
    clock = ManualClock()
    m = in_txn(clock)
    m.add_partition(("t", 0))
    plan = m.poll(0, records_pending=True).request
    assert isinstance(plan, AddPartitionsPlan)
    m.on_record_failed(RECORD_EXPIRED)
    m.abort_transaction()
    assert m.poll(0, records_pending=False).request is None  # AddPartitions still outstanding
    assert answer(m, plan, TOPIC_AUTHORIZATION_FAILED, 0).action is TxnAction.ABORTABLE
    assert state(m) is S.INITIALIZING
    assert kinds(run(m, clock)) == ["InitProducerId"]
    assert state(m) is S.READY
