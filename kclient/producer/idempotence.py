"""Producer id, epoch and per-partition sequences; what to do with each produce result.

Theory of operation
-------------------
An idempotent producer stamps every batch with (producer id, epoch, base
sequence). The broker appends a batch only if its sequence follows the last
one it wrote for that producer and partition, answers a retry of one of its
last five batches as a duplicate, and rejects anything else. That turns
"retry until acknowledged" into "exactly once, in order", provided the client
keeps these rules (reliability.md 1.5):

* Sequences are assigned at first drain, in partition order, and wrap from
  2**31 - 1 to 0. A batch keeps its sequence across retries.
* An ambiguous outcome (no response, REQUEST_TIMED_OUT,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND) marks the batch *possibly persisted*; it
  is retried with the same pid/epoch/sequence, never re-sequenced. The broker
  then answers success or DUPLICATE_SEQUENCE_NUMBER (= success).
* OUT_OF_ORDER_SEQUENCE_NUMBER on a batch that is *not* the head of line
  (an earlier sequence is still unacknowledged) only means the earlier batch
  failed; it is retried in order. On the head of line it means the broker lost
  state we relied on. Chosen outcome: the batch fails (NOT_PERSISTED, or
  POSSIBLY_PERSISTED if an earlier attempt may have been written) with the
  OOSN code, and the epoch is bumped so later batches flow again. Nothing is
  reported delivered that the broker did not confirm, and nothing hangs.
* A sequenced batch that is abandoned (failed, expired) leaves a hole the
  broker would wait on forever. If it was the last sequence handed out and is
  certainly unwritten, the hole is closed by handing its sequence out again;
  otherwise the epoch is bumped.
* An epoch bump (after UNKNOWN_PRODUCER_ID, a head-of-line OOSN, or a hole)
  waits until nothing is in flight, gets a new epoch (InitProducerId with the
  current pid/epoch, KIP-360), and resets the sequences of *every* partition
  (KAFKA-12152). Queued batches that already had sequences are re-sequenced,
  except possibly-persisted ones: re-sending those under a new epoch could
  duplicate them, so they fail as POSSIBLY_PERSISTED instead.

Producer-id state (``ProducerIdState``)::

    UNINITIALIZED ─begin_init─> INITIALIZING ─success─> READY ─needs bump─> BUMP_PENDING
          ^                      │    │  ^                                      │
          └──────retriable fail──┘    │  └──────────────begin_init──────────────┘
                                      └─retriable fail (of a bump)─> BUMP_PENDING
    any ─fatal─> FATAL

Batches are drained only in READY. Everything here is pure: the Sender sends
the InitProducerId and Produce requests and applies each :class:`Decision`
to the accumulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from kclient.producer.batch import SEQUENCE_MASK, DeliveryState, ProducerBatch

__all__ = [
    "NOT_SENT",
    "NO_RESPONSE",
    "Action",
    "Decision",
    "IdempotenceManager",
    "IllegalProducerStateTransition",
    "ProducerIdState",
]

# Not a Kafka error code: the request was sent but no response came back
# (disconnect, request timeout). The Sender passes it for every batch of the request.
NO_RESPONSE = -100
# Not a Kafka error code either: the request surely never reached the broker (the
# connection failed before the write). Retried like NOT_LEADER, and unlike NO_RESPONSE
# it does not make the batch possibly persisted.
NOT_SENT = -101

# Codes with producer-specific meaning (values from the Kafka error table).
REQUEST_TIMED_OUT = 7
MESSAGE_TOO_LARGE = 10
NETWORK_EXCEPTION = 13
RECORD_LIST_TOO_LARGE = 18
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
CLUSTER_AUTHORIZATION_FAILED = 31
UNSUPPORTED_VERSION = 35
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
INVALID_PRODUCER_ID_MAPPING = 49
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNKNOWN_PRODUCER_ID = 59
PRODUCER_FENCED = 90

# The request may have been written before the answer was lost or the broker
# gave up waiting for replicas.
_AMBIGUOUS = frozenset(
    {NO_RESPONSE, REQUEST_TIMED_OUT, NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS_AFTER_APPEND}
)
_TOO_LARGE = frozenset({MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE})
# The producer itself can no longer write; every later batch would fail too.
_FATAL = frozenset(
    {
        PRODUCER_FENCED,
        CLUSTER_AUTHORIZATION_FAILED,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        INVALID_PRODUCER_ID_MAPPING,
        UNSUPPORTED_VERSION,
    }
)
# Definitive rejections: the broker checked the batch and wrote nothing.
# Codes outside this set and the ones above are treated as "may be written".
_DEFINITIVE = frozenset(
    {2, 3, 5, 6, 9, 17, 19, 21, 29, 32, 41, 43, 44, 45, 47, 48, 56, 59, 74, 75, 76, 87, 89}
)
# Retriable codes (the `retriable` column of errors.tsv). To be replaced by
# protocol.errors.error_for_code(code).retriable once that module is generated.
_RETRIABLE = frozenset(
    {2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75, 78, 80, 83, 84,
     88, 89, 100, 103, 106}
)  # fmt: skip
# Errors meaning our metadata is stale (Java's InvalidMetadataException family).
_INVALID_METADATA = frozenset({3, 5, 6, 9, 13, 56, 74, 75, 100, 103})


class Action(Enum):
    """What the Sender must do with a batch after a produce result."""

    COMPLETE = "complete"  # accumulator.complete(batch, offset, log_append_time)
    RETRY = "retry"  # accumulator.requeue(batch, now)
    SPLIT = "split"  # accumulator.split(batch, now)
    FAIL = "fail"  # accumulator.fail(batch, error, final_state)
    BUMP_EPOCH_AND_RETRY = "bump_epoch_and_retry"  # requeue; bump is pending
    BUMP_EPOCH_AND_FAIL = "bump_epoch_and_fail"  # fail; bump is pending
    FATAL = "fatal"  # fail this batch, then abort everything: the producer is unusable
    IGNORE = "ignore"  # already resolved (expired in flight): accumulator.release(batch)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    error_code: int = 0
    final_state: DeliveryState | None = None  # for FAIL, BUMP_EPOCH_AND_FAIL, FATAL
    refresh_metadata: bool = False


_COMPLETE = Decision(Action.COMPLETE)
_IGNORE = Decision(Action.IGNORE)


class ProducerIdState(Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    BUMP_PENDING = "bump_pending"
    FATAL = "fatal"


_S = ProducerIdState
_TRANSITIONS: dict[ProducerIdState, frozenset[ProducerIdState]] = {
    _S.UNINITIALIZED: frozenset({_S.INITIALIZING, _S.FATAL}),
    _S.INITIALIZING: frozenset({_S.READY, _S.UNINITIALIZED, _S.BUMP_PENDING, _S.FATAL}),
    _S.READY: frozenset({_S.BUMP_PENDING, _S.FATAL}),
    _S.BUMP_PENDING: frozenset({_S.INITIALIZING, _S.FATAL}),
    _S.FATAL: frozenset(),
}


class IllegalProducerStateTransition(RuntimeError):
    pass


def _seq_le(a: int, b: int) -> bool:
    """a <= b in wrapping sequence space (window far below 2**30)."""
    return ((b - a) & SEQUENCE_MASK) < (1 << 30)


class _PartitionSequences:
    __slots__ = ("first", "first_acked_end", "last_acked", "next_sequence")

    def __init__(self, first: int) -> None:
        self.first = first
        self.next_sequence = first
        self.last_acked = -1  # none acknowledged in this epoch yet
        self.first_acked_end = -1  # last sequence of the epoch's first acknowledged batch

    def expected(self) -> int:
        """The sequence the broker expects next (the head of line)."""
        return self.first if self.last_acked < 0 else (self.last_acked + 1) & SEQUENCE_MASK


class IdempotenceManager:
    """Producer id/epoch state and per-partition sequences (or none, when disabled).

    With ``enabled=False`` only the plain retry rules apply, and the producer
    is always ready to send.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        delivery_timeout_ms: float = 120_000,
        retries: int = 2**31 - 1,
        is_retriable: Callable[[int], bool] = _RETRIABLE.__contains__,
        first_sequence: int = 0,
        external_init: bool = False,
    ) -> None:
        self.enabled = enabled
        # A transactional producer's id comes from the transaction coordinator
        # (TransactionManager); the Sender then never sends its own InitProducerId.
        self.external_init = external_init
        self._delivery_timeout_ms = delivery_timeout_ms
        self._retries = retries
        self._is_retriable = is_retriable
        self._first_sequence = first_sequence  # a test hook for the wrap scenario (P3)
        self.state = ProducerIdState.UNINITIALIZED if enabled else ProducerIdState.READY
        self.producer_id = -1
        self.producer_epoch = -1
        self.fatal_error_code = 0
        self.generation = 0  # bumped by every successful (re)initialization
        self._bumping = False
        self._partitions: dict[tuple[str, int], _PartitionSequences] = {}

    # -- producer id state machine ----------------------------------------------

    def _transition_to(self, new: ProducerIdState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalProducerStateTransition(f"{self.state.value} -> {new.value}")
        self.state = new

    @property
    def can_send(self) -> bool:
        """Whether batches may be drained now."""
        return self.state is ProducerIdState.READY

    def needs_init(self, in_flight: int) -> bool:
        """Whether the Sender should send InitProducerId now.

        A bump waits for ``in_flight`` (the accumulator's in-flight batch count)
        to reach 0, so that no batch of the old epoch can land after it.
        """
        if self.external_init:
            return False
        if self.state is ProducerIdState.UNINITIALIZED:
            return True
        return self.state is ProducerIdState.BUMP_PENDING and in_flight == 0

    def begin_init(self) -> tuple[int, int]:
        """Enter INITIALIZING; returns the (producer_id, epoch) to put in the request."""
        self._bumping = self.state is ProducerIdState.BUMP_PENDING
        self._transition_to(ProducerIdState.INITIALIZING)
        if self._bumping:
            return self.producer_id, self.producer_epoch
        return -1, -1

    def on_init_success(self, producer_id: int, producer_epoch: int) -> None:
        """New pid/epoch: every partition starts again at the first sequence.

        The Sender must then call ``accumulator.reset_producer_state(...)`` so
        queued batches drop their old sequences.
        """
        self._transition_to(ProducerIdState.READY)
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.generation += 1
        if self.generation > 1:
            self._first_sequence = 0  # the test hook applies to the first epoch only
        self._partitions.clear()

    def adopt_producer_id(self, producer_id: int, producer_epoch: int) -> None:
        """Take an id/epoch obtained elsewhere (the transaction coordinator's
        InitProducerId) as a successful init: every partition restarts at sequence 0."""
        if self.state is ProducerIdState.FATAL:
            return
        if self.state is ProducerIdState.READY:
            self._transition_to(ProducerIdState.BUMP_PENDING)
        if self.state is not ProducerIdState.INITIALIZING:
            self.begin_init()
        self.on_init_success(producer_id, producer_epoch)

    @property
    def bump_pending(self) -> bool:
        """A new epoch is needed before anything more can be sent."""
        return self.state is ProducerIdState.BUMP_PENDING

    def on_init_failure(self, error_code: int, *, fatal: bool) -> None:
        if fatal:
            self.fail_fatally(error_code)
        elif self._bumping:
            self._transition_to(ProducerIdState.BUMP_PENDING)
        else:
            self._transition_to(ProducerIdState.UNINITIALIZED)

    def fail_fatally(self, error_code: int) -> None:
        if self.state is not ProducerIdState.FATAL:
            self.fatal_error_code = error_code
            self._transition_to(ProducerIdState.FATAL)

    def _request_bump(self) -> None:
        if self.state is ProducerIdState.READY:
            self._transition_to(ProducerIdState.BUMP_PENDING)

    # -- sequences ---------------------------------------------------------------

    def assign_sequence(self, batch: ProducerBatch) -> None:
        """Stamp a never-sequenced batch at drain time; advances the partition."""
        if not self.enabled:
            return
        seqs = self._partitions.get(batch.tp)
        if seqs is None:
            seqs = self._partitions[batch.tp] = _PartitionSequences(self._first_sequence)
        batch.set_producer_state(self.producer_id, self.producer_epoch, seqs.next_sequence)
        seqs.next_sequence = (seqs.next_sequence + batch.record_count) & SEQUENCE_MASK

    def next_sequence(self, tp: tuple[str, int]) -> int:
        seqs = self._partitions.get(tp)
        return self._first_sequence if seqs is None else seqs.next_sequence

    def last_acked_sequence(self, tp: tuple[str, int]) -> int:
        seqs = self._partitions.get(tp)
        return -1 if seqs is None else seqs.last_acked

    # -- produce results ---------------------------------------------------------

    def handle_produce_result(self, batch: ProducerBatch, error_code: int, now: float) -> Decision:
        """Decide the fate of an IN_FLIGHT batch given its partition's error code.

        ``error_code`` is 0 for success, a Kafka error code, or NO_RESPONSE.
        State changes on this manager (acked sequence, bump requests, fatal)
        happen here; the Sender applies the returned action to the accumulator.
        """
        if batch.done:
            return _IGNORE
        sequenced = self.enabled and batch.base_sequence >= 0
        decision = None
        if sequenced:
            decision = self._sequence_rules(batch, error_code, now)
        if decision is None:
            decision = self._decide_plain(batch, error_code, now)
        if sequenced and decision.action is Action.FAIL and decision.final_state is not None:
            return self._abandon(batch, decision.error_code, decision.final_state)
        return decision

    def _sequence_rules(self, batch: ProducerBatch, error_code: int, now: float) -> Decision | None:
        """The idempotence-specific outcomes; None when the plain rules apply."""
        if error_code == 0 or error_code == DUPLICATE_SEQUENCE_NUMBER:
            self._acknowledge(batch)
            return None
        if error_code == OUT_OF_ORDER_SEQUENCE_NUMBER:
            return self._out_of_order(batch, now)
        if error_code == UNKNOWN_PRODUCER_ID or error_code == INVALID_PRODUCER_EPOCH:
            # The broker has no (or a newer) state for our pid: it wrote nothing now.
            self._request_bump()
            if batch.possibly_persisted:
                return Decision(
                    Action.BUMP_EPOCH_AND_FAIL, error_code, DeliveryState.POSSIBLY_PERSISTED
                )
            return Decision(Action.BUMP_EPOCH_AND_RETRY, error_code)
        if error_code in _FATAL:
            self.fail_fatally(error_code)
            state = (
                DeliveryState.POSSIBLY_PERSISTED
                if batch.possibly_persisted
                else DeliveryState.NOT_PERSISTED
            )
            return Decision(Action.FATAL, error_code, state)
        return None

    def handle_expired(self, batch: ProducerBatch) -> Decision:
        """Account for a batch the accumulator failed on delivery timeout (or abort).

        Returns FAIL, or BUMP_EPOCH_AND_FAIL when its sequences left a hole.
        """
        state = batch.outcome_state
        if state is DeliveryState.PENDING or state is DeliveryState.SUCCEEDED:
            raise ValueError("handle_expired() takes a batch that has failed")
        if not self.enabled or batch.base_sequence < 0:
            return Decision(Action.FAIL, 0, state)
        return self._abandon(batch, 0, state)

    def _acknowledge(self, batch: ProducerBatch) -> None:
        seqs = self._partitions.get(batch.tp)
        if seqs is None or batch.producer_epoch != self.producer_epoch:
            return
        last = batch.last_sequence
        if seqs.last_acked < 0:
            seqs.first_acked_end = last
        if seqs.last_acked < 0 or _seq_le(seqs.last_acked, last):
            seqs.last_acked = last

    def _out_of_order(self, batch: ProducerBatch, now: float) -> Decision:
        seqs = self._partitions.get(batch.tp)
        if seqs is None:  # an old epoch's batch; the bump reset its partition
            return Decision(Action.FAIL, OUT_OF_ORDER_SEQUENCE_NUMBER, DeliveryState.NOT_PERSISTED)
        if seqs.last_acked >= 0 and _seq_le(batch.last_sequence, seqs.last_acked):
            if _seq_le((seqs.first_acked_end + 1) & SEQUENCE_MASK, batch.base_sequence):
                # Acknowledged sequences surround this batch. From the first
                # acknowledged batch on, the broker knew this producer and
                # appends only in order: this batch was written. Implicit ack.
                return Decision(Action.COMPLETE, OUT_OF_ORDER_SEQUENCE_NUMBER)
            # Before the first acknowledged batch: a broker that did not know
            # the producer yet accepts any sequence, so proof is lacking. The
            # broker has moved past it, so it is failed (no hole, no bump).
            return self._failed(batch, OUT_OF_ORDER_SEQUENCE_NUMBER, ambiguous=False)
        if batch.base_sequence != seqs.expected():
            # Not the head of line: an earlier batch is unresolved and goes first.
            return self._retry(batch, OUT_OF_ORDER_SEQUENCE_NUMBER, now, False)
        state = (
            DeliveryState.POSSIBLY_PERSISTED
            if batch.possibly_persisted
            else DeliveryState.NOT_PERSISTED
        )
        self._request_bump()
        return Decision(Action.BUMP_EPOCH_AND_FAIL, OUT_OF_ORDER_SEQUENCE_NUMBER, state)

    def _abandon(self, batch: ProducerBatch, error_code: int, state: DeliveryState) -> Decision:
        """Fail a sequenced batch, closing the hole it leaves in the sequence."""
        seqs = self._partitions.get(batch.tp)
        if seqs is not None and seqs.last_acked >= 0:
            if _seq_le(batch.last_sequence, seqs.last_acked):
                return Decision(Action.FAIL, error_code, state)  # the broker moved past it
        end = (batch.base_sequence + batch.record_count) & SEQUENCE_MASK
        if (
            state is DeliveryState.NOT_PERSISTED
            and seqs is not None
            and batch.producer_epoch == self.producer_epoch
            and seqs.next_sequence == end
        ):
            seqs.next_sequence = batch.base_sequence  # nothing after it: reuse the range
            return Decision(Action.FAIL, error_code, state)
        if batch.producer_epoch != self.producer_epoch:
            return Decision(Action.FAIL, error_code, state)  # an old epoch's hole is moot
        self._request_bump()
        return Decision(Action.BUMP_EPOCH_AND_FAIL, error_code, state)

    def _decide_plain(self, batch: ProducerBatch, error_code: int, now: float) -> Decision:
        """Rules that hold with or without idempotence."""
        if error_code == 0 or error_code == DUPLICATE_SEQUENCE_NUMBER:
            return _COMPLETE if error_code == 0 else Decision(Action.COMPLETE, error_code)
        if error_code in _TOO_LARGE:
            if batch.record_count > 1:
                return Decision(Action.SPLIT, error_code)
            return self._failed(batch, error_code, ambiguous=False)
        if error_code == NOT_SENT:
            return self._retry(batch, error_code, now, True)
        ambiguous = error_code in _AMBIGUOUS
        if ambiguous:
            batch.possibly_persisted = True
        if ambiguous or self._is_retriable(error_code):
            return self._retry(batch, error_code, now, error_code in _INVALID_METADATA)
        return self._failed(batch, error_code, ambiguous=error_code not in _DEFINITIVE)

    def _retry(self, batch: ProducerBatch, error_code: int, now: float, refresh: bool) -> Decision:
        timed_out = now - batch.created_ms >= self._delivery_timeout_ms
        if timed_out or batch.attempts > self._retries:
            return self._failed(batch, error_code, ambiguous=False)
        return Decision(Action.RETRY, error_code, None, refresh)

    @staticmethod
    def _failed(batch: ProducerBatch, error_code: int, *, ambiguous: bool) -> Decision:
        persisted = ambiguous or batch.possibly_persisted
        state = DeliveryState.POSSIBLY_PERSISTED if persisted else DeliveryState.NOT_PERSISTED
        return Decision(Action.FAIL, error_code, state)
