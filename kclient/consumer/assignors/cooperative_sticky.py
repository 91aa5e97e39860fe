"""Cooperative-sticky assignor (Java ``CooperativeStickyAssignor``), the default.

Incremental rebalancing (KIP-429) in two phases:

1. The leader computes the sticky target, then withholds every partition whose target
   owner differs from a current owner. A partition that stays is never revoked; a
   partition that moves is assigned to *nobody* this round.
2. The losing member sees the partition missing from its assignment, revokes it (its
   listener runs, it may commit) and rejoins at once. In that second rebalance nobody
   claims the partition any more, so the sticky target hands it to the new owner.

Hence no partition ever goes directly from A to B within one generation, and a member
never consumes a partition another member still holds. "Current owner" means every
member claiming the partition at the highest claimed generation, valid or not: two
members both claiming it are both possibly consuming it.

Owned partitions travel in the subscription (versions 1+); the generation travels in
subscription version 2, and for older peers in the user data (Java's layout: a single
INT32), which is what :meth:`metadata` writes.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

from kclient.consumer.assignors._sticky_core import Claim, sticky_assign, top_claimants
from kclient.consumer.assignors.base import (
    AbstractPartitionAssignor,
    Assignment,
    RebalanceProtocol,
    Subscription,
    finish,
    sorted_members,
)
from kclient.structs import TopicPartition

__all__ = ["CooperativeStickyAssignor", "withhold_moving_partitions"]

_I32 = struct.Struct(">i")


def withhold_moving_partitions(
    target: Mapping[str, list[TopicPartition]], claims: Mapping[str, Claim]
) -> dict[str, list[TopicPartition]]:
    """Phase 1: drop from ``target`` every partition some *other* member currently holds."""
    holders = top_claimants(claims)
    return {
        member: [tp for tp in tps if all(h == member for h in holders.get(tp, ()))]
        for member, tps in target.items()
    }


class CooperativeStickyAssignor(AbstractPartitionAssignor):
    name = "cooperative-sticky"
    # Eager too, as in Java, so a group can be rolled from eager to cooperative.
    supported_protocols = (RebalanceProtocol.COOPERATIVE, RebalanceProtocol.EAGER)

    DEFAULT_GENERATION = -1

    def __init__(self) -> None:
        self._generation = self.DEFAULT_GENERATION

    def metadata(self, topics: Collection[str]) -> bytes | None:
        return _I32.pack(self._generation)

    def on_assignment(self, assignment: Assignment, generation_id: int) -> None:
        self._generation = generation_id

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        claims = {
            m: Claim(self._generation_of(sub), sub.owned_partitions)
            for m, sub in subscriptions.items()
        }
        member_topics = {m: frozenset(sub.topics) for m, sub in subscriptions.items()}
        order = sorted_members(subscriptions)
        target = sticky_assign(partitions_per_topic, member_topics, claims, order)
        return finish(withhold_moving_partitions(target, claims))

    def _generation_of(self, sub: Subscription) -> int:
        if sub.generation_id != -1:
            return sub.generation_id
        if sub.user_data is not None and len(sub.user_data) == 4:
            return int(_I32.unpack(sub.user_data)[0])
        return self.DEFAULT_GENERATION
