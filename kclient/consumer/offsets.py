"""Committing and fetching group offsets, pure: requests out, outcomes in.

Theory of operation
-------------------
*Commit.* ``build_commit_request`` takes the offsets and the membership's
:class:`GroupIdentity` (``GroupMember.commit_identity()``, which itself refuses during a
JoinGroup/SyncGroup round trip). ``handle_commit_response`` turns the per-partition
error codes into one :class:`CommitResult`:

* SUCCEEDED -- every partition committed.
* RETRY -- only coordinator-level, retriable trouble (load in progress, coordinator
  moved, request timed out, unknown partition). The driver retries the same offsets
  with backoff within the caller's timeout; ``member_error`` tells the member to
  rediscover the coordinator.
* FAILED -- anything else, never retried "through" a rebalance (reliability 1.5 #6):
  REBALANCE_IN_PROGRESS raises the generated ``RebalanceInProgressError``;
  ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID raise :class:`CommitFailedError`; the driver
  passes ``member_error`` to ``GroupMember.on_commit_error`` so the member resets or
  rejoins. When codes mix, FAILED wins over RETRY.

*Auto-commit.* :class:`AutoCommitTimer` decides *when*; what is committed is always
``SubscriptionState.consumed_offsets()`` -- positions as of the start of the latest
application poll -- so a background commit never covers records the application is
still processing (C1, auto-commit variant). Unchanged offsets are not re-sent.

*Fetch committed.* ``handle_offset_fetch_response`` maps each requested partition to
an :class:`OffsetAndMetadata` or None (nothing committed: the reset policy applies).
A requested partition missing from the response, or UNSTABLE_OFFSET_COMMIT (a
transactional commit is pending), is retriable: it lands in ``retry`` and is never
mistaken for "no committed offset", which would silently apply the reset policy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from kclient.consumer._errors import (
    COORDINATOR_MOVED,
    CommitFailedError,
    ErrorCode,
    broker_error,
)
from kclient.consumer.group_types import GroupIdentity
from kclient.consumer.subscription import SubscriptionState
from kclient.structs import OffsetAndMetadata, TopicPartition
from protocol._errors_base import KafkaError

__all__ = [
    "AutoCommitTimer",
    "CommitResult",
    "FetchedOffset",
    "OffsetCommitRequest",
    "OffsetFetchRequest",
    "OffsetFetchResult",
    "Outcome",
    "build_commit_request",
    "handle_commit_response",
    "handle_offset_fetch_response",
    "offsets_to_auto_commit",
]


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, eq=False)
class OffsetCommitRequest:
    node_id: int
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    offsets: dict[TopicPartition, OffsetAndMetadata]


@dataclass(slots=True)
class CommitResult:
    outcome: Outcome
    committed: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    error: KafkaError | None = None
    member_error: int | None = None  # pass to GroupMember.on_commit_error


def build_commit_request(
    group_id: str, identity: GroupIdentity, offsets: Mapping[TopicPartition, OffsetAndMetadata]
) -> OffsetCommitRequest:
    for tp, om in offsets.items():
        if om.offset < 0:
            raise ValueError(f"cannot commit negative offset {om.offset} for {tp}")
    return OffsetCommitRequest(
        identity.node_id,
        group_id,
        identity.generation_id,
        identity.member_id,
        identity.group_instance_id,
        dict(offsets),
    )


_COMMIT_RETRIABLE = frozenset(
    {
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.REQUEST_TIMED_OUT,
        *COORDINATOR_MOVED,
    }
)
_MEMBERSHIP = frozenset(
    {
        ErrorCode.ILLEGAL_GENERATION,
        ErrorCode.UNKNOWN_MEMBER_ID,
        ErrorCode.REBALANCE_IN_PROGRESS,
        ErrorCode.FENCED_INSTANCE_ID,
    }
)


def handle_commit_response(
    request: OffsetCommitRequest, partition_errors: Mapping[TopicPartition, int]
) -> CommitResult:
    """Classify one OffsetCommit response. Partitions missing from the response count as
    REQUEST_TIMED_OUT-like retriable failures (the broker did not confirm them)."""
    result = CommitResult(Outcome.SUCCEEDED)
    for tp, om in request.offsets.items():
        code = partition_errors.get(tp, ErrorCode.REQUEST_TIMED_OUT)
        if code == ErrorCode.NONE:
            result.committed[tp] = om
        elif code in _COMMIT_RETRIABLE:
            _note_retry(result, code)
        else:
            _note_failure(result, code, tp)
    return result


def _note_retry(result: CommitResult, code: int) -> None:
    if result.outcome is Outcome.FAILED:
        return
    result.outcome = Outcome.RETRY
    result.error = broker_error(code)
    if code in COORDINATOR_MOVED:
        result.member_error = code


def _note_failure(result: CommitResult, code: int, tp: TopicPartition) -> None:
    if result.outcome is Outcome.FAILED:
        return  # the first failure explains the commit; later ones add nothing
    result.outcome = Outcome.FAILED
    result.member_error = code if code in _MEMBERSHIP else None
    if code in (ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID):
        result.error = CommitFailedError(
            "commit failed: the group has rebalanced and the member's generation is no "
            f"longer valid (error {code}); the partitions may now belong to another member"
        )
    else:
        result.error = broker_error(code, f"offset commit failed for {tp}")


def commit_transport_failure(request: OffsetCommitRequest) -> CommitResult:
    """The request got no answer: the commit may or may not have happened; retrying the
    same offsets is harmless, so retry after rediscovering the coordinator."""
    return CommitResult(
        Outcome.RETRY,
        error=broker_error(ErrorCode.REQUEST_TIMED_OUT),
        member_error=ErrorCode.NOT_COORDINATOR,
    )


# -- auto-commit --------------------------------------------------------------------------


class AutoCommitTimer:
    """Fires every ``interval_ms``; after a failed attempt, retries after a backoff."""

    def __init__(self, interval_ms: int, now: int) -> None:
        self.interval_ms = interval_ms
        self.deadline = now + interval_ms

    def due(self, now: int) -> bool:
        return now >= self.deadline

    def reset(self, now: int) -> None:
        self.deadline = now + self.interval_ms

    def retry_after(self, now: int, backoff_ms: int) -> None:
        self.deadline = now + min(backoff_ms, self.interval_ms)


def offsets_to_auto_commit(
    subscriptions: SubscriptionState, last_committed: Mapping[TopicPartition, OffsetAndMetadata]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """Consumed positions (start of the latest poll) that moved since the last commit."""
    return {
        tp: om
        for tp, om in subscriptions.consumed_offsets().items()
        if last_committed.get(tp) != om
    }


# -- fetching committed offsets -----------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class OffsetFetchRequest:
    node_id: int
    group_id: str
    partitions: tuple[TopicPartition, ...]
    require_stable: bool = True  # KIP-447: wait out pending transactional commits


class FetchedOffset(NamedTuple):
    """One partition of an OffsetFetch response."""

    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    error_code: int = 0


@dataclass(slots=True)
class OffsetFetchResult:
    outcome: Outcome
    committed: dict[TopicPartition, OffsetAndMetadata | None] = field(default_factory=dict)
    retry: list[TopicPartition] = field(default_factory=list)
    error: KafkaError | None = None
    coordinator_moved: bool = False


def build_offset_fetch_request(
    node_id: int, group_id: str, partitions: Iterable[TopicPartition], require_stable: bool = True
) -> OffsetFetchRequest:
    return OffsetFetchRequest(node_id, group_id, tuple(sorted(set(partitions))), require_stable)


def handle_offset_fetch_response(
    request: OffsetFetchRequest,
    error_code: int,
    partitions: Mapping[TopicPartition, FetchedOffset],
) -> OffsetFetchResult:
    if error_code != ErrorCode.NONE:
        return _offset_fetch_group_error(request, error_code)
    result = OffsetFetchResult(Outcome.SUCCEEDED)
    for tp in request.partitions:
        entry = partitions.get(tp)
        if entry is None or entry.error_code in (
            ErrorCode.UNSTABLE_OFFSET_COMMIT,
            ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ):
            result.retry.append(tp)
        elif entry.error_code != ErrorCode.NONE:
            result.outcome = Outcome.FAILED
            result.error = result.error or broker_error(entry.error_code, f"offset fetch for {tp}")
        elif entry.offset < 0:
            result.committed[tp] = None
        else:
            result.committed[tp] = OffsetAndMetadata(
                entry.offset, entry.metadata or "", entry.leader_epoch
            )
    if result.retry and result.outcome is Outcome.SUCCEEDED:
        result.outcome = Outcome.RETRY
    return result


def _offset_fetch_group_error(request: OffsetFetchRequest, error_code: int) -> OffsetFetchResult:
    retriable = error_code in (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, *COORDINATOR_MOVED)
    return OffsetFetchResult(
        Outcome.RETRY if retriable else Outcome.FAILED,
        retry=list(request.partitions) if retriable else [],
        error=broker_error(error_code, "offset fetch failed"),
        coordinator_moved=error_code in COORDINATOR_MOVED,
    )
