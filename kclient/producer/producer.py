"""AsyncProducer: the public producer, with aiokafka's method names.

    async with AsyncProducer(bootstrap_servers="127.0.0.1:9092", linger_ms=5) as producer:
        delivery = await producer.send("topic", b"value", key=b"k")
        metadata = await delivery        # RecordMetadata(topic, partition, offset, timestamp)

The facade validates and partitions each record, appends it to the
:class:`RecordAccumulator` and returns its :class:`DeliveryFuture`; the
:class:`Sender` task (sender.py) does all the I/O. Invalid input raises at the call
site and enqueues nothing.

Hot path (``send``): checks inline (helpers only for serializers, odd types and
errors), one dict lookup for the topic's partitions, the key hash or the keyless sticky
choice read straight from the partitioner's dict (and its byte count kept here), a
cached ``(topic, partition)`` tuple, one ``append`` given the clock uncalled (it is read
only when a batch starts), and one checkpoint. The checkpoint only yields to the event
loop when the record started or filled a batch (so the Sender runs about once per batch
in a tight loop); otherwise there is none. ``send_many`` validates all its records first (so a bad
one enqueues nothing). Plain bytes values with the default keyless choice take the bulk
path: per sticky stint one ``append_values`` fills whole batches through zip/map runs,
with the cyclic GC paused (no await inside); anything else appends per record. One
checkpoint at the end either way.

Transactions (``transactional_id=...``): the methods live in txn_api.py
(:class:`TransactionalProducer`); ``init_transactions()`` runs in :meth:`start`, and
every record's partition is registered with the TransactionManager before it is
appended (which refuses a send outside a transaction).

Backpressure: when the buffer is full, ``send`` waits for space in FIFO order with
the other blocked senders, up to ``max_block_ms``, then raises :class:`BufferFullError`.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
from typing_extensions import Self

from kclient._client_base import ClientRuntime
from kclient._clock import now_ms
from kclient.cluster.metadata import ClusterSnapshot
from kclient.cluster.refresher import MetadataManager
from kclient.config import ProducerConfig
from kclient.errors import BufferFullError, IllegalStateError, KafkaTimeoutError
from kclient.net.transport import Transport
from kclient.producer.accumulator import RecordAccumulator
from kclient.producer.batch import (
    BATCH_OVERHEAD,
    DeliveryFuture,
    Headers,
    estimate_record_size,
    records_encoder,
)
from kclient.producer.idempotence import IdempotenceManager
from kclient.producer.partitioner import (
    DefaultPartitioner,
    Partitioner,
    StickyPartitioner,
    partition_for_key,
)
from kclient.producer.sender import Sender
from kclient.producer.transactions import TransactionManager
from kclient.producer.txn_api import TransactionalProducer
from kclient.producer.txn_plans import TxnOperation
from kclient.structs import RecordMetadata
from protocol.compression import Codec
from protocol.errors import InvalidTopicError, RecordTooLargeError, error_for_code

__all__ = ["AsyncProducer", "ProducerRecord"]

Serializer = Callable[[Any], Any]
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_MAX_TOPIC_LENGTH = 249
_FIELD_SLACK = 64  # below this margin under the limits no exact size check is needed
_time = time.time


class ProducerRecord(NamedTuple):
    """One record for :meth:`AsyncProducer.send_many` when values alone are not enough."""

    value: Any = None
    key: Any = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Headers | None = None


class _Topic(NamedTuple):
    size: int  # partition count
    all: tuple[int, ...]
    available: tuple[int, ...]
    tps: tuple[tuple[str, int], ...]  # (topic, partition) by partition id, built once


def _loop_clock_ms() -> Callable[[], float]:
    """``now_ms`` without anyio's per-call backend lookup (the send path reads the
    clock once per record): the running loop's own clock, scaled to milliseconds."""
    try:
        loop_time = asyncio.get_running_loop().time  # anyio's asyncio clock is loop.time()
    except RuntimeError:  # not asyncio (trio): keep anyio's
        return now_ms
    return lambda: loop_time() * 1000.0


def _validate_topic(topic: object) -> str:
    """TypeError for a non-string, InvalidTopicError for a name the broker would refuse
    (reliability.md B6, Java's rule): at the call site, before anything is queued."""
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, got {type(topic).__name__}")
    if not topic:
        raise InvalidTopicError("topic name is empty")
    if len(topic) > _MAX_TOPIC_LENGTH:
        raise InvalidTopicError(f"topic name longer than {_MAX_TOPIC_LENGTH} characters")
    if topic in (".", "..") or not _TOPIC_NAME.fullmatch(topic):
        raise InvalidTopicError(
            f"invalid topic name {topic!r}: use ASCII letters, digits, '.', '_', '-'"
        )
    return topic


def _as_bytes(data: object, what: str) -> bytes | None:
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes (or set a {what}_serializer), got {type(data).__name__}")


def _check_headers(headers: Iterable[tuple[str, bytes | None]]) -> tuple[Any, ...]:
    checked = []
    for item in headers:
        hkey, hvalue = item
        if not isinstance(hkey, str):
            raise TypeError(f"header key must be a str, got {hkey!r}")
        checked.append((hkey, _as_bytes(hvalue, "header value")))
    return tuple(checked)


class AsyncProducer(TransactionalProducer):
    """Idempotent, batching, optionally transactional Kafka producer (module docstring)."""

    def __init__(
        self,
        config: ProducerConfig | None = None,
        *,
        key_serializer: Serializer | None = None,
        value_serializer: Serializer | None = None,
        partitioner: Partitioner | None = None,
        transport: Transport | None = None,
        _first_sequence: int = 0,  # test hook: start sequences here (reliability.md P3)
        **settings: Any,
    ) -> None:
        if config is None:
            config = ProducerConfig(**settings)
        elif settings:
            config = config.evolve(**settings)
        self.config = config
        self._ks, self._vs = key_serializer, value_serializer
        self._serializing = key_serializer is not None or value_serializer is not None
        self._runtime = ClientRuntime(
            config, transport=transport, auto_create_topics=config.allow_auto_create_topics
        )
        self._idem = IdempotenceManager(
            enabled=config.enable_idempotence,
            delivery_timeout_ms=config.delivery_timeout_ms,
            retries=config.retries,
            is_retriable=lambda code: error_for_code(code).retriable,
            first_sequence=_first_sequence,
            external_init=config.transactional_id is not None,
        )
        self._txn: TransactionManager | None = None
        if config.transactional_id is not None:  # the config has checked idempotence
            self._txn = TransactionManager(
                config.transactional_id,
                transaction_timeout_ms=config.transaction_timeout_ms,
                retry_backoff_ms=config.retry_backoff_ms,
                retry_backoff_max_ms=config.retry_backoff_max_ms,
            )
        self._txn_ops: dict[str, TxnOperation] = {}
        self._acc = RecordAccumulator(config, idempotence=self._idem)
        self._acc.on_space_freed = self._on_space_freed
        self._sticky = StickyPartitioner(config.batch_size, load=self._acc.partition_loads)
        self._partitioner: Partitioner = partitioner or DefaultPartitioner(
            self._sticky, ignore_keys=config.partitioner_ignore_keys
        )
        self._keyed_default = partitioner is None and not config.partitioner_ignore_keys
        self._default_partitioner = partitioner is None
        # send() reads and counts the sticky choice itself: see the module docstring.
        self._sticky_states, self._sticky_bytes = self._sticky.states, self._sticky.batch_size
        self._encoder = records_encoder(Codec[config.compression_type.upper()])
        self._sender: Sender | None = None
        self._metadata: MetadataManager | None = None
        self._snap: ClusterSnapshot | None = None
        self._topics: dict[str, _Topic] = {}
        self._space: anyio.Event | None = None
        self._space_lock: anyio.Lock | None = None
        self._blocked = 0
        self._open = self._closed = self._in_context = False
        self._now: Callable[[], float] = now_ms
        limit = min(config.max_request_size, config.buffer_memory) - BATCH_OVERHEAD
        self._size_limit = limit
        self._size_guard = limit - _FIELD_SLACK

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        self._in_context = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        cancelled = exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class())
        await self.close(timeout=0 if cancelled else None)
        await self._runtime.stop()  # leave the task group where __aenter__ entered it

    async def start(self) -> None:
        """Connect, load metadata and start the Sender (aiokafka's name)."""
        if self._open or self._closed:
            raise IllegalStateError("producer already started (or closed)")
        runtime = self._runtime
        await runtime.start()
        try:
            self._metadata = runtime.metadata
            self._space_lock = anyio.Lock()
            self._sender = Sender(
                self.config,
                runtime.pool,
                runtime.metadata,
                self._acc,
                self._idem,
                self._encoder,
                transactions=self._txn,
            )
            self._now = _loop_clock_ms()
            await runtime.start_driver(self._sender.run)
            await runtime.metadata.refresh(self.config.max_block_ms)
            if self._txn is not None:
                await self.init_transactions()
        except BaseException:
            self._sender = None
            await runtime.stop()
            raise
        self._open = True

    async def close(self, timeout: float | None = None) -> None:
        """Send everything queued and stop. With ``timeout`` (seconds), records still
        undelivered when it runs out fail (ProducerClosedError with ``delivery_state``).
        A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        if not self._open:
            return
        sender = self._sender
        assert sender is not None
        sender.close()
        self._on_space_freed()  # blocked senders wake and see the producer closed
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                await sender.stopped.wait()
            if not sender.stopped.is_set():
                sender.abort()
                with anyio.move_on_after(1):
                    await sender.stopped.wait()
        # Outside the shield: the runtime's task group was entered outside it. Inside
        # `async with`, close() may run deeper in the nesting: __aexit__ leaves the group.
        await self._runtime.stop(final=not self._in_context)

    async def stop(self) -> None:
        """aiokafka's name for :meth:`close`."""
        await self.close()

    # -- metadata -------------------------------------------------------------------------

    async def partitions_for(self, topic: str) -> set[int]:
        """Partition ids of ``topic`` (waits up to max_block_ms for its metadata)."""
        return set((await self._topic(topic)).all)

    async def _topic(self, topic: str) -> _Topic:
        metadata = self._require()
        snapshot = metadata.snapshot
        if snapshot is not self._snap:
            self._snap = snapshot
            self._topics.clear()
            self._sticky.invalidate()
        cached = self._topics.get(topic)
        if cached is not None:
            return cached
        _validate_topic(topic)
        info = snapshot.topics.get(topic)
        if info is None:
            snapshot = await metadata.wait_for_topics([topic], self.config.max_block_ms)
            info = snapshot.topics[topic]
        ids = tuple(p.partition for p in info.partitions)
        live = tuple(p.partition for p in info.partitions if p.leader >= 0)
        tps = tuple((topic, i) for i in range(len(ids)))
        entry = self._topics[topic] = _Topic(len(ids), ids, live, tps)
        return entry

    def _require(self) -> MetadataManager:
        if self._closed:
            raise IllegalStateError("the producer is closed")
        if self._metadata is None:
            raise IllegalStateError("the producer is not started; use `async with` or start()")
        sender = self._sender
        if sender is not None and sender.fatal_error is not None:
            fatal = self._txn.fatal_error() if self._txn is not None else None
            raise fatal or sender.fatal_error  # the transactional form when there is one
        return self._metadata

    # -- sending --------------------------------------------------------------------------

    async def send(self, topic: str, value: Any = None, key: Any = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: Headers | None = None) -> DeliveryFuture:  # fmt: skip
        """Queue one record; returns its delivery future (await it for RecordMetadata).

        Waits only while the buffer is full (up to max_block_ms, then BufferFullError)
        or, on the first record for a topic, for its metadata.
        """
        sender, metadata = self._sender, self._metadata
        if sender is None or metadata is None or self._closed or sender.fatal_error is not None:
            metadata = self._require()
            assert sender is not None
        if self._serializing or type(value) is not bytes or not (key is None or type(key) is bytes):
            key, value = self._serialize(key, value)
        headers = _check_headers(headers) if headers else ()
        tinfo = self._topics.get(topic)
        if tinfo is None or metadata.snapshot is not self._snap:
            tinfo = await self._topic(topic)
        sticky = None
        if partition is None:
            if self._default_partitioner and (key is None or not self._keyed_default):
                sticky = self._sticky_states.get(topic) or self._sticky.state(
                    topic, tinfo.all, tinfo.available
                )
                partition = sticky.partition
            else:
                partition = self._choose_checked(topic, key, tinfo)
        elif type(partition) is not int or not 0 <= partition < tinfo.size:
            raise ValueError(f"partition {partition!r} out of range for {topic!r} ({tinfo.size})")
        if (len(value) if value else 0) + (len(key) if key else 0) > self._size_guard:
            self._check_size(key, value, headers)
        tp = tinfo.tps[partition]
        if self._txn is not None:
            self._txn.add_partition(tp)  # raises outside a transaction
        ts = int(_time() * 1000) if timestamp_ms is None else timestamp_ms
        # Others waiting for space go first (FIFO).
        result = None if self._blocked else self._acc.append(tp, ts, key, value, headers, self._now)
        if result is None:
            result = await self._append_waiting(tp, ts, key, value, headers)
            sticky = None  # the choice may have moved while waiting: count via on_append
        future, wake, size = result
        if sticky is None:
            self._sticky.on_append(topic, partition, size)
        else:  # StickyPartitioner.on_append, inlined
            sticky.produced += size
            if sticky.produced >= self._sticky_bytes:
                self._sticky.invalidate(topic)
        if wake:  # the one checkpoint (module docstring): only when a batch started or filled
            sender.wake()
            await anyio.lowlevel.checkpoint()
        return future

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its delivery."""
        future = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await future

    async def send_many(
        self,
        topic: str,
        values_or_records: Iterable[Any],
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> list[DeliveryFuture]:
        """Queue many records for ``topic``; returns their futures in order.

        Items are values, or :class:`ProducerRecord` for per-record keys, partitions,
        timestamps or headers (the keyword arguments are the defaults for the others).
        Every item is validated before any is queued.
        """
        self._require()
        tinfo = await self._topic(topic)
        if timestamp_ms is None:
            timestamp_ms = int(_time() * 1000)
        items = values_or_records if type(values_or_records) is list else list(values_or_records)
        if self._bulk_ok(items, key, partition):
            default_headers = _check_headers(headers) if headers else ()
            return await self._append_bulk(topic, tinfo, items, key, timestamp_ms, default_headers)
        prepared = self._prepare_many(tinfo, items, key, partition, timestamp_ms, headers)
        return await self._append_many(topic, tinfo, prepared)

    async def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until it is delivered (or failed)."""
        self._require()
        assert self._sender is not None
        batches = self._acc.begin_flush()
        self._sender.wake()
        try:
            with anyio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
                for batch in batches:
                    await batch.wait()
        finally:
            self._acc.end_flush()
        if scope.cancelled_caught:
            raise KafkaTimeoutError(f"flush did not complete within {timeout} s")

    # -- helpers --------------------------------------------------------------------------

    def _choose(self, topic: str, key: bytes | None, tinfo: _Topic) -> int:
        if key is not None and self._keyed_default:
            return partition_for_key(key, tinfo.size)
        return self._partitioner(topic, key, tinfo.all, tinfo.available)

    def _serialize(self, key: Any, value: Any) -> tuple[bytes | None, bytes | None]:
        if self._ks is not None:
            key = self._ks(key)
        if self._vs is not None:
            value = self._vs(value)
        if type(value) is not bytes and value is not None:
            value = _as_bytes(value, "value")
        if type(key) is not bytes and key is not None:
            key = _as_bytes(key, "key")
        return key, value

    def _choose_checked(self, topic: str, key: bytes | None, tinfo: _Topic) -> int:
        partition = self._choose(topic, key, tinfo)
        if type(partition) is not int or not 0 <= partition < tinfo.size:  # a custom partitioner
            raise ValueError(f"partitioner chose {partition!r} for {topic!r} ({tinfo.size})")
        return partition

    def _check_size(self, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        size = estimate_record_size(key, value, headers)
        if size > self._size_limit:
            raise RecordTooLargeError(
                f"record of ~{size + BATCH_OVERHEAD} bytes exceeds max_request_size="
                f"{self.config.max_request_size} or buffer_memory={self.config.buffer_memory}"
            )

    def _on_space_freed(self) -> None:
        if self._space is not None:
            self._space.set()

    async def _append_waiting(
        self, tp: tuple[str, int], ts: int, key: Any, value: Any, headers: Headers
    ) -> tuple[DeliveryFuture, bool, int]:
        """The buffer is full (or others wait already): wait in FIFO order for space."""
        assert self._space_lock is not None and self._sender is not None
        self._blocked += 1
        try:
            with anyio.move_on_after(self.config.max_block_ms / 1000):
                async with self._space_lock:
                    while True:
                        self._require()
                        result = self._acc.append(tp, ts, key, value, headers, self._now())
                        if result is not None:
                            return result
                        self._space = anyio.Event()
                        self._sender.wake()
                        await self._space.wait()
        finally:
            self._blocked -= 1
        raise BufferFullError(
            f"no room in the buffer (buffer_memory={self.config.buffer_memory}) within "
            f"max_block_ms={self.config.max_block_ms}; nothing was enqueued"
        )

    def _prepare_many(
        self,
        tinfo: _Topic,
        items: Iterable[Any],
        key: Any,
        partition: int | None,
        timestamp_ms: int,
        headers: Headers | None,
    ) -> list[tuple[Any, ...]]:
        """Validate and serialize every item: (key, value, partition|None, ts, headers)."""
        ks, vs, guard = self._ks, self._vs, self._size_guard
        default_headers = _check_headers(headers) if headers else ()
        if partition is not None and not 0 <= partition < tinfo.size:
            raise ValueError(f"partition {partition!r} out of range ({tinfo.size})")
        out: list[tuple[Any, ...]] = []
        append = out.append
        for item in items:
            if type(item) is ProducerRecord:
                out.append(self._prepare_record(tinfo, item, key, partition, timestamp_ms))
                continue
            k = key if ks is None else ks(key)
            v = item if vs is None else vs(item)
            if type(v) is not bytes and v is not None:
                v = _as_bytes(v, "value")
            if type(k) is not bytes and k is not None:
                k = _as_bytes(k, "key")
            if (len(v) if v else 0) + (len(k) if k else 0) > guard:
                self._check_size(k, v, default_headers)
            append((k, v, partition, timestamp_ms, default_headers))
        return out

    def _prepare_record(
        self, tinfo: _Topic, rec: ProducerRecord, key: Any, partition: int | None, ts: int
    ) -> tuple[Any, ...]:
        k = rec.key if rec.key is not None else key
        if self._ks is not None:
            k = self._ks(k)
        v = rec.value if self._vs is None else self._vs(rec.value)
        k, v = _as_bytes(k, "key"), _as_bytes(v, "value")
        h = _check_headers(rec.headers) if rec.headers else ()
        p = rec.partition if rec.partition is not None else partition
        if p is not None and not 0 <= p < tinfo.size:
            raise ValueError(f"partition {p!r} out of range ({tinfo.size})")
        self._check_size(k, v, h)
        return (k, v, p, rec.timestamp_ms if rec.timestamp_ms is not None else ts, h)

    def _bulk_ok(self, items: list[Any], key: Any, partition: int | None) -> bool:
        """Whether ``send_many`` can fill batches a run of records at a time: plain
        bytes values, no serializers, one key the sticky partitioner ignores, no
        size near the limits. Everything else takes the per-record path."""
        if partition is not None or not self._default_partitioner or self._vs or self._ks:
            return False
        if key is not None and (self._keyed_default or type(key) is not bytes):
            return False
        # map/set/max run in C: a validation pass that costs next to nothing per record.
        if not items or set(map(type, items)) != {bytes}:
            return False
        return max(map(len, items)) + (len(key) if key else 0) <= self._size_guard

    async def _append_bulk(
        self, topic: str, tinfo: _Topic, values: list[bytes], key: bytes | None, ts: int,
        headers: Headers,
    ) -> list[DeliveryFuture]:  # fmt: skip
        """send_many's bulk path: one ``append_values`` per sticky partition stint
        (the accumulator fills each batch with one zip/map run), the same batches,
        partition switches and futures as one ``send`` per value would give."""
        sender, sticky, append_values = self._sender, self._sticky, self._acc.append_values
        assert sender is not None
        out: list[DeliveryFuture] = []
        i, n, wake = 0, len(values), False
        while i < n:
            state = sticky.state(topic, tinfo.all, tinfo.available)
            tp = tinfo.tps[state.partition]
            if self._txn is not None:
                self._txn.add_partition(tp)
            stop = i
            if not self._blocked:  # others waiting for space go first (FIFO)
                budget = self._sticky_bytes - state.produced
                # GC paused per stint (no await inside): the futures and record tuples
                # made here all survive, so collections during the run would only
                # rescan them (the consumer's fetcher does the same per batch).
                pause = gc.isenabled()
                if pause:
                    gc.disable()
                try:
                    stop, appended, woke = append_values(
                        tp, ts, key, values, i, budget, headers, self._now, out
                    )
                finally:
                    if pause:
                        gc.enable()
                wake = wake or woke
                state.produced += appended
                if state.produced >= self._sticky_bytes:
                    sticky.invalidate(topic)
            if stop == i:  # the buffer is full: wait for room, as send() does
                sender.wake()
                future, woke, size = await self._append_waiting(tp, ts, key, values[i], headers)
                out.append(future)
                wake = wake or woke
                sticky.on_append(topic, state.partition, size)
                stop = i + 1
            i = stop
        if wake:
            sender.wake()
        await anyio.lowlevel.checkpoint()
        return out

    async def _append_many(
        self, topic: str, tinfo: _Topic, prepared: Sequence[tuple[Any, ...]]
    ) -> list[DeliveryFuture]:
        acc_append, on_append = self._acc.append, self._sticky.on_append
        choose, now = self._choose, self._now()
        futures: list[DeliveryFuture] = []
        wake = False
        for k, v, p, ts, h in prepared:
            if p is None:
                p = choose(topic, k, tinfo)
            tp = (topic, p)
            if self._txn is not None:
                self._txn.add_partition(tp)
            result = None if self._blocked else acc_append(tp, ts, k, v, h, now)
            if result is None:
                assert self._sender is not None
                self._sender.wake()
                result = await self._append_waiting(tp, ts, k, v, h)
                now = self._now()
            futures.append(result[0])
            wake = wake or result[1]
            on_append(topic, p, result[2])
        if wake:
            assert self._sender is not None
            self._sender.wake()
        await anyio.lowlevel.checkpoint()
        return futures
