"""Range assignor (Java ``RangeAssignor``, without the rack-aware extension).

Per topic, the members subscribed to it are sorted (static members first by instance
id, then by member id) and the partitions are cut into contiguous ranges; the first
``count % members`` members get one extra partition. Co-partitioned topics therefore
land on the same member, which is the reason to choose range.
"""

from __future__ import annotations

from collections.abc import Mapping

from kclient.consumer.assignors.base import (
    AbstractPartitionAssignor,
    Assignment,
    Subscription,
    empty_assignments,
    finish,
    member_sort_key,
)
from kclient.structs import TopicPartition


class RangeAssignor(AbstractPartitionAssignor):
    name = "range"

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        assigned = empty_assignments(subscriptions)
        members_per_topic: dict[str, list[str]] = {}
        for member, sub in subscriptions.items():
            for topic in set(sub.topics):
                members_per_topic.setdefault(topic, []).append(member)
        for topic, members in members_per_topic.items():
            count = partitions_per_topic.get(topic, 0)
            members.sort(key=lambda m: member_sort_key(m, subscriptions[m]))
            per_member, extra = divmod(count, len(members))
            for i, member in enumerate(members):
                start = per_member * i + min(i, extra)
                length = per_member + (1 if i < extra else 0)
                assigned[member].extend(
                    TopicPartition(topic, p) for p in range(start, start + length)
                )
        return finish(assigned)
