"""Records inside a v2 record batch: encoding pieces and the decode loop.

Wire layout of one record (all varints zig-zag, see protocol.primitives)::

    length          varint   bytes that follow, up to the end of the headers
    attributes      int8     unused, written as 0
    timestampDelta  varlong  timestamp - batch baseTimestamp
    offsetDelta     varint   offset - batch baseOffset
    keyLength       varint   -1 for a null key
    key             bytes
    valueLength     varint   -1 for a null value
    value           bytes
    headersCount    varint
    headers         [headerKeyLength varint, headerKey UTF-8,
                     headerValueLength varint (-1 = null), headerValue]

The smallest record is 7 bytes (a 1-byte length and six 1-byte fields), which
bounds how many records a section of ``n`` bytes can hold.

This module is the hot path of both producer and consumer, so it trades a
little repetition for speed: varints of small values come from lookup
tables, the decode loop inlines 1- and 2-byte varints, and records are
NamedTuples built with ``tuple.__new__`` (no ``__init__`` call). Any
inconsistency (a length that runs past the record, a record that runs past
the section, a count that disagrees with the bytes) is a
:class:`~protocol._errors_base.CorruptRecordError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from functools import partial
from itertools import repeat
from operator import add, mul
from typing import Final, NamedTuple, TypeVar

from protocol._errors_base import CorruptRecordError, EncodeError

__all__ = [
    "MIN_RECORD_SIZE",
    "Header",
    "Record",
    "RecordFactory",
    "TimestampType",
    "decode_records",
    "decode_records_into",
    "encode_headers",
    "encode_varint",
    "record_size_upper_bound",
]

Header = tuple[str, "bytes | None"]
_T = TypeVar("_T")

MIN_RECORD_SIZE: Final = 7


class TimestampType(IntEnum):
    NO_TIMESTAMP_TYPE = -1  # magic 0 messages have no timestamp
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class Record(NamedTuple):
    """One decoded record. ``headers`` is ``()`` when the record has none."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]


# -- encoding ------------------------------------------------------------------

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def _encode_zigzag_slow(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise EncodeError(f"{value} does not fit a varlong")
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while raw > 0x7F:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


# Encoded zig-zag varints for 0.._CACHE-1: covers offset deltas of batches up to
# 16k records, record lengths up to 16 KiB and small timestamp deltas.
_CACHE: Final = 1 << 14
# (Zig-zag of a non-negative n is 2n, so 2n < 128 takes one byte, 2n < 16384 two.)
ENCODED_VARINT: Final[list[bytes]] = [
    bytes((2 * i,))
    if i < 64
    else bytes(((2 * i) & 0x7F | 0x80, (2 * i) >> 7))
    if i < 8192
    else bytes(((2 * i) & 0x7F | 0x80, ((2 * i) >> 7) & 0x7F | 0x80, (2 * i) >> 14))
    for i in range(_CACHE)
]
NULL_LENGTH: Final = _encode_zigzag_slow(-1)


def encode_varint(value: int) -> bytes:
    """Zig-zag varint/varlong encoding of ``value``."""
    if 0 <= value < _CACHE:
        return ENCODED_VARINT[value]
    return _encode_zigzag_slow(value)


def encode_headers(headers: Sequence[tuple[str, bytes | bytearray | memoryview | None]]) -> bytes:
    """Encode a header list including its count prefix."""
    out = bytearray(encode_varint(len(headers)))
    for key, value in headers:
        if not isinstance(key, str):
            raise TypeError(f"header key must be str, not {type(key).__name__}")
        try:
            kb = key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"header key is not encodable as UTF-8: {exc.reason}") from None
        out += encode_varint(len(kb))
        out += kb
        if value is None:
            out += NULL_LENGTH
        else:
            out += encode_varint(len(value))
            out += value
    return bytes(out)


def record_size_upper_bound(
    key: bytes | bytearray | memoryview | None,
    value: bytes | bytearray | memoryview | None,
    headers: Sequence[tuple[str, bytes | bytearray | memoryview | None]] = (),
) -> int:
    """Bytes a record can take at most, whatever its offset and timestamp deltas."""
    # length 5 + attributes 1 + timestamp delta 10 + offset delta 5 + key/value
    # length 5 each + header count 5.
    size = 36 + (len(key) if key is not None else 0) + (len(value) if value is not None else 0)
    for hkey, hvalue in headers:
        size += 10 + len(hkey) * 4 + (len(hvalue) if hvalue is not None else 0)
    return size


# -- decoding ------------------------------------------------------------------

# Zig-zag decoding of one-byte varints, and of two-byte ones indexed by
# ``(b0 & 0x7f) | (b1 << 7)`` (the same table: a one-byte value is its own index).
_ZZ1: Final[list[int]] = [(b >> 1) ^ -(b & 1) for b in range(128)]
_ZZ2: Final[list[int]] = [(b >> 1) ^ -(b & 1) for b in range(1 << 14)]


def _corrupt(msg: str) -> CorruptRecordError:
    return CorruptRecordError(msg)


def _varint_tail(buf: bytes, pos: int, max_bytes: int) -> tuple[int, int]:
    """Decode a zig-zag varint of three or more bytes starting at ``pos``."""
    result = 0
    shift = 0
    for _ in range(max_bytes):
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise _corrupt(f"varint longer than {max_bytes} bytes at offset {pos}")


def _decode_headers(
    buf: bytes, pos: int, count: int, end: int
) -> tuple[list[tuple[str, bytes | None]], int]:
    # Each header takes at least two bytes (two 1-byte lengths).
    if count < 0 or count > (end - pos) // 2:
        raise _corrupt(f"record header count {count} does not fit the record")
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        b = buf[pos]
        if b < 0x80:
            klen = _ZZ1[b]
            pos += 1
        else:
            klen, pos = _varint_tail(buf, pos, 5)
        if klen < 0 or pos + klen > end:
            raise _corrupt(f"header key length {klen} does not fit the record")
        try:
            hkey = buf[pos : pos + klen].decode("utf-8")
        except UnicodeDecodeError:
            raise _corrupt("header key is not valid UTF-8") from None
        pos += klen
        b = buf[pos]
        if b < 0x80:
            vlen = _ZZ1[b]
            pos += 1
        else:
            vlen, pos = _varint_tail(buf, pos, 5)
        if vlen < 0:
            if vlen != -1:
                raise _corrupt(f"negative header value length {vlen}")
            headers.append((hkey, None))
        else:
            if pos + vlen > end:
                raise _corrupt(f"header value length {vlen} does not fit the record")
            headers.append((hkey, buf[pos : pos + vlen]))
            pos += vlen
    return headers, pos


def decode_records(
    buf: bytes,
    pos: int,
    end: int,
    count: int,
    base_offset: int,
    base_timestamp: int,
    fixed_timestamp: int | None = None,
) -> list[Record]:
    """Decode exactly ``count`` records that fill ``buf[pos:end]``.

    ``fixed_timestamp`` replaces every record's timestamp (log-append-time
    batches carry the broker's time in the batch header only).
    """
    if count < 0 or count > (end - pos) // MIN_RECORD_SIZE:
        raise _corrupt(f"record count {count} cannot fit in {end - pos} bytes")
    zz = _ZZ2
    tail = _varint_tail
    new = tuple.__new__
    record_cls = Record
    no_headers: tuple[()] = ()
    out: list[Record] = []
    append = out.append
    try:
        for _ in range(count):
            # Each varint: 1 byte via table, 2 bytes inline, longer via _varint_tail.
            b = buf[pos]
            if b < 0x80:
                length = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    length = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    length, pos = tail(buf, pos, 5)
            rec_end = pos + length
            if length < 6 or rec_end > end:
                raise _corrupt(f"record length {length} does not fit the batch")
            pos += 1  # attributes: unused
            b = buf[pos]
            if b < 0x80:
                ts_delta = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    ts_delta = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    ts_delta, pos = tail(buf, pos, 10)
            b = buf[pos]
            if b < 0x80:
                offset_delta = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    offset_delta = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    offset_delta, pos = tail(buf, pos, 5)
            b = buf[pos]
            if b < 0x80:
                klen = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    klen = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    klen, pos = tail(buf, pos, 5)
            key: bytes | None
            if klen >= 0:
                key = buf[pos : pos + klen]
                pos += klen
            elif klen == -1:
                key = None
            else:
                raise _corrupt(f"negative key length {klen}")
            b = buf[pos]
            if b < 0x80:
                vlen = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    vlen = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    vlen, pos = tail(buf, pos, 5)
            value: bytes | None
            if vlen >= 0:
                value = buf[pos : pos + vlen]
                pos += vlen
            elif vlen == -1:
                value = None
            else:
                raise _corrupt(f"negative value length {vlen}")
            b = buf[pos]
            headers: Sequence[tuple[str, bytes | None]]
            if b == 0:
                headers = no_headers
                pos += 1
            else:
                if b < 0x80:
                    hcount = zz[b]
                    pos += 1
                else:
                    hcount, pos = tail(buf, pos, 5)
                headers, pos = _decode_headers(buf, pos, hcount, rec_end)
            # A key or value slice that ran past the record (or past the buffer,
            # where slicing silently clamps) shows up here.
            if pos != rec_end:
                raise _corrupt("record fields disagree with the record length")
            append(
                new(
                    record_cls,
                    (
                        base_offset + offset_delta,
                        base_timestamp + ts_delta if fixed_timestamp is None else fixed_timestamp,
                        key,
                        value,
                        headers,
                    ),
                )
            )
    except IndexError:
        raise _corrupt("record runs past the end of the batch") from None
    if pos != end:
        raise _corrupt(f"{end - pos} bytes left after the declared {count} records")
    return out


# -- decoding straight into the caller's record objects (consumer hot path) ----------

#: ``make(*prefix, offset, timestamp, timestamp_type, key, value, headers, leader_epoch,
#: key_size, value_size)`` -> the caller's record object; sizes are the wire lengths (-1
#: for null). ``prefix`` holds the caller's constant leading arguments (a consumer passes
#: topic and partition), so a record class whose constructor takes its fields in this
#: order is itself a factory and no Python-level wrapper runs per record.
RecordFactory = Callable[..., _T]

# Runs: a record followed by enough records of exactly its shape are decoded column-wise.
_RUN_MIN: Final = 8
_LOW_BYTES: Final = bytes(range(0x80))  # a varint's last byte
_HIGH_BYTES: Final = bytes(range(0x80, 0x100))  # a varint's continuation byte
# Zig-zag value of a two-byte varint (b0 >= 0x80, b1 < 0x80) indexed by b0 + 128 * b1.
_ZZ2_AT: Final[list[int]] = [0] * 0x80 + _ZZ2
# Offset deltas 0, 1, 2, ... as encoded: one byte each below 64, two bytes below 8192.
_SEQ1: Final = bytes(range(0, 128, 2))
_SEQ2_LO: Final = bytes(((2 * d) & 0x7F) | 0x80 for d in range(8192))
_SEQ2_HI: Final = bytes((2 * d) >> 7 for d in range(8192))
# Middle byte of three-byte deltas, by delta % 8192 (the low byte is _SEQ2_LO's).
_SEQ3_MID: Final = bytes(((2 * d) >> 7) & 0x7F | 0x80 for d in range(8192))


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
        if run < _RUN_MIN:
            return 0
    return run


def _varint_column(buf: bytes, at: int, stop: int, size: int, width: int) -> Iterable[int]:
    """Zig-zag values of a 1- or 2-byte varint sitting at ``at`` in every record."""
    if width == 1:
        return map(_ZZ2.__getitem__, buf[at:stop:size])
    return map(
        _ZZ2_AT.__getitem__,
        map(add, buf[at:stop:size], map(mul, buf[at + 1 : stop : size], repeat(0x80))),
    )


def decode_records_into(
    out: list[_T],
    make: RecordFactory[_T],
    buf: bytes,
    pos: int,
    end: int,
    count: int,
    base_offset: int,
    base_timestamp: int,
    timestamp_type: int,
    leader_epoch: int,
    fixed_timestamp: int | None = None,
    prefix: tuple[object, ...] = (),
) -> None:
    """Decode exactly ``count`` records filling ``buf[pos:end]``, appending
    ``make(*prefix, ...)`` (see :data:`RecordFactory`) for each to ``out``: the same
    records and the same errors as :func:`decode_records`, without an intermediate tuple
    per record.

    Records that share a shape (same total size, key and value lengths, no headers,
    one- or two-byte timestamp/offset deltas: typical of one producer's batch) are
    decoded in runs: the bytes that must agree are compared for the whole run at once
    through strided slices, and the columns (offsets, timestamps, values) are built by
    C-level ``map``/``range`` instead of a Python loop per record. Any record that does
    not fit the run goes through the per-record loop, which does all the checking.
    On an error ``out`` may hold some of the batch's records; callers decode a batch
    into a fresh list.
    """
    if count < 0 or count > (end - pos) // MIN_RECORD_SIZE:
        raise _corrupt(f"record count {count} cannot fit in {end - pos} bytes")
    zz = _ZZ2
    tail = _varint_tail
    append = out.append
    extend = out.extend
    make_one = partial(make, *prefix) if prefix else make  # C-level; ~30 ns per call
    constants = [repeat(arg) for arg in prefix]
    no_seq3 = False
    no_headers: tuple[()] = ()
    remaining = count
    try:
        while remaining:
            start = pos
            # -- one record, field by field (as decode_records) --------------------------
            b = buf[pos]
            if b < 0x80:
                length = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    length = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    length, pos = tail(buf, pos, 5)
            rec_end = pos + length
            if length < 6 or rec_end > end:
                raise _corrupt(f"record length {length} does not fit the batch")
            len_w = pos - start
            pos += 1  # attributes: unused
            ts_at = pos
            b = buf[pos]
            if b < 0x80:
                ts_delta = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    ts_delta = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    ts_delta, pos = tail(buf, pos, 10)
            off_at = pos
            b = buf[pos]
            if b < 0x80:
                offset_delta = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    offset_delta = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    offset_delta, pos = tail(buf, pos, 5)
            klen_at = pos
            b = buf[pos]
            if b < 0x80:
                klen = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    klen = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    klen, pos = tail(buf, pos, 5)
            key: bytes | None
            if klen >= 0:
                key = buf[pos : pos + klen]
                pos += klen
            elif klen == -1:
                key = None
            else:
                raise _corrupt(f"negative key length {klen}")
            vlen_at = pos
            b = buf[pos]
            if b < 0x80:
                vlen = zz[b]
                pos += 1
            else:
                b2 = buf[pos + 1]
                if b2 < 0x80:
                    vlen = zz[(b & 0x7F) | (b2 << 7)]
                    pos += 2
                else:
                    vlen, pos = tail(buf, pos, 5)
            value: bytes | None
            if vlen >= 0:
                value = buf[pos : pos + vlen]
                pos += vlen
            elif vlen == -1:
                value = None
            else:
                raise _corrupt(f"negative value length {vlen}")
            value_at = pos - (vlen if vlen > 0 else 0)
            headers: Sequence[tuple[str, bytes | None]]
            b = buf[pos]
            if b == 0:
                headers = no_headers
                pos += 1
            else:
                if b < 0x80:
                    hcount = zz[b]
                    pos += 1
                else:
                    hcount, pos = tail(buf, pos, 5)
                headers, pos = _decode_headers(buf, pos, hcount, rec_end)
            if pos != rec_end:
                raise _corrupt("record fields disagree with the record length")
            append(
                make_one(
                    base_offset + offset_delta,
                    base_timestamp + ts_delta if fixed_timestamp is None else fixed_timestamp,
                    timestamp_type,
                    key,
                    value,
                    headers,
                    leader_epoch,
                    klen,
                    vlen,
                )
            )
            remaining -= 1
            # -- then, if it is there, a run of records shaped exactly like this one -----
            # (A template with headers, even an empty list written as a non-canonical
            # varint, never starts a run: only a one-byte zero count is compared below.)
            if remaining < _RUN_MIN or headers is not no_headers:
                continue
            ts_w = off_at - ts_at
            off_w = klen_at - off_at
            if ts_w > 2 or off_w > 3 or vlen_at - klen_at - (klen if klen > 0 else 0) > 2:
                continue
            size = pos - start
            limit = min(remaining, (end - pos) // size)
            first = offset_delta + 1  # the next record's delta, if they are consecutive
            if off_w == 3:
                # Three-byte deltas (batches beyond 8192 records) are only taken when
                # consecutive, checked per 8192-record block (the top byte is constant).
                if no_seq3 or not 8192 <= first < 1 << 20:
                    continue
                limit = min(limit, 8192 - first % 8192)
            if limit < _RUN_MIN:
                continue
            # Bytes that must be equal in every record of the run: the length varint
            # (so every record is ``size`` bytes and they tile the section), the key and
            # value length varints and the zero header count. The varying deltas must
            # keep their width. Attributes are ignored, as above. Together these make
            # every field sit at the same place, so the per-record checks above hold.
            checks = [(rel, buf[start + rel : start + rel + 1]) for rel in range(len_w)]
            checks += [
                (rel, buf[start + rel : start + rel + 1])
                for rel in range(klen_at - start, vlen_at - start - max(klen, 0))
            ]
            checks += [
                (rel, buf[start + rel : start + rel + 1])
                for rel in range(vlen_at - start, value_at - start)
            ]
            checks.append((size - 1, b"\x00"))
            for at, w in ((ts_at, ts_w), (off_at, off_w)):
                for i in range(w - 1):
                    checks.append((at - start + i, _HIGH_BYTES))
                checks.append((at - start + w - 1, _LOW_BYTES))
            # Probe a few records first: data whose shape keeps changing costs a short
            # look per record, never a scan of the rest of the batch.
            probe = min(limit, 2 * _RUN_MIN)
            run = _run_length(buf, pos, size, probe, checks)
            if run == probe < limit:
                run = _run_length(buf, pos, size, limit, checks)
            if not run:
                continue
            stop = pos + run * size
            # Offsets: producers number records 0, 1, 2, ... so compare the encoded
            # deltas with that sequence at once; decode them one by one only if not.
            offsets: Iterable[int]
            rel = pos + (off_at - start)
            if off_w == 3:
                low = first % 8192
                if (
                    buf[rel:stop:size] == _SEQ2_LO[low : low + run]
                    and buf[rel + 1 : stop : size] == _SEQ3_MID[low : low + run]
                    and buf[rel + 2 : stop : size] == bytes((first >> 13,)) * run
                ):
                    offsets = range(base_offset + first, base_offset + first + run)
                else:
                    no_seq3 = True  # not consecutive: per record from here on
                    continue
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
                rel = pos + (ts_at - start)
                timestamps = map(
                    add, repeat(base_timestamp), _varint_column(buf, rel, stop, size, ts_w)
                )
            keys: Iterable[bytes | None]
            if klen < 0:
                keys = repeat(None)
            else:
                rel = pos + (vlen_at - start) - klen
                keys = map(
                    buf.__getitem__,
                    map(slice, range(rel, stop, size), range(rel + klen, stop + klen, size)),
                )
            values: Iterable[bytes | None]
            if vlen < 0:
                values = repeat(None)
            else:
                rel = pos + (value_at - start)
                values = map(
                    buf.__getitem__,
                    map(slice, range(rel, stop, size), range(rel + vlen, stop + vlen, size)),
                )
            extend(
                map(
                    make, *constants, offsets, timestamps, repeat(timestamp_type), keys, values,
                    repeat(no_headers), repeat(leader_epoch), repeat(klen), repeat(vlen),
                )
            )  # fmt: skip
            pos = stop
            remaining -= run
    except IndexError:
        raise _corrupt("record runs past the end of the batch") from None
    if pos != end:
        raise _corrupt(f"{end - pos} bytes left after the declared {count} records")
