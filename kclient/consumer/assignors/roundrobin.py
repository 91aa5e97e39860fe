"""Round-robin assignor (Java ``RoundRobinAssignor``).

All partitions of all subscribed topics, sorted by (topic, partition), are dealt to
the sorted members in a circle; a member not subscribed to a partition's topic is
skipped. With identical subscriptions the counts differ by at most one.
"""

from __future__ import annotations

from collections.abc import Mapping

from kclient.consumer.assignors.base import (
    AbstractPartitionAssignor,
    Assignment,
    Subscription,
    all_partitions,
    empty_assignments,
    finish,
    sorted_members,
)


class RoundRobinAssignor(AbstractPartitionAssignor):
    name = "roundrobin"

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        assigned = empty_assignments(subscriptions)
        members = sorted_members(subscriptions)
        if not members:
            return {}
        topics_of = {m: frozenset(subscriptions[m].topics) for m in members}
        every_topic = {t for m in members for t in topics_of[m]}
        cursor = 0
        for tp in all_partitions(partitions_per_topic, every_topic):
            # Somebody subscribes to tp.topic (it came from every_topic), so this ends.
            while tp.topic not in topics_of[members[cursor]]:
                cursor = (cursor + 1) % len(members)
            assigned[members[cursor]].append(tp)
            cursor = (cursor + 1) % len(members)
        return finish(assigned)
