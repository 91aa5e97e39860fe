"""Position validation after a leader change (KIP-320): the pure half.

Why: when a partition's leader changes, the new leader may lack the tail the consumer
already read (an unclean or lagging replica took over) and truncates it; new records
then reuse those offsets. A consumer that just keeps fetching at its position would
silently skip them. So whenever metadata shows a leader epoch newer than the epoch of
the consumer's position, the position is checked with OffsetForLeaderEpoch before
fetching resumes: "where does my epoch end in your log?"

Rules (:func:`decide`), for a position ``p`` read under epoch ``e``, answered with
(end epoch, end offset):

* a retriable error (leader moved again, epoch fenced or unknown) -> RETRY after a
  metadata refresh; another error -> FAIL with it;
* end offset >= ``p`` -> VALID: nothing the consumer read was lost;
* end offset < ``p`` (truncation) -> with a reset policy, SEEK to the end offset, the
  first offset that diverged (records below it are the ones already read; records at
  and above it are new, so this neither skips nor re-reads: Java's behaviour); with
  ``auto_offset_reset="none"`` -> FAIL with :class:`LogTruncationError`;
* no answer for the epoch (-1): the divergence point is unknown -> RESET by policy
  (earliest or latest, as after OFFSET_OUT_OF_RANGE), or FAIL when it is "none".

An epoch of -1 is never adopted: not from metadata (:func:`observe_leader_epoch` keeps
the highest epoch seen), not from an answer (it counts as "unknown").
Brokers without OffsetForLeaderEpoch v3 (Tansu) cannot validate; the driver then
marks the position valid (:func:`skip`): the same as a client without KIP-320.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from kclient.consumer._errors import ErrorCode, broker_error
from kclient.consumer.subscription import OffsetResetStrategy, PartitionState, SubscriptionState
from kclient.errors import KafkaError, LogTruncationError
from kclient.structs import TopicPartition
from protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)

__all__ = [
    "MIN_VERSION",
    "Action",
    "Decision",
    "EpochAnswer",
    "Pending",
    "apply",
    "begin",
    "build_request",
    "decide",
    "needs_validation",
    "observe_leader_epoch",
    "read_response",
    "skip",
]

#: v3 is the first version a consumer may send (replica id -1, current leader epoch).
MIN_VERSION = 3

_RETRIABLE = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        5,  # LEADER_NOT_AVAILABLE
        56,  # KAFKA_STORAGE_ERROR
    }
)


class Action(enum.Enum):
    VALID = "valid"
    SEEK = "seek"
    RESET = "reset"
    FAIL = "fail"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    offset: int = -1
    leader_epoch: int = -1
    error: KafkaError | None = None


@dataclass(frozen=True, slots=True)
class EpochAnswer:
    error_code: int
    leader_epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class Pending:
    """One partition's validation as planned: ``token`` is the partition's staleness
    epoch at that moment (a seek meanwhile makes the answer moot)."""

    token: int
    position: int
    position_epoch: int
    leader_epoch: int


def observe_leader_epoch(state: PartitionState, metadata_epoch: int) -> None:
    """Remember the highest leader epoch metadata reported (never -1, never lower)."""
    if metadata_epoch > state.leader_epoch:
        state.leader_epoch = metadata_epoch


def needs_validation(state: PartitionState) -> bool:
    """A positioned partition whose position was read under an older leader epoch than
    the current one, and not yet checked against it."""
    return state.awaiting_validation and not state.truncated and state.reset_strategy is None


def begin(subscriptions: SubscriptionState, tp: TopicPartition) -> Pending:
    """Start validating ``tp``: whatever was fetched or is in flight past the delivered
    position is dropped (it may come from the lost tail), and fetching stops until
    :func:`apply` settles the position."""
    state = subscriptions.state(tp)
    with subscriptions.lock:  # no record handed out (other thread) between read and seek
        assert state.position is not None
        subscriptions.seek(tp, state.position, state.position_epoch)
    state = subscriptions.state(tp)
    return Pending(state.epoch, state.position or 0, state.position_epoch, state.leader_epoch)


def skip(subscriptions: SubscriptionState, tp: TopicPartition, pending: Pending) -> None:
    """The broker cannot validate (no OffsetForLeaderEpoch v3): accept the position."""
    apply(subscriptions, tp, pending, Decision(Action.VALID))


def apply(
    subscriptions: SubscriptionState, tp: TopicPartition, pending: Pending, decision: Decision
) -> bool:
    """Apply ``decision`` unless the partition was sought, reset or revoked meanwhile.
    Returns whether it applied. RETRY leaves the partition awaiting validation; FAIL
    blocks it (``truncated``) until the application seeks: the caller queues the error
    at the position."""
    state = subscriptions._assignment.get(tp)
    if state is None or state.epoch != pending.token:
        return False
    action = decision.action
    if action is Action.RETRY:
        return True
    state.validated_epoch = max(state.validated_epoch, pending.leader_epoch)
    if action is Action.SEEK:
        subscriptions.seek(tp, decision.offset, decision.leader_epoch)
    elif action is Action.RESET:
        subscriptions.request_offset_reset(tp)
    elif action is Action.FAIL:
        state.truncated = True
    return True


def decide(
    tp: TopicPartition, position: int, answer: EpochAnswer, policy: OffsetResetStrategy
) -> Decision:
    """What to do with one partition's OffsetForLeaderEpoch answer (see the module doc)."""
    code = answer.error_code
    if code in _RETRIABLE:
        return Decision(Action.RETRY)
    if code != ErrorCode.NONE:
        return Decision(Action.FAIL, error=broker_error(code, f"OffsetForLeaderEpoch {tp}"))
    if answer.end_offset < 0 or answer.leader_epoch < 0:
        if policy is OffsetResetStrategy.NONE:
            return Decision(
                Action.FAIL,
                error=LogTruncationError(
                    f"{tp}: the leader has no record of the epoch of position {position}; "
                    "records may have been lost and auto_offset_reset is 'none': seek",
                    topic_partition=tp,
                    position=position,
                ),
            )
        return Decision(Action.RESET)
    if answer.end_offset >= position:
        return Decision(Action.VALID)
    if policy is OffsetResetStrategy.NONE:
        return Decision(
            Action.FAIL,
            error=LogTruncationError(
                f"{tp}: log truncated at {answer.end_offset}, below position {position}; "
                "auto_offset_reset is 'none': seek to continue",
                topic_partition=tp,
                position=position,
                divergent_offset=answer.end_offset,
                divergent_epoch=answer.leader_epoch,
            ),
        )
    return Decision(Action.SEEK, answer.end_offset, answer.leader_epoch)


def build_request(pending: Mapping[TopicPartition, Pending]) -> OffsetForLeaderEpochRequest:
    topics: dict[str, list[OffsetForLeaderPartition]] = {}
    for tp, item in sorted(pending.items()):
        topics.setdefault(tp.topic, []).append(
            OffsetForLeaderPartition(
                partition=tp.partition,
                current_leader_epoch=item.leader_epoch,
                leader_epoch=item.position_epoch,
            )
        )
    return OffsetForLeaderEpochRequest(
        replica_id=-1,
        topics=[OffsetForLeaderTopic(topic=t, partitions=ps) for t, ps in topics.items()],
    )


def read_response(response: OffsetForLeaderEpochResponse) -> dict[TopicPartition, EpochAnswer]:
    return {
        TopicPartition(t.topic, p.partition): EpochAnswer(
            p.error_code, p.leader_epoch, p.end_offset
        )
        for t in response.topics
        for p in t.partitions
    }
