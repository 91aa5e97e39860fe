"""Consumer-side client errors and the broker error codes the pure cores branch on.

Broker errors are the generated ``protocol.errors`` classes (``RebalanceInProgressError``,
``FencedInstanceIdError``...); :func:`broker_error` builds them from a code. The two
client-side consumer errors live in ``kclient/errors.py`` and are re-exported here.
``ErrorCode`` names the codes the pure cores branch on, so they compare plain ints.
"""

from __future__ import annotations

import enum

from kclient.errors import (
    CommitFailedError,
    ConsumerError,
    IllegalStateError,
    MaxPollIntervalExceededError,
    NoOffsetForPartitionError,
)
from protocol._errors_base import BrokerResponseError
from protocol.errors import error_for_code

__all__ = [
    "COORDINATOR_MOVED",
    "FATAL_JOIN_ERRORS",
    "CommitFailedError",
    "ConsumerError",
    "ErrorCode",
    "IllegalStateError",
    "MaxPollIntervalExceededError",
    "NoOffsetForPartitionError",
    "broker_error",
]


class ErrorCode(enum.IntEnum):
    """Broker error codes (errors.tsv) that the consumer cores treat specially."""

    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    UNKNOWN_TOPIC_OR_PARTITION = 3
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    OFFSET_METADATA_TOO_LARGE = 12
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    FETCH_SESSION_ID_NOT_FOUND = 70
    INVALID_FETCH_SESSION_EPOCH = 71
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    MEMBER_ID_REQUIRED = 79
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    UNSTABLE_OFFSET_COMMIT = 88
    UNKNOWN_TOPIC_ID = 100
    INCONSISTENT_TOPIC_ID = 103
    FETCH_SESSION_TOPIC_ID_ERROR = 106


#: Errors after which the coordinator must be looked up again (Java ``markCoordinatorUnknown``).
COORDINATOR_MOVED = frozenset({ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE})


#: JoinGroup errors that retrying cannot fix; the member goes FATAL.
FATAL_JOIN_ERRORS = frozenset(
    {
        ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
        ErrorCode.INVALID_SESSION_TIMEOUT,
        ErrorCode.GROUP_AUTHORIZATION_FAILED,
        ErrorCode.GROUP_MAX_SIZE_REACHED,
    }
)


def broker_error(code: int, message: str | None = None) -> BrokerResponseError:
    """The generated broker-error instance for ``code`` (e.g. RebalanceInProgressError,
    also used when the client itself decides a commit hit a rebalance, as Java does)."""
    return error_for_code(code)(message)
