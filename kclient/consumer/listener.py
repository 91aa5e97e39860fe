"""Rebalance listeners: what the application hears when its assignment changes.

Callbacks may be plain functions or coroutine functions; the coordinator driver awaits
the latter. Order (Java's, KIP-429): ``on_partitions_revoked`` runs while the member
still holds a valid generation, so committing inside it works; it runs *before* the
partitions leave the assignment, and no record of them is handed out once it started.
``on_partitions_assigned`` runs after the partitions were added, so seeking inside it
works. ``on_partitions_lost`` runs when membership was lost (another member may already
own the partitions): committing there fails; by default it calls
``on_partitions_revoked`` (as Java does).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from kclient.structs import TopicPartition

__all__ = ["ConsumerRebalanceListener", "RebalanceListenerProtocol", "invoke"]


@runtime_checkable
class RebalanceListenerProtocol(Protocol):
    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> object: ...

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> object: ...


class ConsumerRebalanceListener:
    """Base class with no-op callbacks; override what you need (sync or ``async def``)."""

    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> object:
        return None

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> object:
        return None

    def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> object:
        return self.on_partitions_revoked(lost)


async def invoke(
    callback: Callable[[frozenset[TopicPartition]], object | Awaitable[object]] | None,
    partitions: frozenset[TopicPartition],
) -> None:
    """Call a listener callback, awaiting it if it returned an awaitable."""
    if callback is None:
        return
    result = callback(partitions)
    if inspect.isawaitable(result):
        await result
