"""Column-wise decoding of runs of same-shaped records (the consumer's hot path).

A producer's batch is usually made of records of one shape: same total size, same key
and value lengths, no headers, one- or two-byte timestamp and offset deltas. Once the
record loop in ``record.py`` has decoded (and fully checked) one such record, it calls
:func:`take_run` to find how many of the following records have exactly that shape and
to build them all at once: the bytes that must agree are compared for the whole run
through strided slices, keys and values come out of one ``struct`` unpack per chunk of
records (C code slicing straight from the fetched buffer), and offsets and timestamps
are ``range``/``repeat``/``map`` objects. Nothing here runs Python code per record
except the caller's record factory.

Soundness: every record of a run has the template's length varint (so the records tile
the section and none runs past it), its key and value length varints and its zero
header count byte; its varying deltas keep the template's width. Together these put
every field at the template's place, so the checks the record loop made on the
template hold for every record of the run. Attributes are not compared (they are
unused, as in the record loop).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import add, mul
from typing import Any, Final

__all__ = ["RUN_MIN", "ZZ2", "Shape", "take_run"]

#: Zig-zag decoding of two-byte varints indexed by ``(b0 & 0x7f) | (b1 << 7)``; a one-byte
#: varint is its own index.
ZZ2: Final[list[int]] = [(b >> 1) ^ -(b & 1) for b in range(1 << 14)]

#: A run shorter than this is not worth its set-up; such records go one by one.
RUN_MIN: Final = 8

_LOW_BYTES: Final = bytes(range(0x80))  # a varint's last byte
_HIGH_BYTES: Final = bytes(range(0x80, 0x100))  # a varint's continuation byte
# Zig-zag value of a two-byte varint (b0 >= 0x80, b1 < 0x80) indexed by b0 + 128 * b1.
_ZZ2_AT: Final[list[int]] = [0] * 0x80 + ZZ2
# Offset deltas 0, 1, 2, ... as encoded: one byte each below 64, two bytes below 8192.
_SEQ1: Final = bytes(range(0, 128, 2))
_SEQ2_LO: Final = bytes(((2 * d) & 0x7F) | 0x80 for d in range(8192))
_SEQ2_HI: Final = bytes((2 * d) >> 7 for d in range(8192))
# Middle byte of three-byte deltas, by delta % 8192 (the low byte is _SEQ2_LO's).
_SEQ3_MID: Final = bytes(((2 * d) >> 7) & 0x7F | 0x80 for d in range(8192))

# Compiled unpackers by (one record's format, records per chunk). Chunks are powers of
# two up to _CHUNK_MAX, so one shape needs at most ten; the cache is dropped when it
# grows past _CACHE_MAX (shapes keep changing: a new one costs one compile, ~50 us).
_CHUNK_MAX: Final = 512
_CACHE_MAX: Final = 512
_UNPACKERS: dict[tuple[str, int], Callable[[Any, int], tuple[Any, ...]]] = {}


#: Where the fields of the template record sit, relative to its start, and its lengths:
#: (len_w, ts_at, off_at, klen_at, vlen_at, value_at, size, klen, vlen, offset_delta).
Shape = tuple[int, int, int, int, int, int, int, int, int, int]


def _run_length(
    buf: bytes, start: int, size: int, limit: int, checks: list[tuple[int, bytes]]
) -> int:
    """How many records from ``start`` (at most ``limit``, each ``size`` bytes) have every
    checked byte in its allowed set: one C-level strided slice + lstrip per checked byte."""
    stop = start + limit * size
    run = limit
    for rel, allowed in checks:
        column = buf[start + rel : stop : size]
        run = min(run, len(column) - len(column.lstrip(allowed)))
        if run < RUN_MIN:
            return 0
    return run


def _varint_column(buf: bytes, at: int, stop: int, size: int, width: int) -> Iterable[int]:
    """Zig-zag values of a 1- or 2-byte varint sitting at ``at`` in every record."""
    if width == 1:
        return map(ZZ2.__getitem__, buf[at:stop:size])
    return map(
        _ZZ2_AT.__getitem__,
        map(add, buf[at:stop:size], map(mul, buf[at + 1 : stop : size], repeat(0x80))),
    )


def _unpacker(fmt: str, n: int) -> Callable[[Any, int], tuple[Any, ...]]:
    unpack = _UNPACKERS.get((fmt, n))
    if unpack is None:
        if len(_UNPACKERS) >= _CACHE_MAX:
            _UNPACKERS.clear()
        unpack = _UNPACKERS[(fmt, n)] = struct.Struct("<" + fmt * n).unpack_from
    return unpack


def _slices(
    buf: bytes, pos: int, run: int, size: int, fields: Sequence[tuple[int, int]]
) -> list[Any]:
    """The ``(offset in record, length)`` byte fields of ``run`` records of ``size`` bytes
    from ``pos``, interleaved record by record, as new ``bytes`` objects."""
    fmt = ""
    cursor = 0
    for rel, length in fields:
        fmt += f"{rel - cursor}x{length}s"
        cursor = rel + length
    fmt += f"{size - cursor}x"
    out: list[Any] = []
    while run >= _CHUNK_MAX:
        out += _unpacker(fmt, _CHUNK_MAX)(buf, pos)
        pos += _CHUNK_MAX * size
        run -= _CHUNK_MAX
    chunk = _CHUNK_MAX >> 1
    while run:
        if run >= chunk:
            out += _unpacker(fmt, chunk)(buf, pos)
            pos += chunk * size
            run -= chunk
        chunk >>= 1
    return out


def _checks(buf: bytes, start: int, shape: Shape) -> list[tuple[int, bytes]]:
    """(offset in record, allowed byte values) of every byte a run's records must share
    with the template (see the module docstring)."""
    len_w, ts_at, off_at, klen_at, vlen_at, value_at, size, klen, _, _ = shape
    same = list(range(len_w))  # the length varint
    same += range(klen_at, vlen_at - max(klen, 0))  # key length varint
    same += range(vlen_at, value_at)  # value length varint
    checks = [(rel, buf[start + rel : start + rel + 1]) for rel in same]
    checks.append((size - 1, b"\x00"))  # zero header count
    for at, width in ((ts_at, off_at - ts_at), (off_at, klen_at - off_at)):
        checks += [(at + i, _HIGH_BYTES) for i in range(width - 1)]
        checks.append((at + width - 1, _LOW_BYTES))
    return checks


def take_run(
    out: list[Any],
    make: Callable[..., Any],
    constants: list[repeat[object]],
    buf: bytes,
    start: int,
    end: int,
    remaining: int,
    shape: Shape,
    base_offset: int,
    base_timestamp: int,
    fixed_timestamp: int | None,
    timestamp_type: int,
    leader_epoch: int,
    no_seq3: list[bool],
) -> int:
    """Append the records that follow the template record (which starts at ``start``)
    and share its shape, at most ``remaining``; returns how many were taken (0: none)."""
    _, ts_at, off_at, klen_at, vlen_at, value_at, size, klen, vlen, offset_delta = shape
    ts_w = off_at - ts_at
    off_w = klen_at - off_at
    if ts_w > 2 or off_w > 3 or vlen_at - klen_at - max(klen, 0) > 2:
        return 0
    pos = start + size
    limit = min(remaining, (end - pos) // size)
    first = offset_delta + 1  # the next record's delta, if they are consecutive
    if off_w == 3:
        # Three-byte deltas (batches beyond 8192 records) are only taken when
        # consecutive, checked per 8192-record block (the top byte is constant).
        if no_seq3[0] or not 8192 <= first < 1 << 20:
            return 0
        limit = min(limit, 8192 - first % 8192)
    if limit < RUN_MIN:
        return 0
    checks = _checks(buf, start, shape)
    # Probe a few records first: data whose shape keeps changing costs a short look per
    # record, never a scan of the rest of the batch.
    probe = min(limit, 2 * RUN_MIN)
    run = _run_length(buf, pos, size, probe, checks)
    if run == probe < limit:
        run = _run_length(buf, pos, size, limit, checks)
    if not run:
        return 0
    stop = pos + run * size
    # Offsets: producers number records 0, 1, 2, ... so compare the encoded deltas with
    # that sequence at once; decode them one by one only if not.
    offsets: Iterable[int]
    rel = pos + off_at
    if off_w == 3:
        low = first % 8192
        if not (
            buf[rel:stop:size] == _SEQ2_LO[low : low + run]
            and buf[rel + 1 : stop : size] == _SEQ3_MID[low : low + run]
            and buf[rel + 2 : stop : size] == bytes((first >> 13,)) * run
        ):
            no_seq3[0] = True  # not consecutive: one by one from here on
            return 0
        offsets = range(base_offset + first, base_offset + first + run)
    elif (
        off_w == 1
        and 0 <= first
        and first + run <= 64
        and buf[rel:stop:size] == _SEQ1[first : first + run]
    ) or (
        off_w == 2
        and 64 <= first
        and first + run <= 8192
        and buf[rel:stop:size] == _SEQ2_LO[first : first + run]
        and buf[rel + 1 : stop : size] == _SEQ2_HI[first : first + run]
    ):
        offsets = range(base_offset + first, base_offset + first + run)
    else:
        offsets = map(add, repeat(base_offset), _varint_column(buf, rel, stop, size, off_w))
    timestamps: Iterable[int]
    if fixed_timestamp is not None:
        timestamps = repeat(fixed_timestamp)
    else:
        rel = pos + ts_at
        low_col = buf[rel:stop:size]
        if low_col.count(low_col[0]) == run and (
            ts_w == 1 or buf[rel + 1 : stop : size].count(buf[rel + 1]) == run
        ):
            # One timestamp for the whole run (a batch written within one millisecond).
            delta = ZZ2[buf[rel]] if ts_w == 1 else _ZZ2_AT[buf[rel] + 0x80 * buf[rel + 1]]
            timestamps = repeat(base_timestamp + delta)
        else:
            timestamps = map(
                add, repeat(base_timestamp), _varint_column(buf, rel, stop, size, ts_w)
            )
    fields = []
    if klen >= 0:
        fields.append((vlen_at - klen, klen))
    if vlen >= 0:
        fields.append((value_at, vlen))
    columns = _slices(buf, pos, run, size, fields) if fields else []
    keys: Iterable[bytes | None] = repeat(None)
    values: Iterable[bytes | None] = repeat(None)
    if len(fields) == 2:
        keys, values = columns[0::2], columns[1::2]
    elif klen >= 0:
        keys = columns
    elif vlen >= 0:
        values = columns
    out.extend(
        map(
            make, *constants, offsets, timestamps, repeat(timestamp_type), keys, values,
            repeat(()), repeat(leader_epoch), repeat(klen), repeat(vlen),
        )
    )  # fmt: skip
    return run
