"""The bulk encoding path of :class:`~protocol.records.batch.BatchBuilder`.

``BatchBuilder.extend`` lands here. Kept apart from ``batch_encode.py`` so each stays
a readable size; this module works on the builder's private state on purpose, as a
method body would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

from protocol.records.record import ENCODED_VARINT, NULL_LENGTH, encode_headers, encode_varint

if TYPE_CHECKING:
    from protocol.records.batch import BatchBuilder

__all__ = ["extend_builder"]

_VARINT_CACHE = len(ENCODED_VARINT)
_Bytes = bytes | bytearray | memoryview
_Headers = Sequence[tuple[str, _Bytes | None]]


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)  # snapshot: the caller may reuse its buffer
    raise TypeError(f"record {what} must be bytes or None, not {type(data).__name__}")


def extend_builder(
    self: BatchBuilder, records: Iterable[tuple[int, _Bytes | None, _Bytes | None, _Headers]]
) -> None:
    """``BatchBuilder.append`` for many ``(timestamp, key, value, headers)`` records:
    the same bytes, but the builder's state lives in locals for the whole loop
    (per-record calls and attribute traffic were most of the producer's encoding
    cost)."""
    if type(records) is list and _extend_uniform(self, records):
        return
    enc, parts = ENCODED_VARINT, self._parts
    count, size, base, max_ts = self._count, self._size, self._base_ts, self._max_ts
    # Keyless, header-less records differ only in the offset delta once their
    # timestamp delta and value length match: the bytes before and after the
    # delta are made once per such shape (int key: delta, value length, delta
    # width) and reused, leaving a dict lookup and one tuple per record.
    shapes: dict[int, tuple[bytes, bytes, int]] = {}
    try:
        for timestamp, key, value, headers in records:
            if not count:
                base = max_ts = timestamp  # Java's choice, as in append()
            elif timestamp > max_ts:
                max_ts = timestamp
            delta = timestamp - base
            od = enc[count] if count < _VARINT_CACHE else encode_varint(count)
            if key is None and not headers and type(value) is bytes:
                vlen = len(value)
                if 0 <= delta < _VARINT_CACHE and vlen < _VARINT_CACHE:
                    shape_key = (delta << 16 | vlen) << 2 | len(od)
                    shape = shapes.get(shape_key)
                    if shape is None:
                        shape = shapes[shape_key] = _keyless_shape(enc[delta], len(od), vlen)
                    pre, post, rsize = shape
                    parts += (pre, od, post, value, b"\x00")
                    size += rsize
                    count += 1
                    continue
            record = _record_parts(delta, od, key, value, headers)
            parts += record
            size += sum(map(len, record))
            count += 1
    finally:  # a bad record mid-way leaves the builder holding the records before it
        self._count, self._size, self._base_ts, self._max_ts = count, size, base, max_ts


def _extend_uniform(self: BatchBuilder, records: list[tuple[int, Any, Any, Any]]) -> bool:
    """extend_builder() for the producer's usual batch: keyless, header-less records with
    one timestamp and one value length (send_many; send loops within a
    millisecond). Every check and the whole encoding run in C (zip, count,
    map, chain): the records differ only in their offset deltas, which are
    slices of the varint cache. False (nothing done) for any other batch."""
    n, count = len(records), self._count
    if not n or count + n > _VARINT_CACHE:
        return False
    stamps, keys, values, headers = zip(*records, strict=True)
    timestamp = stamps[0]
    if (stamps.count(timestamp) != n or keys.count(None) != n or headers.count(()) != n
            or set(map(type, values)) != {bytes}):  # fmt: skip
        return False
    lengths = set(map(len, values))
    base = timestamp if not count else self._base_ts
    delta = timestamp - base
    if len(lengths) != 1 or not 0 <= delta < _VARINT_CACHE:
        return False
    vlen = lengths.pop()
    if not count:
        self._base_ts = self._max_ts = timestamp
    elif timestamp > self._max_ts:
        self._max_ts = timestamp
    tsd, stop, offset = ENCODED_VARINT[delta], count + n, 0
    for width, end in ((1, 64), (2, 8192), (3, _VARINT_CACHE)):  # offset delta widths
        if count >= end:
            continue
        upto = min(end, stop)
        m = upto - count
        pre, post, rsize = _keyless_shape(tsd, width, vlen)
        pieces = zip(repeat(pre, m), ENCODED_VARINT[count:upto], repeat(post, m),
                     values[offset:offset + m], repeat(b"\x00", m), strict=True)  # fmt: skip
        self._parts += chain.from_iterable(pieces)
        self._size += m * rsize
        count, offset = upto, offset + m
        if count == stop:
            break
    self._count = count
    return True


def _record_parts(
    delta: int, od: bytes, key: _Bytes | None, value: _Bytes | None, headers: _Headers
) -> tuple[bytes, ...]:
    """The nine pieces of any other record (keyed, with headers, null value...)."""
    enc = ENCODED_VARINT
    tsd = enc[delta] if 0 <= delta < _VARINT_CACHE else encode_varint(delta)
    if key is None:
        kl, key = NULL_LENGTH, b""
    else:
        if type(key) is not bytes:
            key = _as_bytes(key, "key")
        kl = encode_varint(len(key))
    if value is None:
        vl, value = NULL_LENGTH, b""
    else:
        if type(value) is not bytes:
            value = _as_bytes(value, "value")
        vl = encode_varint(len(value))
    hb = encode_headers(headers) if headers else b"\x00"
    body = 1 + len(tsd) + len(od) + len(kl) + len(key) + len(vl) + len(value) + len(hb)
    return (encode_varint(body), b"\x00", tsd, od, kl, key, vl, value, hb)


def _keyless_shape(tsd: bytes, od_len: int, vlen: int) -> tuple[bytes, bytes, int]:
    """(length + attributes + timestamp delta, null key + value length, record size)
    of a keyless, header-less record: the pieces around its offset delta."""
    vl = encode_varint(vlen)
    body = 1 + len(tsd) + od_len + len(NULL_LENGTH) + len(vl) + vlen + 1
    lb = encode_varint(body)
    return lb + b"\x00" + tsd, NULL_LENGTH + vl, len(lb) + body
