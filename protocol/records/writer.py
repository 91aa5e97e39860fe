"""RecordsWriter: a v2 record batch encoded record by record into one buffer.

The producer's batches are written here as records arrive, instead of being
kept as per-record objects and encoded when sent: a queued record then costs
its encoded bytes and nothing else (no tuple, no reference to the caller's
value), which is what lets ``buffer_memory`` bound the producer's memory, and
sending a batch is one header pack (plus compression) over bytes that exist
already.

Layout: the buffer starts with :data:`RECORD_BATCH_OVERHEAD` reserved bytes
for the batch header, packed by :meth:`RecordsWriter.finish`; the records
follow. The records' bytes are the same as :class:`~protocol.records.BatchBuilder`
writes (offset delta = index, the first record's timestamp is the base).

Cost model: a keyless or keyed record without headers, whose timestamp delta is
small, is five or seven ``bytearray +=`` of pieces looked up in a module-level
cache of record "shapes" (everything but the offset delta, key and value bytes
depends only on the timestamp delta and the key/value lengths). Anything else
(headers, null values, huge deltas) is encoded field by field.
Bulk appends of equal-length keyless values of one timestamp (the producer's
``send_many``, and ``send``'s lanes once per millisecond) run as one ``join`` in C
over pieces laid out by three slice assignments (:meth:`RecordsWriter.extend_values`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from crc32c import crc32c

from protocol._errors_base import EncodeError
from protocol.compression import Codec, compress
from protocol.records._extend import _record_parts
from protocol.records.record import ENCODED_VARINT, NULL_LENGTH, encode_varint

__all__ = ["RECORD_BATCH_OVERHEAD", "RecordsWriter"]

RECORD_BATCH_OVERHEAD: Final = 61
_LOG_OVERHEAD: Final = 12  # baseOffset + batchLength
_CRC_START: Final = 21
_MAGIC: Final = 2
_TRANSACTIONAL_BIT: Final = 0x10
_HEAD: Final = struct.Struct(">qiibI")  # baseOffset .. crc (21 bytes)
_TAIL: Final = struct.Struct(">hiqqqhii")  # attributes .. recordsCount (40 bytes)
_CACHE: Final = len(ENCODED_VARINT)
_NO_HEADERS: Final = b"\x00"
_Bytes = bytes | bytearray | memoryview
_Headers = Sequence[tuple[str, _Bytes | None]]

# shape key -> (length + attributes + timestamp delta, key length or null key + value
# length, value length (keyed shapes only), record size minus key and value bytes).
# Bounded: a producer with wildly varying sizes just rebuilds entries.
_SHAPES: dict[int, tuple[bytes, bytes, bytes, int]] = {}
_MAX_SHAPES: Final = 4096


# value length -> for offset deltas 0, 1, ...: the offset delta varint, the null key
# and the value length varint, the bytes between a keyless record's timestamp delta
# and its value. Grown on demand up to the longest run seen; bounded by _MAX_OD_MIDS
# entries in all (about 40 bytes each), cleared and rebuilt beyond that.
_OD_MIDS: dict[int, list[bytes]] = {}
_MAX_OD_MIDS: Final = 1 << 15
_OD_WIDTHS: Final = ((1, 0, 64), (2, 64, 8192), (3, 8192, _CACHE))  # width, from, to


def _od_mids(vlen: int, upto: int) -> list[bytes]:
    """The cached pieces for ``vlen``, covering offset deltas below ``upto``."""
    mids = _OD_MIDS.get(vlen)
    if mids is not None and len(mids) >= upto:
        return mids
    if mids is None:
        mids = []
    if sum(map(len, _OD_MIDS.values())) + upto - len(mids) > _MAX_OD_MIDS:
        _OD_MIDS.clear()
    _OD_MIDS[vlen] = mids
    mid = NULL_LENGTH + encode_varint(vlen)
    mids.extend([od + mid for od in ENCODED_VARINT[len(mids) : upto]])
    return mids


def _shape(delta: int, od_len: int, klen: int, vlen: int) -> tuple[bytes, bytes, bytes, int]:
    """The constant pieces of a header-less record; ``klen`` -1 means a null key."""
    tsd = ENCODED_VARINT[delta]
    vl = encode_varint(vlen)
    if klen < 0:
        mid, after_key = NULL_LENGTH + vl, b""
        body = 1 + len(tsd) + od_len + len(NULL_LENGTH) + len(vl) + vlen + 1
    else:
        mid, after_key = encode_varint(klen), vl
        body = 1 + len(tsd) + od_len + len(mid) + klen + len(vl) + vlen + 1
    lb = encode_varint(body)
    fixed = len(lb) + body - vlen - max(klen, 0)
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
    return lb + b"\x00" + tsd, mid, after_key, fixed


class RecordsWriter:
    """One open v2 batch: append records, then :meth:`finish` once per send."""

    __slots__ = ("base_timestamp", "buf", "count", "max_timestamp")

    def __init__(self) -> None:
        self.buf = bytearray(RECORD_BATCH_OVERHEAD)
        self.count = 0
        self.base_timestamp = -1
        self.max_timestamp = -1

    @property
    def records_size(self) -> int:
        """Bytes of the encoded records (uncompressed), header excluded."""
        return len(self.buf) - RECORD_BATCH_OVERHEAD

    def append(
        self, timestamp: int, key: bytes | None, value: bytes | None, headers: _Headers
    ) -> int:
        """Encode one record at the end; returns its encoded size."""
        count = self.count
        if count:
            delta = timestamp - self.base_timestamp
            if timestamp > self.max_timestamp:
                self.max_timestamp = timestamp
        else:
            # Java's choice: the first record's timestamp is the base.
            self.base_timestamp = self.max_timestamp = timestamp
            delta = 0
        od = ENCODED_VARINT[count] if count < _CACHE else encode_varint(count)
        buf = self.buf
        if not headers and type(value) is bytes and 0 <= delta < _CACHE:
            vlen = len(value)
            if key is None:
                skey = (vlen << 16 | delta) << 3 | len(od)
                shape = _SHAPES.get(skey)
                if shape is None:
                    shape = _SHAPES[skey] = _shape(delta, len(od), -1, vlen)
                buf += shape[0]
                buf += od
                buf += shape[1]
                buf += value
                buf += _NO_HEADERS
                self.count = count + 1
                return shape[3] + vlen
            if type(key) is bytes:
                klen = len(key)
                skey = ((vlen << 32 | klen) << 16 | delta) << 3 | 4 | len(od)
                shape = _SHAPES.get(skey)
                if shape is None:
                    shape = _SHAPES[skey] = _shape(delta, len(od), klen, vlen)
                buf += shape[0]
                buf += od
                buf += shape[1]
                buf += key
                buf += shape[2]
                buf += value
                buf += _NO_HEADERS
                self.count = count + 1
                return shape[3] + klen + vlen
        record = b"".join(_record_parts(delta, od, key, value, headers))
        buf += record
        self.count = count + 1
        return len(record)

    def extend_values(self, timestamp: int, values: Sequence[bytes]) -> bool:
        """Append keyless, header-less records of one timestamp whose values (all
        bytes) share one length, in one C-level join; False (nothing written)
        when the run does not qualify and the caller must :meth:`append` each."""
        n, count = len(values), self.count
        if not n or count + n > _CACHE:
            return False
        lengths = set(map(len, values))
        base = timestamp if not count else self.base_timestamp
        delta = timestamp - base
        if len(lengths) != 1 or not 0 <= delta < _CACHE:
            return False
        vlen = lengths.pop()
        if not count:
            self.base_timestamp = self.max_timestamp = timestamp
        elif timestamp > self.max_timestamp:
            self.max_timestamp = timestamp
        stop = count + n
        # Record i is: length, attributes, timestamp delta (one "prefix" per offset delta
        # width), offset delta + null key + value length (cached per value length), the
        # value, and b"\x00" (no headers). Each prefix carries the previous record's
        # b"\x00" in front, so three slice assignments lay the run out for one join.
        parts = [b""] * (3 * n)
        for width, first, end in _OD_WIDTHS:
            lo, hi = max(first, count), min(end, stop)
            if lo < hi:
                pre = _shape(delta, width, -1, vlen)[0]
                parts[3 * (lo - count) : 3 * (hi - count) : 3] = [_NO_HEADERS + pre] * (hi - lo)
        parts[0] = parts[0][1:]  # the first record follows no record of this run
        parts[1::3] = _od_mids(vlen, stop)[count:stop]
        parts[2::3] = values
        buf = self.buf
        buf += b"".join(parts)
        buf += _NO_HEADERS
        self.count = stop
        return True

    def finish(
        self,
        *,
        codec: Codec | int = Codec.NONE,
        level: int | None = None,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
    ) -> bytes:
        """The batch's wire bytes (base offset 0, create-time timestamps).

        The records' size on the wire (compressed or not) is ``len(result) -
        RECORD_BATCH_OVERHEAD``. ``finish`` may be called again (another sequence,
        say); appending after it is allowed too.
        """
        count = self.count
        if not count:
            raise EncodeError("a record batch needs at least one record")
        buf = self.buf
        attributes = codec | (_TRANSACTIONAL_BIT if is_transactional else 0)
        try:
            tail = _TAIL.pack(attributes, count - 1, self.base_timestamp, self.max_timestamp,
                              producer_id, producer_epoch, base_sequence, count)  # fmt: skip
            if codec == Codec.NONE:
                records = memoryview(buf)[RECORD_BATCH_OVERHEAD:]
                head = _HEAD.pack(0, len(buf) - _LOG_OVERHEAD, -1, _MAGIC,
                                  crc32c(records, crc32c(tail)))  # fmt: skip
                records.release()
                buf[:RECORD_BATCH_OVERHEAD] = head + tail
                return bytes(buf)
            with memoryview(buf) as view:
                payload = compress(codec, view[RECORD_BATCH_OVERHEAD:], level=level)
            head = _HEAD.pack(0, RECORD_BATCH_OVERHEAD - _LOG_OVERHEAD + len(payload), -1,
                              _MAGIC, crc32c(payload, crc32c(tail)))  # fmt: skip
        except struct.error as exc:
            raise EncodeError(f"record batch header field out of range: {exc}") from None
        return b"".join((head, tail, payload))
