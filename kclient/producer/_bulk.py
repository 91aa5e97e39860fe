"""The bulk append of :class:`~kclient.producer.accumulator.RecordAccumulator`.

``RecordAccumulator.append_values`` (``send_many``; this function is bound there
as the method itself) lands here. Kept apart from ``accumulator.py`` so each stays
a readable size; these functions work on the accumulator's private state on
purpose, as its methods would (the same arrangement as ``_lane.py`` and
``protocol/records/_extend.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kclient.producer.batch import RECORD_OVERHEAD, Headers, headers_size
from kclient.producer.delivery import DeliveryFutures

if TYPE_CHECKING:
    from kclient.producer.accumulator import RecordAccumulator
    from kclient.producer.batch import ProducerBatch

__all__ = ["append_values"]


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
            acc.settle_lanes()  # their unused credit may make the room
            if acc._used + size > acc._buffer_memory:
                acc._refuse(size)
                break
        part = acc._parts.get(tp)
        batch = part.open if part is not None else None
        if batch is not None and batch.lane is not None:
            batch.lane.settle()
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
