"""The partition-assignor contract and the helpers shared by the built-in assignors.

An assignor runs on the group leader only. The leader receives every member's
:class:`Subscription` (decoded from the JoinGroup response) and the partition count
of every subscribed topic, and returns one :class:`Assignment` per member id. The
assignor is pure: no I/O, no clock, deterministic for a given input (members are
always iterated in :func:`member_sort_key` order, never in dict order).

Custom assignors implement :class:`PartitionAssignor`; deriving from
:class:`AbstractPartitionAssignor` supplies the optional hooks.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kclient.structs import TopicPartition

__all__ = [
    "AbstractPartitionAssignor",
    "Assignment",
    "PartitionAssignor",
    "RebalanceProtocol",
    "Subscription",
    "all_partitions",
    "member_sort_key",
    "sorted_members",
]


class RebalanceProtocol(enum.Enum):
    """EAGER revokes everything before joining; COOPERATIVE revokes only what moves."""

    EAGER = 0
    COOPERATIVE = 1


@dataclass(frozen=True, slots=True)
class Subscription:
    """One member's view as sent in JoinGroup (ConsumerProtocolSubscription).

    ``owned_partitions`` and ``generation_id`` come from subscription versions 1 and 2;
    ``generation_id`` is -1 when the member sent none (then an assignor may fall back to
    its own ``user_data``).
    """

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation_id: int = -1
    group_instance_id: str | None = None
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """What the leader gives one member (ConsumerProtocolAssignment)."""

    partitions: tuple[TopicPartition, ...]
    user_data: bytes | None = None


@runtime_checkable
class PartitionAssignor(Protocol):
    """What a custom assignor implements."""

    @property
    def name(self) -> str:
        """The protocol name advertised in JoinGroup (e.g. ``"range"``)."""
        ...

    @property
    def supported_protocols(self) -> tuple[RebalanceProtocol, ...]:
        """Rebalance protocols this assignor is safe under (EAGER and/or COOPERATIVE)."""
        ...

    def metadata(self, topics: Collection[str]) -> bytes | None:
        """User data to put in this member's subscription (None for none)."""
        ...

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        """Leader only: map every member id in ``subscriptions`` to its assignment."""
        ...

    def on_assignment(self, assignment: Assignment, generation_id: int) -> None:
        """Every member: called with its own assignment once SyncGroup succeeds."""
        ...


class AbstractPartitionAssignor:
    """Convenience base: no user data, nothing to remember, eager only."""

    name: str = ""
    supported_protocols: tuple[RebalanceProtocol, ...] = (RebalanceProtocol.EAGER,)

    def metadata(self, topics: Collection[str]) -> bytes | None:
        return None

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        raise NotImplementedError

    def on_assignment(self, assignment: Assignment, generation_id: int) -> None:
        return None


def member_sort_key(member_id: str, subscription: Subscription) -> tuple[int, str]:
    """Java's ``MemberInfo`` order: static members first by instance id, then by member id.

    Sorting by instance id keeps range/roundrobin stable across restarts of static
    members, whose member ids change on every restart.
    """
    if subscription.group_instance_id is not None:
        return (0, subscription.group_instance_id)
    return (1, member_id)


def sorted_members(subscriptions: Mapping[str, Subscription]) -> list[str]:
    return sorted(subscriptions, key=lambda m: member_sort_key(m, subscriptions[m]))


def all_partitions(
    partitions_per_topic: Mapping[str, int], topics: Iterable[str]
) -> list[TopicPartition]:
    """Partitions of ``topics`` sorted by (topic, partition); unknown topics are skipped
    (they are not in metadata yet, so nobody can be assigned them)."""
    out: list[TopicPartition] = []
    for topic in sorted(set(topics)):
        count = partitions_per_topic.get(topic, 0)
        out.extend(TopicPartition(topic, p) for p in range(count))
    return out


def empty_assignments(subscriptions: Mapping[str, Subscription]) -> dict[str, list[TopicPartition]]:
    return {member: [] for member in subscriptions}


def finish(assigned: Mapping[str, list[TopicPartition]]) -> dict[str, Assignment]:
    return {member: Assignment(tuple(sorted(tps))) for member, tps in assigned.items()}
