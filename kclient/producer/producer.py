"""AsyncProducer: the public producer, with aiokafka's method names.

    async with AsyncProducer(bootstrap_servers="127.0.0.1:9092", linger_ms=5) as producer:
        delivery = await producer.send("topic", b"value", key=b"k")
        metadata = await delivery        # RecordMetadata(topic, partition, offset, timestamp)

The facade validates and partitions each record, appends it to the
:class:`RecordAccumulator` and returns its :class:`DeliveryFuture`; the
:class:`Sender` task (sender.py) does all the I/O. Invalid input raises at the call
site and enqueues nothing.

Fast path (``send`` of a keyless ``bytes`` value, no headers, partition or timestamp,
default partitioner, no serializers, not transactional): a per-topic lane
(:class:`~kclient.producer._lane.Lane`) is a reservation of bytes on the open batch
of the current sticky partition. A record whose estimated size fits the lane's
credit costs a subtraction, a clock read and a ``list.append``; the lane encodes
its records once per millisecond and when it settles, and its bytes reach the batch,
the buffer and the sticky count then (the accumulator settles a lane before
anything else touches its batch). The credit ends where the general path would
start or fill a batch, overflow the buffer or end the sticky stint, so the fast
path never needs a Sender wake-up or a checkpoint. Lanes are opened only by the
general path (open, no fatal error, nobody blocked) and settled when the sticky
choice moves, a new metadata snapshot arrives (``MetadataManager.on_update``), a
sender blocks for space (FIFO), ``send_many`` runs or the producer closes; a fatal
error fails the open batches, which settles their lanes.

General path: checks inline (helpers only for serializers, odd types and errors), one
dict lookup for the topic's partitions, the key hash or the keyless sticky choice read
straight from the partitioner's dict (and its byte count kept here), a cached
``(topic, partition)`` tuple, one ``append`` given the clock uncalled (it is read only
when a batch starts), and a checkpoint only when the record started or filled a batch
(so the Sender runs about once per batch in a tight loop).

``send_many`` (``_send_many.py``) validates all its records first (so a bad one
enqueues nothing). Plain bytes values with the default keyless choice take the bulk
path: per sticky stint one ``append_values`` fills whole batches through zip/map runs,
and the futures come back as runs made when read (``DeliveryFutures``); anything else
appends per record. One checkpoint at the end either way.

Transactions (``transactional_id=...``): the methods live in txn_api.py
(:class:`TransactionalProducer`); ``init_transactions()`` runs in :meth:`start`, and
every record's partition is registered with the TransactionManager before it is
appended (which refuses a send outside a transaction).

Backpressure: when the buffer is full, ``send`` waits for space in FIFO order with
the other blocked senders, up to ``max_block_ms``, then raises :class:`BufferFullError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

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
from kclient.producer._inputs import (
    ProducerRecord,
    TopicInfo,
    as_bytes,
    check_headers,
    validate_topic,
)
from kclient.producer._send_many import append_bulk, append_many, bulk_ok, prepare_many
from kclient.producer.accumulator import Lane, RecordAccumulator
from kclient.producer.batch import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    DeliveryFuture,
    Headers,
    estimate_record_size,
    records_encoder,
)
from kclient.producer.idempotence import IdempotenceManager
from kclient.producer.partitioner import (
    DefaultPartitioner,
    KeyHashes,
    Partitioner,
    StickyPartitioner,
    StickyState,
)
from kclient.producer.sender import Sender
from kclient.producer.transactions import TransactionManager
from kclient.producer.txn_api import TransactionalProducer
from kclient.producer.txn_plans import TxnOperation
from kclient.structs import RecordMetadata
from protocol.compression import Codec
from protocol.errors import RecordTooLargeError, error_for_code

__all__ = ["AsyncProducer", "ProducerRecord"]

Serializer = Callable[[Any], Any]
_FIELD_SLACK = 64  # below this margin under the limits no exact size check is needed
_time_ns = time.time_ns  # // 1_000_000: the ms timestamp, cheaper than int(time() * 1000)


def _loop_clock_ms() -> Callable[[], float]:
    """``now_ms`` without anyio's per-call backend lookup (the send path reads the
    clock once per record): the running loop's own clock, scaled to milliseconds."""
    try:
        loop_time = asyncio.get_running_loop().time  # anyio's asyncio clock is loop.time()
    except RuntimeError:  # not asyncio (trio): keep anyio's
        return now_ms
    return lambda: loop_time() * 1000.0


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
        self._sticky = StickyPartitioner(
            self._acc.settings.batch_size, load=self._acc.partition_loads
        )
        self._partitioner: Partitioner = partitioner or DefaultPartitioner(
            self._sticky, ignore_keys=config.partitioner_ignore_keys
        )
        self._keyed_default = partitioner is None and not config.partitioner_ignore_keys
        self._key_hashes = KeyHashes()
        self._default_partitioner = partitioner is None
        # send() reads and counts the sticky choice itself: see the module docstring.
        self._sticky_states, self._sticky_bytes = self._sticky.states, self._sticky.batch_size
        # Lanes only where nothing per record is needed beyond the append itself.
        self._lanes_allowed = (
            partitioner is None and not self._serializing and config.transactional_id is None
        )
        self._lanes: dict[str, Lane] = {}
        self._encoder = records_encoder(Codec[config.compression_type.upper()])
        self._sender: Sender | None = None
        self._metadata: MetadataManager | None = None
        self._snap: ClusterSnapshot | None = None
        self._topics: dict[str, TopicInfo] = {}
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
            runtime.metadata.on_update.append(self._drop_lanes)  # lanes end with their snapshot
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
        self._drop_lanes()
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

    async def _topic(self, topic: str) -> TopicInfo:
        metadata = self._require()
        snapshot = metadata.snapshot
        if snapshot is not self._snap:
            self._snap = snapshot
            self._topics.clear()
            self._sticky.invalidate()
            self._drop_lanes()
        cached = self._topics.get(topic)
        if cached is not None:
            return cached
        validate_topic(topic)
        info = snapshot.topics.get(topic)
        if info is None:
            snapshot = await metadata.wait_for_topics([topic], self.config.max_block_ms)
            info = snapshot.topics[topic]
        ids = tuple(p.partition for p in info.partitions)
        live = tuple(p.partition for p in info.partitions if p.leader >= 0)
        tps = tuple((topic, i) for i in range(len(ids)))
        entry = self._topics[topic] = TopicInfo(len(ids), ids, live, tps)
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
        lane = self._lanes.get(topic)
        if (lane is not None and key is None and type(value) is bytes and partition is None
                and timestamp_ms is None and not headers):  # fmt: skip
            # The fast path (module docstring): a settled lane's credit refuses all.
            credit = lane.credit - RECORD_OVERHEAD - len(value)
            if credit >= 0:
                ts = _time_ns() // 1_000_000
                if ts != lane.timestamp:
                    lane.restamp(ts)
                lane.credit = credit
                values = lane.values
                values.append(value)
                return DeliveryFuture(lane.outcome, lane.base + len(values), ts)
        sender, metadata = self._sender, self._metadata
        if sender is None or metadata is None or self._closed or sender.fatal_error is not None:
            metadata = self._require()
            assert sender is not None
        if self._serializing or type(value) is not bytes or not (key is None or type(key) is bytes):
            key, value = self._serialize(key, value)
        headers = check_headers(headers) if headers else ()
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
            elif key is not None and self._keyed_default:  # murmur2, as the Java client
                partition = self._key_hashes.partition(key, tinfo.size)
            else:
                partition = self._choose_checked(topic, key, tinfo)
        elif type(partition) is not int or not 0 <= partition < tinfo.size:
            raise ValueError(f"partition {partition!r} out of range for {topic!r} ({tinfo.size})")
        if (len(value) if value else 0) + (len(key) if key else 0) > self._size_guard:
            self._check_size(key, value, headers)
        tp = tinfo.tps[partition]
        if self._txn is not None:
            self._txn.add_partition(tp)  # raises outside a transaction
        ts = _time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
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
                self._drop_lane(topic)
            elif (self._lanes_allowed and key is None and value is not None and not headers
                    and timestamp_ms is None and not self._closed):  # fmt: skip
                # Only for records of the fast path's kind: a workload of others would
                # open and settle a lane per record for nothing.
                self._open_lane(topic, tp, sticky, ts)
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
    ) -> Sequence[DeliveryFuture]:
        """Queue many records for ``topic``; returns their futures in order.

        Items are values, or :class:`ProducerRecord` for per-record keys, partitions,
        timestamps or headers (the keyword arguments are the defaults for the others).
        Every item is validated before any is queued. The result is a list, or for
        plain values a :class:`~kclient.producer.delivery.DeliveryFutures` sequence
        that makes each future when it is read.
        """
        self._require()
        tinfo = await self._topic(topic)
        self._drop_lane(topic)  # the sticky choice may move here: send re-checks it
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        items = values_or_records if type(values_or_records) is list else list(values_or_records)
        if bulk_ok(self, items, key, partition):
            default_headers = check_headers(headers) if headers else ()
            return await append_bulk(self, topic, tinfo, items, key, timestamp_ms, default_headers)
        prepared = prepare_many(self, tinfo, items, key, partition, timestamp_ms, headers)
        return await append_many(self, topic, tinfo, prepared)

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

    def _open_lane(self, topic: str, tp: tuple[str, int], sticky: StickyState,
                   timestamp: int) -> None:  # fmt: skip
        """Let the next keyless records of ``topic`` take ``send``'s fast path, unless
        a fatal error or waiting senders (FIFO) forbid it."""
        self._drop_lane(topic)
        sender = self._sender
        if self._blocked or sender is None or sender.fatal_error is not None or self._snap is None:
            return
        lane = self._acc.open_lane(tp, sticky, self._sticky_bytes - sticky.produced,
                                   self._size_guard, timestamp)  # fmt: skip
        if lane is not None:
            self._lanes[topic] = lane

    def _drop_lane(self, topic: str) -> None:
        lane = self._lanes.pop(topic, None)
        if lane is not None:
            lane.settle()

    def _drop_lanes(self) -> None:
        """Settle and forget every lane: the next records take the general path."""
        lanes, self._lanes = self._lanes, {}
        for lane in lanes.values():
            lane.settle()

    def _choose(self, topic: str, key: bytes | None, tinfo: TopicInfo) -> int:
        if key is not None and self._keyed_default:
            return self._key_hashes.partition(key, tinfo.size)
        return self._partitioner(topic, key, tinfo.all, tinfo.available)

    def _serialize(self, key: Any, value: Any) -> tuple[bytes | None, bytes | None]:
        if self._ks is not None:
            key = self._ks(key)
        if self._vs is not None:
            value = self._vs(value)
        if type(value) is not bytes and value is not None:
            value = as_bytes(value, "value")
        if type(key) is not bytes and key is not None:
            key = as_bytes(key, "key")
        return key, value

    def _choose_checked(self, topic: str, key: bytes | None, tinfo: TopicInfo) -> int:
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
        self._drop_lanes()  # FIFO: later senders must queue behind this one
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
