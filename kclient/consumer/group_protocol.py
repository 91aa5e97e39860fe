"""The "consumer" group protocol: assignors plus the ConsumerProtocol wire encoding.

Implements :class:`~kclient.consumer.group_types.GroupProtocol` for
:class:`~kclient.consumer.membership.GroupMember`, which itself only moves opaque
bytes. Subscriptions and assignments are encoded at version 3 (owned partitions,
generation, rack); peers with older layouts decode the prefix they know.

Safety net for custom assignors: under the COOPERATIVE protocol the leader withholds
every partition that its assignor gave to a member other than a current holder, so a
custom assignor cannot hand a partition directly from one member to another (the
built-in cooperative-sticky assignor already does this; applying it twice is a no-op).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from kclient.consumer.assignors import common_rebalance_protocol
from kclient.consumer.assignors._sticky_core import Claim
from kclient.consumer.assignors.base import (
    Assignment,
    PartitionAssignor,
    RebalanceProtocol,
    Subscription,
)
from kclient.consumer.assignors.cooperative_sticky import withhold_moving_partitions
from kclient.consumer.group_types import JoinedMember
from kclient.structs import TopicPartition
from protocol._errors_base import KafkaProtocolError
from protocol.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolAssignmentTopicPartition,
    ConsumerProtocolSubscription,
    ConsumerProtocolSubscriptionTopicPartition,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

__all__ = ["ConsumerGroupProtocol", "group_subscription"]

_VERSION = 3


def _by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return grouped


def group_subscription(metadata: Iterable[bytes]) -> frozenset[str]:
    """Every topic the members' subscription metadata names (undecodable entries are
    skipped: the assignor treats such a member as subscribing to nothing)."""
    topics: set[str] = set()
    for raw in metadata:
        try:
            topics.update(decode_subscription(raw).topics)
        except KafkaProtocolError:
            continue
    return frozenset(topics)


class ConsumerGroupProtocol:
    def __init__(
        self,
        assignors: Sequence[PartitionAssignor],
        partition_counts: Callable[[], Mapping[str, int]],
        rack_id: str | None = None,
    ) -> None:
        if not assignors:
            raise ValueError("at least one assignor is required")
        self._assignors = {a.name: a for a in assignors}
        self._order = list(assignors)
        self._partition_counts = partition_counts
        self._rack_id = rack_id
        self._protocol = common_rebalance_protocol(list(assignors))

    @property
    def rebalance_protocol(self) -> RebalanceProtocol:
        return self._protocol

    def join_protocols(
        self, topics: frozenset[str], owned: frozenset[TopicPartition], generation_id: int
    ) -> list[tuple[str, bytes]]:
        owned_wire = [
            ConsumerProtocolSubscriptionTopicPartition(topic=t, partitions=ps)
            for t, ps in _by_topic(owned).items()
        ]
        out = []
        for assignor in self._order:
            sub = ConsumerProtocolSubscription(
                topics=sorted(topics),
                user_data=assignor.metadata(topics),
                owned_partitions=owned_wire,
                generation_id=generation_id,
                rack_id=self._rack_id,
            )
            out.append((assignor.name, encode_subscription(sub, _VERSION)))
        return out

    def assign(self, protocol_name: str, members: Sequence[JoinedMember]) -> dict[str, bytes]:
        assignor = self._assignors[protocol_name]
        subscriptions = {m.member_id: self._decode_member(m) for m in members}
        wanted = {t for s in subscriptions.values() for t in s.topics}
        counts = {t: n for t, n in self._partition_counts().items() if t in wanted}
        result = assignor.assign(counts, subscriptions)
        if self._protocol is RebalanceProtocol.COOPERATIVE:
            result = self._withhold(result, subscriptions)
        return {
            member: encode_assignment(self._to_wire(result.get(member)), _VERSION)
            for member in subscriptions
        }

    @staticmethod
    def _decode_member(member: JoinedMember) -> Subscription:
        try:
            sub = decode_subscription(member.metadata)
        except KafkaProtocolError:
            # A peer's undecodable metadata must not stop the whole group: treat it as
            # subscribing to nothing (it will get nothing and can rejoin).
            return Subscription((), group_instance_id=member.group_instance_id)
        owned = tuple(
            TopicPartition(tp.topic, p) for tp in sub.owned_partitions for p in tp.partitions
        )
        return Subscription(
            tuple(sub.topics),
            sub.user_data,
            owned,
            sub.generation_id,
            member.group_instance_id,
            sub.rack_id,
        )

    @staticmethod
    def _withhold(
        result: Mapping[str, Assignment], subscriptions: Mapping[str, Subscription]
    ) -> dict[str, Assignment]:
        claims = {m: Claim(s.generation_id, s.owned_partitions) for m, s in subscriptions.items()}
        target = {m: list(a.partitions) for m, a in result.items()}
        kept = withhold_moving_partitions(target, claims)
        return {m: Assignment(tuple(kept[m]), result[m].user_data) for m in result}

    @staticmethod
    def _to_wire(assignment: Assignment | None) -> ConsumerProtocolAssignment:
        if assignment is None:
            return ConsumerProtocolAssignment()
        return ConsumerProtocolAssignment(
            assigned_partitions=[
                ConsumerProtocolAssignmentTopicPartition(topic=t, partitions=ps)
                for t, ps in _by_topic(assignment.partitions).items()
            ],
            user_data=assignment.user_data,
        )

    def on_assignment(
        self, protocol_name: str, assignment: bytes, generation_id: int
    ) -> frozenset[TopicPartition]:
        decoded = decode_assignment(assignment) if assignment else ConsumerProtocolAssignment()
        partitions = tuple(
            TopicPartition(tp.topic, p) for tp in decoded.assigned_partitions for p in tp.partitions
        )
        assignor = self._assignors.get(protocol_name)
        if assignor is not None:
            assignor.on_assignment(Assignment(partitions, decoded.user_data), generation_id)
        return frozenset(partitions)
