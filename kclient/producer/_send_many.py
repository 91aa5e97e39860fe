"""``AsyncProducer.send_many``'s two paths, as functions of the producer.

Kept apart from producer.py so each stays a readable size; these functions work on
the producer's private state on purpose, as its methods would (the same arrangement
as ``_bulk.py`` for the accumulator).

* :func:`bulk_ok` / :func:`append_bulk`: plain bytes values with the default keyless
  choice. One ``append_values`` per sticky stint fills whole batches through zip/map
  runs; the futures come back as runs (:class:`DeliveryFutures`), made when read.
* :func:`prepare_many` / :func:`append_many`: anything else, validated and serialized
  first (so a bad item enqueues nothing), then appended record by record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from kclient.producer._inputs import ProducerRecord, TopicInfo, as_bytes, check_headers
from kclient.producer.batch import Headers
from kclient.producer.delivery import DeliveryFuture, DeliveryFutures

if TYPE_CHECKING:
    from kclient.producer.producer import AsyncProducer

__all__ = ["append_bulk", "append_many", "bulk_ok", "prepare_many"]


def prepare_many(
    producer: AsyncProducer,
    tinfo: TopicInfo,
    items: Iterable[Any],
    key: Any,
    partition: int | None,
    timestamp_ms: int,
    headers: Headers | None,
) -> list[tuple[Any, ...]]:
    """Validate and serialize every item: (key, value, partition|None, ts, headers)."""
    ks, vs, guard = producer._ks, producer._vs, producer._size_guard
    default_headers = check_headers(headers) if headers else ()
    if partition is not None and not 0 <= partition < tinfo.size:
        raise ValueError(f"partition {partition!r} out of range ({tinfo.size})")
    out: list[tuple[Any, ...]] = []
    append = out.append
    for item in items:
        if type(item) is ProducerRecord:
            out.append(_prepare_record(producer, tinfo, item, key, partition, timestamp_ms))
            continue
        k = key if ks is None else ks(key)
        v = item if vs is None else vs(item)
        if type(v) is not bytes and v is not None:
            v = as_bytes(v, "value")
        if type(k) is not bytes and k is not None:
            k = as_bytes(k, "key")
        if (len(v) if v else 0) + (len(k) if k else 0) > guard:
            producer._check_size(k, v, default_headers)
        append((k, v, partition, timestamp_ms, default_headers))
    return out


def _prepare_record(
    producer: AsyncProducer,
    tinfo: TopicInfo,
    rec: ProducerRecord,
    key: Any,
    partition: int | None,
    ts: int,
) -> tuple[Any, ...]:
    k = rec.key if rec.key is not None else key
    if producer._ks is not None:
        k = producer._ks(k)
    v = rec.value if producer._vs is None else producer._vs(rec.value)
    k, v = as_bytes(k, "key"), as_bytes(v, "value")
    h = check_headers(rec.headers) if rec.headers else ()
    p = rec.partition if rec.partition is not None else partition
    if p is not None and not 0 <= p < tinfo.size:
        raise ValueError(f"partition {p!r} out of range ({tinfo.size})")
    producer._check_size(k, v, h)
    return (k, v, p, rec.timestamp_ms if rec.timestamp_ms is not None else ts, h)


def bulk_ok(producer: AsyncProducer, items: list[Any], key: Any, partition: int | None) -> bool:
    """Whether ``send_many`` can fill batches a run of records at a time: plain
    bytes values, no serializers, one key the sticky partitioner ignores, no
    size near the limits. Everything else takes the per-record path."""
    if partition is not None or not producer._default_partitioner or producer._vs or producer._ks:
        return False
    if key is not None and (producer._keyed_default or type(key) is not bytes):
        return False
    # map/set/max run in C: a validation pass that costs next to nothing per record.
    if not items or set(map(type, items)) != {bytes}:
        return False
    return max(map(len, items)) + (len(key) if key else 0) <= producer._size_guard


async def append_bulk(
    producer: AsyncProducer,
    topic: str,
    tinfo: TopicInfo,
    values: list[bytes],
    key: bytes | None,
    ts: int,
    headers: Headers,
) -> DeliveryFutures:
    """send_many's bulk path: one ``append_values`` per sticky partition stint
    (the accumulator fills each batch with one zip/map run), the same batches,
    partition switches and futures as one ``send`` per value would give; the
    futures as runs, made when read (no object per record here)."""
    sender, sticky, append_values = producer._sender, producer._sticky, producer._acc.append_values
    assert sender is not None
    out = DeliveryFutures()
    i, n, wake = 0, len(values), False
    while i < n:
        state = sticky.state(topic, tinfo.all, tinfo.available)
        tp = tinfo.tps[state.partition]
        if producer._txn is not None:
            producer._txn.add_partition(tp)
        stop = i
        if not producer._blocked:  # others waiting for space go first (FIFO)
            budget = producer._sticky_bytes - state.produced
            stop, appended, woke = append_values(
                tp, ts, key, values, i, budget, headers, producer._now, out
            )
            wake = wake or woke
            state.produced += appended
            if state.produced >= producer._sticky_bytes:
                sticky.invalidate(topic)
        if stop == i:  # the buffer is full: wait for room, as send() does
            sender.wake()
            future, woke, size = await producer._append_waiting(tp, ts, key, values[i], headers)
            out.add(future)
            wake = wake or woke
            sticky.on_append(topic, state.partition, size)
            stop = i + 1
        i = stop
    if wake:
        sender.wake()
    await anyio.lowlevel.checkpoint()
    return out


async def append_many(
    producer: AsyncProducer, topic: str, tinfo: TopicInfo, prepared: Sequence[tuple[Any, ...]]
) -> list[DeliveryFuture]:
    acc_append, on_append = producer._acc.append, producer._sticky.on_append
    choose, now = producer._choose, producer._now()
    futures: list[DeliveryFuture] = []
    wake = False
    for k, v, p, ts, h in prepared:
        if p is None:
            p = choose(topic, k, tinfo)
        tp = (topic, p)
        if producer._txn is not None:
            producer._txn.add_partition(tp)
        result = None if producer._blocked else acc_append(tp, ts, k, v, h, now)
        if result is None:
            assert producer._sender is not None
            producer._sender.wake()
            result = await producer._append_waiting(tp, ts, k, v, h)
            now = producer._now()
        futures.append(result[0])
        wake = wake or result[1]
        on_append(topic, p, result[2])
    if wake:
        assert producer._sender is not None
        producer._sender.wake()
    await anyio.lowlevel.checkpoint()
    return futures
