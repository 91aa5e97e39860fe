"""AsyncConsumer: the public consumer, with aiokafka's method names.

The facade owns one anyio task group (opened by ``start()``/``async with``, cancelled by
``close()``) running three drivers: metadata refresh, the fetch task, and (with a
``group_id``) the coordinator. Everything else here is synchronous bookkeeping over the
shared :class:`SubscriptionState` and :class:`FetchBuffer`.

Hot path: ``getmany`` drains buffered records in bulk (one decode per batch, one
``deliver`` per partition) and checkpoints once. ``async for`` drains a chunk into a
:class:`~kclient.consumer.handout.Handout` (``_refill``) and takes records from it one by
one without awaiting; per record it only checks that the partition is still current (not
sought, paused or revoked) and moves the position, so ``commit()`` never covers a record
the loop has not yet returned. It yields to the event loop once per chunk. The sync
facade takes from the same hand-out on the application's thread: one portal hop per
chunk (``_refill``), none per record.

Cancellation: a poll checks for cancellation *before* taking records and yields
*shielded* after, so a cancelled poll never loses records it already took.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from kclient._clock import now_ms
from kclient.cluster.refresher import MetadataManager
from kclient.config import ConsumerConfig
from kclient.consumer._errors import IllegalStateError, NoOffsetForPartitionError
from kclient.consumer._rpc import all_topics
from kclient.consumer.assignors import PartitionAssignor
from kclient.consumer.coordinator import Coordinator, make_assignors
from kclient.consumer.fetch_task import FetchTask
from kclient.consumer.fetcher import FetchBuffer
from kclient.consumer.handout import Handout
from kclient.consumer.list_offsets import EARLIEST, LATEST, OffsetTimestamp, list_offsets
from kclient.consumer.subscription import (
    OffsetResetStrategy,
    SubscriptionState,
    SubscriptionType,
)
from kclient.errors import GroupRequiredError
from kclient.net.pool import ConnectionPool
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

__all__ = ["AsyncConsumer"]

log = logging.getLogger("kclient.consumer")

K = TypeVar("K")
V = TypeVar("V")
Deserializer = Callable[[bytes | None], Any]


class AsyncConsumer(Generic[K, V]):
    """``async with AsyncConsumer("topic", bootstrap_servers=..., group_id=...) as c:``"""

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
        assignors = list(partition_assignment_strategy or ())
        if assignors and all(isinstance(a, str) for a in assignors):
            settings["partition_assignment_strategy"] = tuple(assignors)
        self.config = config if config is not None else ConsumerConfig(**settings)
        self._assignors = make_assignors(assignors or self.config.partition_assignment_strategy)
        self._kd = key_deserializer
        self._vd = value_deserializer
        self._close_timeout = close_timeout_ms / 1000
        self._subs = SubscriptionState(OffsetResetStrategy(self.config.auto_offset_reset))
        self._buffer = FetchBuffer(self.config.fetch_max_bytes)
        self._initial_topics = topics
        self._listener: object | None = None
        self._handout = Handout(self._subs)  # drained for async for / the sync facade
        self._tg: anyio.abc.TaskGroup | None = None  # the drivers' (see _host)
        self._outer: anyio.abc.TaskGroup | None = None
        self._host_scope: anyio.CancelScope | None = None
        self._pool: ConnectionPool | None = None
        self._metadata: MetadataManager | None = None
        self._fetch: FetchTask | None = None
        self._coord: Coordinator | None = None
        self._closed = False
        self._closing = False
        self._driver_error: BaseException | None = None

    @classmethod
    def _threaded(cls, *args: Any, **kwargs: Any) -> AsyncConsumer[Any, Any]:
        """The constructor for the sync facade, whose threads take records themselves
        (``Handout.share``)."""
        consumer: AsyncConsumer[Any, Any] = cls(*args, **kwargs)
        consumer._handout.share()
        return consumer

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncConsumer[K, V]:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        # Leaving by an exception (the handler failed, or the task was cancelled) means the
        # records of the latest poll may be unprocessed: the final auto-commit then covers
        # only what earlier polls handed out (reliability C1, auto-commit variant).
        await self._close(processed=exc_type is None)

    async def start(self) -> None:
        """Open the task group, start the drivers, load metadata (raises if unreachable)."""
        if self._tg is not None:
            raise IllegalStateError("consumer already started")
        outer = anyio.create_task_group()
        await outer.__aenter__()
        self._outer = outer
        try:
            self._tg = await outer.start(self._host)
            await self._start_drivers(self._tg)
        except BaseException:
            await self._stop_tasks()
            self._tg = None
            raise

    async def _host(self, *, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup]) -> None:
        """Hold the drivers' task group in a shielded scope: cancelling the application's
        task (which owns ``outer``) must not kill the drivers before ``close()`` has made
        its final commit and left the group; ``close()`` cancels this scope itself."""
        with anyio.CancelScope(shield=True) as scope:
            self._host_scope = scope
            async with anyio.create_task_group() as tg:
                task_status.started(tg)
                await anyio.sleep_forever()

    async def _stop_tasks(self) -> None:
        if self._host_scope is not None:
            self._host_scope.cancel()
        if self._outer is not None:
            outer, self._outer = self._outer, None
            outer.cancel_scope.cancel()
            await outer.__aexit__(None, None, None)

    async def _start_drivers(self, tg: anyio.abc.TaskGroup) -> None:
        cfg = self.config
        self._pool = ConnectionPool(cfg, tg)
        self._metadata = MetadataManager(
            cfg, self._pool, auto_create_topics=cfg.allow_auto_create_topics
        )
        await tg.start(self._guard, self._metadata.run)
        self._fetch = FetchTask(
            cfg, self._pool, self._metadata, self._subs, self._buffer,
            manage_positions=cfg.group_id is None,
        )  # fmt: skip
        await tg.start(self._guard, self._fetch.run, tg)
        if cfg.group_id is not None:
            self._coord = Coordinator(
                cfg, self._pool, self._metadata, self._subs, self._buffer, self._fetch,
                assignors=self._assignors, listener=lambda: self._listener,
                on_revoke=self._drop_chunks,
            )  # fmt: skip
            await tg.start(self._guard, self._coord.run, tg)
        await self._metadata.refresh(cfg.request_timeout_ms)
        if self._initial_topics:
            self.subscribe(self._initial_topics)

    async def _guard(
        self, run: Callable[..., Any], *args: Any, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Run a driver; a crash is kept and raised by the next poll, not by the task group
        (which would cancel the application's own task)."""
        try:
            await run(*args, task_status=task_status)
        except Exception as exc:
            log.exception("consumer driver %s crashed", getattr(run, "__qualname__", run))
            self._driver_error = exc

    async def close(self, timeout_ms: float | None = None) -> None:
        """Final commit (auto-commit), revoke callbacks, LeaveGroup, then every task ends
        and every connection closes, all within ``timeout_ms`` (default
        ``close_timeout_ms``). A second call is a no-op."""
        await self._close(processed=True, timeout_ms=timeout_ms)

    async def _close(self, *, processed: bool, timeout_ms: float | None = None) -> None:
        if self._closed or self._closing or self._tg is None:
            self._closed = True
            return
        self._closing = True  # commits inside the revoke callbacks still work
        # Records drained but not handed out are not the application's: nothing takes them
        # from here on (another thread of the sync facade), so the final commit stands.
        self._handout.clear()
        budget = self._close_timeout if timeout_ms is None else max(0.0, timeout_ms / 1000)
        # Keep a slice of the budget for closing connections and ending the tasks, so a
        # coordinator that never answers cannot make close() overrun (reliability C11).
        group_budget = budget - min(0.5, budget * 0.1)
        deadline = anyio.current_time() + budget
        try:
            with anyio.move_on_after(group_budget, shield=True):
                if self._coord is not None:
                    await self._coord.leave(
                        final_commit=True,
                        processed=processed,
                        deadline_ms=now_ms() + group_budget * 1000,
                    )
        finally:
            self._closed = True
            try:
                end = max(deadline, anyio.current_time() + 0.05)
                with anyio.CancelScope(deadline=end, shield=True):
                    assert self._pool is not None
                    await self._pool.aclose()
            finally:
                await self._stop_tasks()

    def _require(self) -> tuple[MetadataManager, FetchTask, ConnectionPool]:
        if self._closed:
            raise IllegalStateError("the consumer is closed")
        if self._metadata is None or self._fetch is None or self._pool is None:
            raise IllegalStateError("the consumer is not started; use `async with` or start()")
        return self._metadata, self._fetch, self._pool

    def _timeout(self, timeout_ms: float | None) -> float:
        return float(self.config.default_api_timeout_ms if timeout_ms is None else timeout_ms)

    # -- subscription ----------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        listener: object | None = None,
    ) -> None:
        if self.config.group_id is None:
            raise IllegalStateError("subscribe() needs a group_id; use assign() without one")
        if isinstance(topics, str):
            topics = (topics,)
        if pattern is not None:
            if topics:
                raise ValueError("give topics or pattern, not both")
            self._subs.subscribe_pattern(pattern)
        else:
            self._subs.subscribe(topics)
        self._listener = listener
        self._wake_all()

    def unsubscribe(self) -> None:
        if (
            self._coord is not None
            and self._tg is not None
            and self._subs.type in (SubscriptionType.AUTO_TOPICS, SubscriptionType.AUTO_PATTERN)
        ):
            self._coord.abandon_group(self._tg)
        self._subs.unsubscribe()
        self._buffer.clear()
        self._drop_chunks(())

    def subscription(self) -> frozenset[str]:
        return self._subs.subscription()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        wanted = [TopicPartition(*tp) for tp in partitions]
        self._subs.assign_from_user(wanted)
        self._buffer.clear({tp: None for tp in self._buffer.buffered_partitions() - set(wanted)})
        self._drop_chunks(())
        self._wake_all()

    def assignment(self) -> frozenset[TopicPartition]:
        return self._subs.assigned_partitions()

    def _wake_all(self) -> None:
        if self._fetch is not None:
            self._fetch.wake()
        if self._coord is not None:
            self._coord.wake()

    # -- pause / seek / position -----------------------------------------------------------

    def pause(self, *partitions: TopicPartition) -> None:
        self._subs.pause(partitions)
        self._drop_chunks(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._subs.resume(partitions)
        if self._fetch is not None:
            self._fetch.wake()

    def paused(self) -> frozenset[TopicPartition]:
        return self._subs.paused()

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._subs.seek(partition, offset)
        self._buffer.clear({partition: None})
        self._drop_chunks(())
        self._wake_all()

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self._reset(partitions, OffsetResetStrategy.EARLIEST)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        self._reset(partitions, OffsetResetStrategy.LATEST)

    def _reset(self, partitions: Collection[TopicPartition], how: OffsetResetStrategy) -> None:
        for tp in partitions or self._subs.assigned_partitions():
            self._subs.request_offset_reset(tp, how)
            self._buffer.clear({tp: None})
        self._drop_chunks(())
        self._wake_all()

    async def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int]:
        parts = list(partitions or self._subs.assigned_partitions())
        committed = await self.committed_offsets(*parts)
        moved: dict[TopicPartition, int] = {}
        for tp in parts:
            om = committed.get(tp)
            if om is not None and self._subs.is_assigned(tp):
                self.seek(tp, om.offset)
                moved[tp] = om.offset
        return moved

    async def position(self, partition: TopicPartition, timeout_ms: float | None = None) -> int:
        """Next offset to be returned; waits for committed-offset lookup or reset."""
        self._require()
        with anyio.fail_after(self._timeout(timeout_ms) / 1000):
            while True:
                pos = self._subs.position(partition)
                if pos is not None:
                    return pos
                self._wake_all()
                await anyio.sleep(0.01)

    def highwater(self, partition: TopicPartition) -> int | None:
        hw = self._subs.state(partition).high_watermark
        return None if hw < 0 else hw

    # -- commits ---------------------------------------------------------------------------

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata | tuple[int, str]] | None = None,
        timeout_ms: float | None = None,
    ) -> None:
        """Commit ``offsets`` (next offsets to read, with optional metadata), or by default
        everything delivered so far."""
        coord = self._require_group()
        if offsets is None:
            normalized = self._subs.delivered_offsets()
        else:
            normalized = {tp: _as_offset(v) for tp, v in offsets.items()}
        if normalized:
            await coord.commit(normalized, self._timeout(timeout_ms))

    async def committed(
        self, partition: TopicPartition, timeout_ms: float | None = None
    ) -> int | None:
        om = (await self.committed_offsets(partition, timeout_ms=timeout_ms)).get(partition)
        return None if om is None else om.offset

    async def committed_offsets(
        self, *partitions: TopicPartition, timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """Committed offset and metadata per partition (None: nothing committed)."""
        coord = self._require_group()
        return await coord.fetch_committed(partitions, self._timeout(timeout_ms))

    def _require_group(self) -> Coordinator:
        self._require()
        if self._coord is None:
            raise GroupRequiredError("committing needs a group_id")
        return self._coord

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group identity to pass to a transactional producer's
        ``send_offsets_to_transaction`` (KIP-447: the coordinator fences offsets from a
        member of an older generation). Generation -1 and member id "" while the consumer
        is not in a generation (not started or joined yet, membership lost, or manual
        ``assign``, which commits without one)."""
        group_id = self.config.group_id
        if group_id is None:
            raise GroupRequiredError("group_metadata() needs a consumer with a group_id")
        if self._closed:
            raise IllegalStateError("the consumer is closed")
        coord = self._coord
        if coord is None or self._subs.type is SubscriptionType.USER_ASSIGNED:
            return ConsumerGroupMetadata(group_id, group_instance_id=self.config.group_instance_id)
        member = coord.member
        return ConsumerGroupMetadata(
            group_id, member.generation_id, member.member_id, self.config.group_instance_id
        )

    # -- offsets lookups -------------------------------------------------------------------

    async def _lookup(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: float | None
    ) -> dict[TopicPartition, OffsetTimestamp | None]:
        metadata, _, pool = self._require()
        return await list_offsets(
            pool, metadata, timestamps,
            read_committed=self.config.isolation_level == "read_committed",
            timeout_ms=self._timeout(timeout_ms),
        )  # fmt: skip

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        found = await self._lookup(dict.fromkeys(partitions, EARLIEST), timeout_ms)
        return {tp: (a.offset if a else -1) for tp, a in found.items()}

    async def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        found = await self._lookup(dict.fromkeys(partitions, LATEST), timeout_ms)
        return {tp: (a.offset if a else -1) for tp, a in found.items()}

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetTimestamp | None]:
        """Earliest offset whose timestamp is >= the given one (None: no such record)."""
        if any(ts < 0 for ts in timestamps.values()):
            raise ValueError("timestamps must be >= 0")
        return await self._lookup(timestamps, timeout_ms)

    async def topics(self, timeout_ms: float | None = None) -> set[str]:
        metadata, _, pool = self._require()
        found, _ = await all_topics(pool, metadata, self._timeout(timeout_ms))
        return set(found)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """Partition ids from cached metadata (None if unknown yet; asks for it)."""
        metadata, _, _ = self._require()
        parts = metadata.snapshot.partitions_for(topic)
        if parts is None:
            metadata.add_topics([topic])
            return None
        return set(parts)

    # -- polling ---------------------------------------------------------------------------

    def _before_poll(self) -> None:
        if self._driver_error is not None:
            raise self._driver_error
        _, fetch, _ = self._require()
        coord = self._coord
        if coord is not None:
            if coord.error is not None:
                error, coord.error = coord.error, None
                raise error
            if self._subs.type in (SubscriptionType.AUTO_TOPICS, SubscriptionType.AUTO_PATTERN):
                coord.member.on_app_poll(int(now_ms()))
        if fetch.error is not None:
            error2, fetch.error = fetch.error, None
            raise error2
        self._subs.mark_poll_boundary()

    def _check_no_offset(self) -> None:
        for tp, how in self._subs.partitions_needing_reset(int(now_ms())).items():
            if how is OffsetResetStrategy.NONE:
                raise NoOffsetForPartitionError(
                    f"{tp} has no committed offset and auto_offset_reset is 'none'"
                )

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: float = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[K, V]]]:
        """Records by partition, up to ``max_records`` (default ``max_poll_records``),
        waiting at most ``timeout_ms`` for some to arrive."""
        # Yield (fairness) and honour cancellation *before* taking records, never between
        # taking and returning them: a revocation running in that gap would see its
        # listener finish before records of the revoked partitions reach the application
        # (C7), and a cancellation there would lose them.
        await anyio.lowlevel.checkpoint()
        _, fetch, _ = self._require()
        limit = max_records or self.config.max_poll_records
        deadline = now_ms() + timeout_ms
        self._before_poll()
        while True:
            if self._coord is not None and self._coord.has_deferred:
                # Rebalance callbacks run here, between the application's batches.
                await self._coord.run_deferred()
            out = self._take_chunks(partitions, limit) or self._drain(partitions, limit)
            if out:
                return out
            self._check_no_offset()
            remaining = deadline - now_ms()
            if remaining <= 0:
                return {}
            with anyio.move_on_after(remaining / 1000):
                await fetch.data_event.wait()
            if self._driver_error is not None or fetch.error is not None:
                self._before_poll()

    def _drain(
        self, partitions: Collection[TopicPartition], limit: int
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        assert self._fetch is not None
        out = self._buffer.drain(self._subs, limit, self._kd, self._vd, only=partitions or None)
        self._fetch.wake()  # drained partitions may be fetchable again
        return out

    def _take_chunks(
        self, partitions: Collection[TopicPartition], limit: int
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Records an ``async for`` took but has not handed out yet go first. A poll of
        chosen partitions gives them back instead, to be fetched again: what the buffer
        holds starts after the chunk, not at the position the hand-out rewound to, so
        draining it would drop it (not contiguous) and stall the partition."""
        if not self._handout:
            return {}
        if partitions:
            self._drop_chunks(())
            return {}
        return self._handout.take_rest()

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord[K, V]:
        if partitions:
            while True:
                got = await self.getmany(*partitions, timeout_ms=1000, max_records=1)
                for records in got.values():
                    return records[0]
        return await self.__anext__()

    def __aiter__(self) -> AsyncConsumer[K, V]:
        return self

    async def __anext__(self) -> ConsumerRecord[K, V]:
        take = self._handout.take
        while True:
            record = take()
            if record is not None:
                return record
            await self._refill()

    async def _refill(self) -> None:
        """Drain the next chunk into the hand-out (unless another caller already did): the
        only await of ``async for``, and the sync facade's one portal hop per chunk. Waits
        for records in polls of half ``max_poll_interval_ms``, each one a poll for
        liveness, so a quiet topic does not make the member leave the group."""
        while not self._handout:
            got = await self.getmany(timeout_ms=self.config.max_poll_interval_ms // 2 or 1)
            self._handout.load(got)

    def _drop_chunks(self, partitions: Collection[TopicPartition]) -> None:
        """Records taken for ``async for`` but not handed out are given back: the
        partition's position already points at the first of them, so a seek to it makes
        the fetcher read them again (only if still assigned and current)."""
        for tp in self._handout.give_back():
            position = self._subs.state(tp).position if self._subs.is_assigned(tp) else None
            if position is not None:
                self._subs.seek(tp, position)
                self._buffer.clear({tp: None})


def _as_offset(value: int | OffsetAndMetadata | tuple[int, str]) -> OffsetAndMetadata:
    if isinstance(value, OffsetAndMetadata):
        return value
    if isinstance(value, tuple):
        return OffsetAndMetadata(value[0], value[1])
    return OffsetAndMetadata(int(value))
