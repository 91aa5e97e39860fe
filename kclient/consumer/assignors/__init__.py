"""Partition assignors: range, roundrobin, sticky, cooperative-sticky, and the contract
for custom ones (:class:`PartitionAssignor`)."""

from kclient.consumer.assignors.base import (
    AbstractPartitionAssignor,
    Assignment,
    PartitionAssignor,
    RebalanceProtocol,
    Subscription,
)
from kclient.consumer.assignors.cooperative_sticky import CooperativeStickyAssignor
from kclient.consumer.assignors.range import RangeAssignor
from kclient.consumer.assignors.roundrobin import RoundRobinAssignor
from kclient.consumer.assignors.sticky import StickyAssignor

__all__ = [
    "AbstractPartitionAssignor",
    "Assignment",
    "CooperativeStickyAssignor",
    "PartitionAssignor",
    "RangeAssignor",
    "RebalanceProtocol",
    "RoundRobinAssignor",
    "StickyAssignor",
    "Subscription",
    "common_rebalance_protocol",
]


def common_rebalance_protocol(assignors: "list[PartitionAssignor]") -> RebalanceProtocol:
    """The protocol every configured assignor supports, preferring COOPERATIVE (Java's
    ``ConsumerCoordinator`` rule). Raises ValueError when there is none."""
    common = set(RebalanceProtocol)
    for assignor in assignors:
        common &= set(assignor.supported_protocols)
    if not common:
        raise ValueError("configured assignors share no rebalance protocol")
    return max(common, key=lambda p: p.value)
