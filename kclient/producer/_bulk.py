"""The append fast paths of :class:`~kclient.producer.accumulator.RecordAccumulator`.

``RecordAccumulator.append_value`` (the producer's ``send`` fast path; this function
is bound there as the method itself) and ``append_values`` (``send_many``) land here.
Kept apart from ``accumulator.py`` so each stays a readable size; these functions
work on the accumulator's private state on purpose, as its methods would (the same
arrangement as ``protocol/records/_extend.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from kclient.producer.batch import RECORD_OVERHEAD, DeliveryFuture, Headers, headers_size
from kclient.producer.delivery import DeliveryFutures

if TYPE_CHECKING:
    from kclient.producer.accumulator import PartitionHandle, RecordAccumulator
    from kclient.producer.batch import ProducerBatch

__all__ = ["ByteCounter", "append_value", "append_values"]


class ByteCounter(Protocol):
    """Where ``append_value`` counts appended bytes (the sticky partitioner's
    :class:`~kclient.producer.partitioner.StickyState`)."""

    produced: int


def append_value(
    acc: RecordAccumulator,
    part: PartitionHandle,
    timestamp: int,
    value: bytes,
    counter: ByteCounter,
) -> DeliveryFuture | None:
    """``RecordAccumulator.append`` for the commonest record (keyless, header-less,
    ``bytes`` value) when it joins the open batch without filling it: the producer's
    ``send`` fast path. ``part`` comes from ``RecordAccumulator.partition``. Adds the
    record's share of ``batch_size`` (what ``append`` returns as its size) to
    ``counter.produced``.

    Returns None, having done nothing, in every other case (no open batch, the record
    would fill it or overflow the buffer): the caller then takes the general
    ``append``, which starts batches, wakes the Sender and refuses when full. So no
    Sender wake-up is ever due from here.
    """
    batch = part.open
    if batch is None or not batch.appendable or (writer := batch.writer) is None:
        return None
    size = RECORD_OVERHEAD + len(value)
    new_size = batch.size + size
    capacity = batch.capacity
    used = acc._used + size
    if new_size >= capacity or used > acc._buffer_memory:
        return None
    index = batch.count
    writer.append_value(timestamp, value)
    batch.count = index + 1
    batch.size = new_size
    acc._used = used
    counter.produced += size if capacity == acc._batch_size else acc._wire_share(size, capacity)
    return DeliveryFuture(batch.outcome, index, timestamp)


def append_values(
    acc: RecordAccumulator,
    tp: tuple[str, int],
    timestamp: int,
    key: bytes | None,
    values: Sequence[bytes],
    start: int,
    budget: int,
    headers: Headers,
    now: float | Callable[[], float],
    out: DeliveryFutures,
) -> tuple[int, int, bool]:
    """``RecordAccumulator.append_values``: bulk ``append`` for ``send_many``.
    ``values[start:]`` (all bytes), one timestamp, key and headers, into ``tp``, until
    ``budget`` estimated bytes were appended (the record crossing it included, as the
    sticky partitioner counts) or the buffer has no room. Their futures go to ``out``
    (as runs). Returns (next index, bytes appended, wake_sender). Batches, sizes and
    futures are exactly what one ``append`` per record would make; only the per-record
    calls are gone."""
    fixed = RECORD_OVERHEAD + (len(key) if key is not None else 0)
    if headers:
        fixed += headers_size(headers)
    i, n, appended, wake = start, len(values), 0, False
    batch_size = acc._batch_size
    while i < n and appended < budget:
        size = fixed + len(values[i])
        if acc._used + size > acc._buffer_memory:
            acc._refuse(size)
            break
        part = acc._parts.get(tp)
        batch = part.open if part is not None else None
        if batch is None or not batch.appendable or batch.size + size > batch.capacity:
            future, batch = acc._append_new_batch(tp, timestamp, key, values[i], headers, size,
                                                  now)  # fmt: skip
            out.add(future)
            i, wake = i + 1, True
            capacity = batch.capacity
            appended += size if capacity == batch_size else acc._wire_share(size, capacity)
            continue
        # budget and appended count wire bytes (see _wire_share); _fill works in
        # uncompressed bytes, the same unless the batch is compressed.
        capacity, left = batch.capacity, budget - appended
        if capacity != batch_size:
            left = -(-left * capacity // batch_size)
        i, run = _fill(acc, batch, timestamp, key, values, i, fixed, left, headers, out)
        appended += run if capacity == batch_size else acc._wire_share(run, capacity)
        wake = wake or batch.size >= capacity
    return i, appended, wake


def _fill(acc: RecordAccumulator, batch: ProducerBatch, timestamp: int, key: bytes | None,
          values: Sequence[bytes], start: int, fixed: int, budget: int, headers: Headers,
          out: DeliveryFutures) -> tuple[int, int]:  # fmt: skip
    """Append the run of ``values[start:]`` that fits the open ``batch``, the
    buffer and ``budget``; returns (next index, bytes). Counting first and then
    encoding the run in one go keeps the per-record work in C."""
    room = min(batch.capacity - batch.size, acc._buffer_memory - acc._used)
    total, stop, end = 0, start, len(values)
    size = fixed + len(values[start])
    # Values of one length (the usual bulk call): the run's length is arithmetic,
    # checked in C; otherwise count record by record.
    limit = min(end - start, room // size, -(-budget // size)) if budget > 0 else 0
    if limit > 1 and len(set(map(len, values[start : start + limit]))) == 1:
        stop, total = start + limit, limit * size
    while stop < end and total < budget:
        size = fixed + len(values[stop])
        if total + size > room:
            break
        total += size
        stop += 1
    count, base, writer = stop - start, batch.count, batch.writer
    assert writer is not None  # an appendable batch was never built
    run = values[start:stop]
    if key is not None or headers or not writer.extend_values(timestamp, run):
        append = writer.append
        for value in run:
            append(timestamp, key, value, headers)
    batch.count = base + count
    out.add_run(batch.outcome, base, count, timestamp)
    batch.size += total
    acc._used += total
    return stop, total
