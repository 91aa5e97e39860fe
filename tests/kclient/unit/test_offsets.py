"""Offset commit / fetch outcome classification and the auto-commit rule."""

from __future__ import annotations

import pytest

from kclient.consumer._errors import CommitFailedError, ErrorCode
from kclient.consumer.group_types import GroupIdentity
from kclient.consumer.offsets import (
    AutoCommitTimer,
    FetchedOffset,
    OffsetCommitRequest,
    Outcome,
    build_commit_request,
    build_offset_fetch_request,
    commit_transport_failure,
    handle_commit_response,
    handle_offset_fetch_response,
    offsets_to_auto_commit,
)
from kclient.consumer.subscription import SubscriptionState
from kclient.structs import OffsetAndMetadata
from kclient.structs import TopicPartition as TP
from protocol.errors import (
    CoordinatorLoadInProgressError,
    OffsetMetadataTooLarge,
    RebalanceInProgressError,
)

A0, A1 = TP("a", 0), TP("a", 1)
IDENTITY = GroupIdentity(3, 5, "m1", None)


def request() -> OffsetCommitRequest:
    return build_commit_request(
        "g", IDENTITY, {A0: OffsetAndMetadata(10, "x"), A1: OffsetAndMetadata(20)}
    )


@pytest.mark.parametrize(
    ("codes", "outcome", "error", "member_error"),
    [
        ({A0: 0, A1: 0}, Outcome.SUCCEEDED, None, None),
        (
            {A0: 0, A1: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS},
            Outcome.RETRY,
            CoordinatorLoadInProgressError,
            None,
        ),
        ({A0: ErrorCode.NOT_COORDINATOR, A1: 0}, Outcome.RETRY, None, ErrorCode.NOT_COORDINATOR),
        (
            {A0: ErrorCode.REBALANCE_IN_PROGRESS, A1: 0},
            Outcome.FAILED,
            RebalanceInProgressError,
            ErrorCode.REBALANCE_IN_PROGRESS,
        ),
        (
            {A0: ErrorCode.ILLEGAL_GENERATION, A1: 0},
            Outcome.FAILED,
            CommitFailedError,
            ErrorCode.ILLEGAL_GENERATION,
        ),
        (
            {A0: ErrorCode.UNKNOWN_MEMBER_ID, A1: 0},
            Outcome.FAILED,
            CommitFailedError,
            ErrorCode.UNKNOWN_MEMBER_ID,
        ),
        (
            {A0: ErrorCode.OFFSET_METADATA_TOO_LARGE, A1: 0},
            Outcome.FAILED,
            OffsetMetadataTooLarge,
            None,
        ),
        # Failure wins over retry, whatever the order.
        (
            {A0: ErrorCode.NOT_COORDINATOR, A1: ErrorCode.ILLEGAL_GENERATION},
            Outcome.FAILED,
            CommitFailedError,
            ErrorCode.ILLEGAL_GENERATION,
        ),
        ({A0: 0}, Outcome.RETRY, None, None),  # A1 missing from the response
    ],
)
def test_commit_response_classification(
    codes: dict[TP, int], outcome: Outcome, error: type | None, member_error: int | None
) -> None:
    result = handle_commit_response(request(), codes)
    assert result.outcome is outcome
    if error is not None:
        assert isinstance(result.error, error)
    assert result.member_error == member_error
    assert set(result.committed) == {tp for tp, c in codes.items() if c == 0}


def test_commit_request_carries_identity_and_rejects_negative() -> None:
    req = request()
    assert (req.node_id, req.generation_id, req.member_id) == (3, 5, "m1")
    with pytest.raises(ValueError):
        build_commit_request("g", IDENTITY, {A0: OffsetAndMetadata(-1)})
    failure = commit_transport_failure(req)
    assert failure.outcome is Outcome.RETRY and failure.member_error == ErrorCode.NOT_COORDINATOR


def test_auto_commit_never_beyond_previous_poll() -> None:
    subs = SubscriptionState()
    subs.assign_from_user([A0])
    subs.seek(A0, 0)
    epoch = subs.state(A0).epoch
    timer = AutoCommitTimer(5_000, now=0)
    subs.mark_poll_boundary()
    subs.deliver(A0, epoch, 100, 1)  # the handler is still working on 0..99
    assert not timer.due(4_999) and timer.due(5_000)
    offsets = offsets_to_auto_commit(subs, {})
    assert offsets == {A0: OffsetAndMetadata(0, "", -1)}
    subs.mark_poll_boundary()
    assert offsets_to_auto_commit(subs, offsets) == {A0: OffsetAndMetadata(100, "", 1)}
    assert offsets_to_auto_commit(subs, {A0: OffsetAndMetadata(100, "", 1)}) == {}
    timer.retry_after(5_000, 100)
    assert timer.deadline == 5_100


def test_offset_fetch_missing_partition_is_retriable_not_reset() -> None:
    req = build_offset_fetch_request(3, "g", [A1, A0])
    result = handle_offset_fetch_response(req, 0, {A0: FetchedOffset(7, 2, "meta")})
    assert result.outcome is Outcome.RETRY and result.retry == [A1]
    assert result.committed == {A0: OffsetAndMetadata(7, "meta", 2)}


def test_offset_fetch_no_commit_unstable_and_errors() -> None:
    req = build_offset_fetch_request(3, "g", [A0, A1])
    result = handle_offset_fetch_response(
        req,
        0,
        {A0: FetchedOffset(-1), A1: FetchedOffset(-1, error_code=ErrorCode.UNSTABLE_OFFSET_COMMIT)},
    )
    assert result.committed == {A0: None} and result.retry == [A1]
    moved = handle_offset_fetch_response(req, ErrorCode.NOT_COORDINATOR, {})
    assert moved.outcome is Outcome.RETRY and moved.coordinator_moved and moved.retry == [A0, A1]
    denied = handle_offset_fetch_response(req, ErrorCode.GROUP_AUTHORIZATION_FAILED, {})
    assert denied.outcome is Outcome.FAILED and not denied.retry
    bad = handle_offset_fetch_response(
        req,
        0,
        {
            A0: FetchedOffset(1),
            A1: FetchedOffset(0, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED),
        },
    )
    assert bad.outcome is Outcome.FAILED
