"""The sticky assignment algorithm shared by the sticky and cooperative-sticky assignors.

Goals, in priority order (Java ``AbstractStickyAssignor``):

1. every partition of a subscribed topic goes to exactly one member subscribed to it;
2. balance: no member could take a partition from another that has at least two more
   (with identical subscriptions this means counts differ by at most one);
3. stickiness: as few partitions as possible change owner.

Previous ownership comes from *claims*: (generation, partitions) per member. A claim
stands only if it is the unique claim at the highest generation for that partition
(a member that missed a rebalance claims with an older generation and loses; two
members claiming the same partition in the same generation both lose it).

Two paths, as in Java:

* constrained (every member subscribes to the same topics): quotas ``min_q`` /
  ``max_q = min_q + 1`` with exactly ``P % M`` members at ``max_q``. Each member keeps up
  to ``min_q`` of what it owned, then members that owned more keep one more while
  ``max_q`` slots remain. Anyone holding >= ``max_q`` gains the same one partition from a
  slot, so any slot order retains the optimum; the rest is dealt to the members below
  quota. This is optimal on both balance and stickiness.
* general (subscriptions differ): keep every valid claim, deal the unowned partitions
  (most constrained first) to the least-loaded eligible member, then move partitions
  from a member to an eligible one holding two or more fewer until none can move. Each
  move lowers the sum of squared loads, so the loop ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kclient.consumer.assignors.base import all_partitions
from kclient.structs import TopicPartition


@dataclass(frozen=True, slots=True)
class Claim:
    """What one member says it owned, and in which generation."""

    generation: int
    partitions: tuple[TopicPartition, ...]


def top_claimants(claims: Mapping[str, Claim]) -> dict[TopicPartition, list[str]]:
    """For every claimed partition, the members claiming it at the highest generation."""
    best: dict[TopicPartition, tuple[int, list[str]]] = {}
    for member, claim in claims.items():
        for tp in set(claim.partitions):
            current = best.get(tp)
            if current is None or claim.generation > current[0]:
                best[tp] = (claim.generation, [member])
            elif claim.generation == current[0]:
                current[1].append(member)
    return {tp: members for tp, (_, members) in best.items()}


def valid_owners(
    claims: Mapping[str, Claim],
    member_topics: Mapping[str, frozenset[str]],
    partitions_per_topic: Mapping[str, int],
) -> dict[TopicPartition, str]:
    """Claims that survive: unique at the top generation, partition still exists, and the
    claimant is still subscribed to the topic."""
    owners: dict[TopicPartition, str] = {}
    for tp, members in top_claimants(claims).items():
        if len(members) != 1:
            continue
        member = members[0]
        if tp.topic in member_topics[member] and tp.partition < partitions_per_topic.get(
            tp.topic, 0
        ):
            owners[tp] = member
    return owners


def sticky_assign(
    partitions_per_topic: Mapping[str, int],
    member_topics: Mapping[str, frozenset[str]],
    claims: Mapping[str, Claim],
    order: Sequence[str],
) -> dict[str, list[TopicPartition]]:
    """Assign partitions to the members in ``order`` (the deterministic member order)."""
    owners = valid_owners(claims, member_topics, partitions_per_topic)
    if not order:
        return {}
    topic_sets = {member_topics[m] for m in order}
    if len(topic_sets) == 1:
        return _constrained(partitions_per_topic, next(iter(topic_sets)), owners, order)
    return _general(partitions_per_topic, member_topics, owners, order)


def _owned_by(
    owners: Mapping[TopicPartition, str], order: Sequence[str]
) -> dict[str, list[TopicPartition]]:
    owned: dict[str, list[TopicPartition]] = {m: [] for m in order}
    for tp in sorted(owners):
        owned[owners[tp]].append(tp)
    return owned


def _constrained(
    partitions_per_topic: Mapping[str, int],
    topics: frozenset[str],
    owners: Mapping[TopicPartition, str],
    order: Sequence[str],
) -> dict[str, list[TopicPartition]]:
    everything = all_partitions(partitions_per_topic, topics)
    min_q, extra = divmod(len(everything), len(order))
    owned = _owned_by(owners, order)
    assigned = {m: owned[m][:min_q] for m in order}
    slots = extra
    for m in order:
        if slots and len(owned[m]) > min_q:
            assigned[m].append(owned[m][min_q])
            slots -= 1
    kept = {tp for tps in assigned.values() for tp in tps}
    pending = [tp for tp in everything if tp not in kept]
    pending.reverse()  # pop() from the end hands out partitions in ascending order
    for m in order:
        while len(assigned[m]) < min_q:
            assigned[m].append(pending.pop())
    for m in order:
        if not pending:
            break
        if len(assigned[m]) == min_q:
            assigned[m].append(pending.pop())
    assert not pending, "quota arithmetic left partitions unassigned"
    return assigned


def _general(
    partitions_per_topic: Mapping[str, int],
    member_topics: Mapping[str, frozenset[str]],
    owners: Mapping[TopicPartition, str],
    order: Sequence[str],
) -> dict[str, list[TopicPartition]]:
    rank = {m: i for i, m in enumerate(order)}
    every_topic = {t for m in order for t in member_topics[m]}
    eligible_by_topic = {t: [m for m in order if t in member_topics[m]] for t in every_topic}
    assigned = _owned_by(owners, order)
    unowned = [tp for tp in all_partitions(partitions_per_topic, every_topic) if tp not in owners]
    # Most constrained first, so a partition only one member can take is not starved.
    unowned.sort(key=lambda tp: (len(eligible_by_topic[tp.topic]), tp))
    for tp in unowned:
        target = min(eligible_by_topic[tp.topic], key=lambda m: (len(assigned[m]), rank[m]))
        assigned[target].append(tp)
    _rebalance(assigned, eligible_by_topic, owners, rank)
    return assigned


def _rebalance(
    assigned: dict[str, list[TopicPartition]],
    eligible_by_topic: Mapping[str, list[str]],
    owners: Mapping[TopicPartition, str],
    rank: Mapping[str, int],
) -> None:
    """Move partitions until no member could take one from a member with 2+ more."""
    while True:
        move = _find_move(assigned, eligible_by_topic, owners, rank)
        if move is None:
            return
        tp, source, target = move
        assigned[source].remove(tp)
        assigned[target].append(tp)


def _find_move(
    assigned: Mapping[str, list[TopicPartition]],
    eligible_by_topic: Mapping[str, list[str]],
    owners: Mapping[TopicPartition, str],
    rank: Mapping[str, int],
) -> tuple[TopicPartition, str, str] | None:
    by_load = sorted(assigned, key=lambda m: (-len(assigned[m]), rank[m]))
    for source in by_load:
        load = len(assigned[source])
        # Prefer moving partitions the source did not own before: they cost no stickiness.
        candidates = sorted(assigned[source], key=lambda tp: (owners.get(tp) == source, tp))
        for tp in candidates:
            targets = [m for m in eligible_by_topic[tp.topic] if len(assigned[m]) < load - 1]
            if targets:
                # Prefer the partition's previous owner, then the least loaded.
                target = min(
                    targets, key=lambda m: (owners.get(tp) != m, len(assigned[m]), rank[m])
                )
                return tp, source, target
    return None
