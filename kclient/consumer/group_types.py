"""Value types exchanged between the group-membership core and its driver task.

Requests are small descriptions, not the generated wire messages: the driver maps each
to the generated message at the negotiated version (``node_id`` None means "any
broker"). Responses come back through the ``on_*_response`` handlers of
:class:`~kclient.consumer.membership.GroupMember` as plain keyword fields.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kclient.consumer.assignors.base import RebalanceProtocol
from kclient.structs import TopicPartition

__all__ = [
    "ExponentialBackoff",
    "FindCoordinatorRequest",
    "GroupIdentity",
    "GroupProtocol",
    "GroupRequest",
    "HeartbeatRequest",
    "JoinGroupRequest",
    "JoinedMember",
    "LeaveGroupRequest",
    "MemberConfig",
    "PollResult",
    "RebalanceEvent",
    "RebalanceEventKind",
    "SyncGroupRequest",
]


@dataclass(frozen=True, slots=True)
class MemberConfig:
    group_id: str
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    group_instance_id: str | None = None
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 1_000
    protocol_type: str = "consumer"

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be lower than session_timeout_ms")
        if not self.group_id:
            raise ValueError("group_id must be non-empty")


@dataclass(frozen=True, slots=True, eq=False)
class FindCoordinatorRequest:
    group_id: str
    node_id: None = None


@dataclass(frozen=True, slots=True, eq=False)
class JoinGroupRequest:
    node_id: int
    group_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    reason: str | None


@dataclass(frozen=True, slots=True, eq=False)
class SyncGroupRequest:
    node_id: int
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocol_name: str
    assignments: tuple[tuple[str, bytes], ...]  # empty unless we are the leader


@dataclass(frozen=True, slots=True, eq=False)
class HeartbeatRequest:
    node_id: int
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None


@dataclass(frozen=True, slots=True, eq=False)
class LeaveGroupRequest:
    node_id: int
    group_id: str
    member_id: str
    group_instance_id: str | None
    reason: str | None


# eq=False above: requests are matched to responses by identity, never by value, so two
# identical heartbeats of one generation are still told apart.
GroupRequest = (
    FindCoordinatorRequest
    | JoinGroupRequest
    | SyncGroupRequest
    | HeartbeatRequest
    | LeaveGroupRequest
)


class RebalanceEventKind(enum.Enum):
    REVOKED = "revoked"
    ASSIGNED = "assigned"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class RebalanceEvent:
    """A listener callback the driver must run (in order) before sending the requests
    of the same :class:`PollResult`."""

    kind: RebalanceEventKind
    partitions: frozenset[TopicPartition]
    generation_id: int


@dataclass(slots=True)
class PollResult:
    requests: list[GroupRequest] = field(default_factory=list)
    events: list[RebalanceEvent] = field(default_factory=list)
    deadline: int | None = None  # absolute ms at which poll() wants to run again


@dataclass(frozen=True, slots=True)
class JoinedMember:
    """One entry of a JoinGroup response's member list (leader only)."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


class GroupProtocol(Protocol):
    """What the member needs from the consumer protocol (assignors + wire encoding)."""

    @property
    def rebalance_protocol(self) -> RebalanceProtocol: ...

    def join_protocols(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation_id: int
    ) -> list[tuple[str, bytes]]:
        """(assignor name, encoded ConsumerProtocolSubscription) in preference order."""
        ...

    def assign(self, protocol_name: str, members: Sequence[JoinedMember]) -> dict[str, bytes]:
        """Leader: run the named assignor; member id -> encoded assignment."""
        ...

    def on_assignment(
        self, protocol_name: str, assignment: bytes, generation_id: int
    ) -> frozenset[TopicPartition]:
        """Decode this member's assignment and tell the assignor about it."""
        ...


class GroupIdentity:
    """What an OffsetCommit must carry to be accepted by the coordinator."""

    __slots__ = ("generation_id", "group_instance_id", "member_id", "node_id")

    def __init__(
        self, node_id: int, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> None:
        self.node_id = node_id
        self.generation_id = generation_id
        self.member_id = member_id
        self.group_instance_id = group_instance_id


class ExponentialBackoff:
    """``base * 2**attempts`` capped at ``maximum``, with +/-20% jitter so that members
    of one group do not retry in lockstep (Java ``ExponentialBackoff``)."""

    def __init__(self, base_ms: int, maximum_ms: int, rng: random.Random) -> None:
        self._base = base_ms
        self._max = max(base_ms, maximum_ms)
        self._rng = rng

    def delay(self, attempts: int) -> int:
        if attempts <= 0:
            return 0
        raw = min(self._max, self._base * 2 ** min(attempts - 1, 30))
        return max(0, int(raw * self._rng.uniform(0.8, 1.2)))
