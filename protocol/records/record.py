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
NamedTuples built with ``tuple.__new__`` (no ``__init__`` call). One loop
(:func:`_decode`) serves both :func:`decode_records` and the consumer's
:func:`decode_records_into`, which hands runs of same-shaped records to the
column-wise decoder in ``_runs.py``. Any
inconsistency (a length that runs past the record, a record that runs past
the section, a count that disagrees with the bytes) is a
:class:`~protocol._errors_base.CorruptRecordError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from functools import partial
from itertools import repeat
from typing import Any, Final, NamedTuple, TypeVar, cast

from protocol._errors_base import CorruptRecordError, EncodeError
from protocol.records._runs import RUN_MIN, ZZ2, Shape, take_run

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
_ZZ1: Final[list[int]] = ZZ2[:128]
_ZZ2: Final[list[int]] = ZZ2


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


#: ``make(*prefix, offset, timestamp, timestamp_type, key, value, headers, leader_epoch,
#: key_size, value_size)`` -> the caller's record object; sizes are the wire lengths (-1
#: for null). ``prefix`` holds the caller's constant leading arguments (a consumer passes
#: topic and partition), so a record class whose constructor takes its fields in this
#: order is itself a factory and no Python-level wrapper runs per record.
RecordFactory = Callable[..., _T]


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
    batches carry the broker's time in the batch header only). Record by record, with
    no column-wise runs: this is also the reference the run decoder is tested against.
    """
    out: list[Record] = []
    _decode(out, Record, True, buf, pos, end, count, base_offset, base_timestamp, 0, -1,
            fixed_timestamp, ())  # fmt: skip
    return out


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

    Records that share a shape (typical of one producer's batch) are decoded in runs,
    column-wise (``protocol/records/_runs.py``); any record that does not fit a run goes
    through the per-record loop, which does all the checking. On an error ``out`` may
    hold some of the batch's records; callers decode a batch into a fresh list.
    """
    _decode(out, make, False, buf, pos, end, count, base_offset, base_timestamp,
            timestamp_type, leader_epoch, fixed_timestamp, prefix)  # fmt: skip


def _width(buf: bytes, at: int) -> int:
    """Bytes of the (already decoded, so well-formed) varint at ``at``."""
    width = 1
    while buf[at + width - 1] >= 0x80:
        width += 1
    return width


def _shape(
    buf: bytes, start: int, len_w: int, size: int, klen: int, vlen: int, offset_delta: int
) -> Shape:
    """Field positions (relative to ``start``) of the record the loop just decoded, for
    :func:`~protocol.records._runs.take_run`; re-derived here so that the loop does not
    keep them for every record."""
    ts_at = len_w + 1  # after the length and the attributes byte
    off_at = ts_at + _width(buf, start + ts_at)
    klen_at = off_at + _width(buf, start + off_at)
    vlen_at = klen_at + _width(buf, start + klen_at) + max(klen, 0)
    value_at = vlen_at + _width(buf, start + vlen_at)
    return (len_w, ts_at, off_at, klen_at, vlen_at, value_at, size, klen, vlen, offset_delta)


def _decode(
    out: list[Any],
    make: Callable[..., Any],
    packed: bool,
    buf: bytes,
    pos: int,
    end: int,
    count: int,
    base_offset: int,
    base_timestamp: int,
    timestamp_type: int,
    leader_epoch: int,
    fixed_timestamp: int | None,
    prefix: tuple[object, ...],
) -> None:
    """The one record loop, appending to ``out`` per record:

    * ``packed``: ``tuple.__new__(make, (offset, timestamp, key, value, headers))``
      (``make`` is a tuple subclass such as :class:`Record`), record by record only;
    * otherwise ``make(*prefix, ...)`` (:data:`RecordFactory`), handing runs of
      same-shaped records to :func:`~protocol.records._runs.take_run`.
    """
    if count < 0 or count > (end - pos) // MIN_RECORD_SIZE:
        raise _corrupt(f"record count {count} cannot fit in {end - pos} bytes")
    zz = _ZZ2
    tail = _varint_tail
    new = tuple.__new__
    append = out.append
    make_one = partial(make, *prefix) if prefix else make  # C-level; ~30 ns per call
    record_cls = cast("type[tuple[Any, ...]]", make)
    constants = [repeat(arg) for arg in prefix]
    no_seq3 = [False]  # set once a 3-byte-delta run turned out not to be consecutive
    no_headers: tuple[()] = ()
    remaining = count
    try:
        while remaining:
            start = pos
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
            # A key or value slice that ran past the record (or past the buffer,
            # where slicing silently clamps) shows up here.
            if pos != rec_end:
                raise _corrupt("record fields disagree with the record length")
            remaining -= 1
            if packed:
                append(new(record_cls, (base_offset + offset_delta,
                    base_timestamp + ts_delta if fixed_timestamp is None else fixed_timestamp,
                    key, value, headers)))  # fmt: skip
                continue
            append(make_one(base_offset + offset_delta,
                base_timestamp + ts_delta if fixed_timestamp is None else fixed_timestamp,
                timestamp_type, key, value, headers, leader_epoch, klen, vlen))  # fmt: skip
            # Then, if it is there, a run of records shaped exactly like this one. (A
            # template with headers, even an empty list written as a non-canonical
            # varint, never starts a run: only a one-byte zero count is compared.) The
            # cheap look at the next record's length keeps mixed data at full speed.
            len_w = rec_end - length - start
            if (
                remaining >= RUN_MIN
                and headers is no_headers
                and buf[pos : pos + len_w] == buf[start : start + len_w]
            ):
                shape = _shape(buf, start, len_w, pos - start, klen, vlen, offset_delta)
                taken = take_run(
                    out, make, constants, buf, start, end, remaining, shape, base_offset,
                    base_timestamp, fixed_timestamp, timestamp_type, leader_epoch, no_seq3,
                )  # fmt: skip
                pos += taken * (pos - start)
                remaining -= taken
    except IndexError:
        raise _corrupt("record runs past the end of the batch") from None
    if pos != end:
        raise _corrupt(f"{end - pos} bytes left after the declared {count} records")
