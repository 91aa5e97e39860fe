"""``Consumer``: the blocking twin of :class:`~kclient.consumer.consumer.AsyncConsumer`.

Every method forwards to the async method of the same name and signature through the
shared portal (``_portal.py``). The consumer starts in the constructor (the twin of
``AsyncConsumer.start()``), so there is no ``start()`` here.

``for record in consumer`` and ``getone()`` take records on the caller's thread from the
chunk the async iterator drained (``AsyncConsumer._handout``, shared with ``async for``):
one portal hop per chunk (``_refill``), not per record. The hand-out moves each
partition's position as it hands a record out and stops at once for a sought, paused or
revoked partition, so ``commit()`` (and the final auto-commit of ``close()``) covers
exactly the records the application has been given, as with ``async for``.
``getone(*partitions)`` keeps one hop per call (see there).

Rebalance listeners run on the portal's event-loop thread; they must not call this
client (that raises :class:`~kclient.sync.SyncInEventLoopError`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from kclient.config import ConsumerConfig
from kclient.consumer.assignors import PartitionAssignor
from kclient.consumer.consumer import AsyncConsumer, Deserializer
from kclient.consumer.list_offsets import OffsetTimestamp
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition
from kclient.sync._portal import PortalClient

__all__ = ["Consumer"]

K = TypeVar("K")
V = TypeVar("V")


class Consumer(PortalClient[AsyncConsumer[K, V]], Generic[K, V]):
    """``with Consumer("topic", bootstrap_servers=..., group_id=...) as c:``

    Keyword arguments are :class:`~kclient.config.ConsumerConfig` keys.
    """

    _async_name = "AsyncConsumer"

    def __init__(
        self,
        *topics: str,
        key_deserializer: Deserializer | None = None,
        value_deserializer: Deserializer | None = None,
        config: ConsumerConfig | None = None,
        partition_assignment_strategy: Iterable[str | PartitionAssignor] | None = None,
        close_timeout_ms: int = 10_000,
        **settings: Any,
    ) -> None:
        self._open(
            functools.partial(
                AsyncConsumer[K, V]._threaded,
                *topics,
                key_deserializer=key_deserializer,
                value_deserializer=value_deserializer,
                config=config,
                partition_assignment_strategy=partition_assignment_strategy,
                close_timeout_ms=close_timeout_ms,
                **settings,
            )
        )

    @property
    def config(self) -> ConsumerConfig:
        return self._impl.config

    def close(self, timeout_ms: float | None = None) -> None:
        """Final commit (auto-commit), revoke callbacks, LeaveGroup, all within
        ``timeout_ms`` (default ``close_timeout_ms``); calls blocked in other threads end
        (``for`` loops stop). A second call is a no-op."""
        self._shutdown(functools.partial(self._impl.close, timeout_ms))

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> Consumer[K, V]:
        return self

    def __next__(self) -> ConsumerRecord[K, V]:
        return self._next_lent(self._impl._handout.take, self._impl._refill)

    # -- subscription ----------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        listener: object | None = None,
    ) -> None:
        return self._call_sync(self._impl.subscribe, topics, pattern, listener)

    def unsubscribe(self) -> None:
        return self._call_sync(self._impl.unsubscribe)

    def subscription(self) -> frozenset[str]:
        return self._call_sync(self._impl.subscription)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        return self._call_sync(self._impl.assign, partitions)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._call_sync(self._impl.assignment)

    # -- pause / seek / position -----------------------------------------------------------

    def pause(self, *partitions: TopicPartition) -> None:
        return self._call_sync(self._impl.pause, *partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        return self._call_sync(self._impl.resume, *partitions)

    def paused(self) -> frozenset[TopicPartition]:
        return self._call_sync(self._impl.paused)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        return self._call_sync(self._impl.seek, partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        return self._call(self._impl.seek_to_beginning, *partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        return self._call(self._impl.seek_to_end, *partitions)

    def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int]:
        return self._call(self._impl.seek_to_committed, *partitions)

    def position(self, partition: TopicPartition, timeout_ms: float | None = None) -> int:
        return self._call(self._impl.position, partition, timeout_ms)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._call_sync(self._impl.highwater, partition)

    # -- commits ---------------------------------------------------------------------------

    def commit(
        self,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata | tuple[int, str]] | None = None,
        timeout_ms: float | None = None,
    ) -> None:
        return self._call(self._impl.commit, offsets, timeout_ms)

    def committed(self, partition: TopicPartition, timeout_ms: float | None = None) -> int | None:
        return self._call(self._impl.committed, partition, timeout_ms)

    def committed_offsets(
        self, *partitions: TopicPartition, timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        return self._call(self._impl.committed_offsets, *partitions, timeout_ms=timeout_ms)

    def group_metadata(self) -> ConsumerGroupMetadata:
        return self._call_sync(self._impl.group_metadata)

    # -- offsets lookups -------------------------------------------------------------------

    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        return self._call(self._impl.beginning_offsets, partitions, timeout_ms)

    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        return self._call(self._impl.end_offsets, partitions, timeout_ms)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetTimestamp | None]:
        return self._call(self._impl.offsets_for_times, timestamps, timeout_ms)

    def topics(self, timeout_ms: float | None = None) -> set[str]:
        return self._call(self._impl.topics, timeout_ms)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._call_sync(self._impl.partitions_for_topic, topic)

    # -- polling ---------------------------------------------------------------------------

    def getmany(
        self, *partitions: TopicPartition, timeout_ms: float = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[K, V]]]:
        return self._call(
            self._impl.getmany, *partitions, timeout_ms=timeout_ms, max_records=max_records
        )

    def getone(self, *partitions: TopicPartition) -> ConsumerRecord[K, V]:
        """The next record. Without partitions it comes from the hand-out, like ``for``'s
        (one portal hop per chunk); with partitions, one hop per call: the hand-out's
        chunks are in drain order over all partitions, and ``AsyncConsumer.getone`` with
        partitions reads from the fetch buffer, not from them."""
        return self._lent_or_call(
            self._impl._handout.take, self._impl._refill, self._impl.getone, *partitions
        )
