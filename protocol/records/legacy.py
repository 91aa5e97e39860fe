"""Legacy message sets (magic 0 and 1), decode only.

Wire layout of one entry (big-endian)::

    offset       int64
    messageSize  int32   bytes after this field
    crc          uint32  CRC-32 (zlib polynomial) of magic..end
    magic        int8    0 or 1
    attributes   int8    bits 0-2 codec, bit 3 timestamp type (magic 1 only)
    timestamp    int64   magic 1 only
    key          int32 length (-1 = null), bytes
    value        int32 length (-1 = null), bytes

A compressed message ("wrapper") holds, in its value, a compressed message set
of uncompressed inner messages. The wrapper's offset is that of the last inner
message. Magic 0 inner messages carry absolute offsets; magic 1 inner messages
carry relative ones (0, 1, ...), made absolute as
``wrapper_offset - last_relative + relative``. A magic 1 wrapper stamped with
log-append time imposes its timestamp on every inner message.

Each top-level entry becomes one :class:`LegacyBatch`, mirroring Java, so a
consumer can treat old and new data alike. Brokers stopped writing these
formats with Kafka 0.11 but compacted or long-retained topics may still
hold them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Final

from protocol._errors_base import CorruptRecordError
from protocol.compression import Codec, decompress
from protocol.records.control import ControlRecord
from protocol.records.record import Record, TimestampType

__all__ = ["LEGACY_MIN_V0_SIZE", "LEGACY_MIN_V1_SIZE", "LegacyBatch", "read_legacy_entry"]

LEGACY_MIN_V0_SIZE: Final = 14  # crc 4 + magic 1 + attributes 1 + key length 4 + value length 4
LEGACY_MIN_V1_SIZE: Final = 22  # + timestamp 8
_LOG_OVERHEAD: Final = 12

_ENTRY: Final = struct.Struct(">qiIbb")  # offset, size, crc, magic, attributes
_I32: Final = struct.Struct(">i")
_I64: Final = struct.Struct(">q")


class _Message:
    """One parsed legacy message (header fields and where its value lies)."""

    __slots__ = ("attributes", "crc", "key", "magic", "offset", "timestamp", "value")

    def __init__(self, buf: bytes, pos: int, size: int) -> None:
        end = pos + _LOG_OVERHEAD + size
        offset, _, crc, magic, attributes = _ENTRY.unpack_from(buf, pos)
        self.offset: int = offset
        self.crc: int = crc
        self.magic: int = magic
        self.attributes: int = attributes
        self.timestamp: int
        self.key: bytes | None
        self.value: bytes | None
        if self.magic not in (0, 1):
            raise CorruptRecordError(f"legacy message magic {self.magic} at byte {pos}")
        if size < (LEGACY_MIN_V1_SIZE if self.magic else LEGACY_MIN_V0_SIZE):
            raise CorruptRecordError(f"legacy message of {size} bytes is shorter than its header")
        cur = pos + 18
        if self.magic:
            self.timestamp = _I64.unpack_from(buf, cur)[0]
            cur += 8
        else:
            self.timestamp = -1
        self.key, cur = _read_bytes(buf, cur, end)
        self.value, cur = _read_bytes(buf, cur, end)
        if cur != end:
            raise CorruptRecordError("legacy message fields disagree with its size")


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    if pos + 4 > end:
        raise CorruptRecordError("legacy message truncated")
    (n,) = _I32.unpack_from(buf, pos)
    pos += 4
    if n == -1:
        return None, pos
    if n < 0 or pos + n > end:
        raise CorruptRecordError(f"legacy message field length {n} does not fit")
    return buf[pos : pos + n], pos + n


def _check_crc(buf: bytes, pos: int, size: int, crc: int) -> None:
    view = memoryview(buf)[pos + 16 : pos + _LOG_OVERHEAD + size]
    if zlib.crc32(view) != crc:
        raise CorruptRecordError(f"CRC mismatch in legacy message at byte {pos}")


class LegacyBatch:
    """A top-level magic 0/1 message seen as a batch (of one, or of its inner messages).

    Offers the same read-only surface as :class:`~protocol.records.RecordBatch`
    (producer fields read as "none": -1 / False).
    """

    __slots__ = ("_buf", "_max_size", "_msg", "_records", "_size", "_start", "_verify_crc")

    partition_leader_epoch: Final = -1
    producer_id: Final = -1
    producer_epoch: Final = -1
    base_sequence: Final = -1
    last_sequence: Final = -1
    is_transactional: Final = False
    is_control: Final = False
    has_delete_horizon: Final = False

    def __init__(
        self, buf: bytes, start: int, size: int, verify_crc: bool, max_decompressed_size: int
    ) -> None:
        self._buf = buf
        self._start = start
        self._size = size
        self._verify_crc = verify_crc
        self._max_size = max_decompressed_size
        self._msg = _Message(buf, start, size)
        self._records: list[Record] | None = None

    def __repr__(self) -> str:
        return f"LegacyBatch(magic={self.magic}, offset={self.last_offset}, codec={self.codec!r})"

    @property
    def magic(self) -> int:
        return self._msg.magic

    @property
    def crc(self) -> int:
        return self._msg.crc

    @property
    def attributes(self) -> int:
        return self._msg.attributes

    @property
    def codec(self) -> Codec | int:
        code = self._msg.attributes & 0x07
        return Codec(code) if code <= 4 else code

    @property
    def timestamp_type(self) -> TimestampType:
        if self._msg.magic == 0:
            return TimestampType.NO_TIMESTAMP_TYPE
        return TimestampType((self._msg.attributes >> 3) & 1)

    @property
    def base_offset(self) -> int:
        if not self._msg.attributes & 0x07:
            return self._msg.offset
        return self.records()[0].offset

    @property
    def last_offset(self) -> int:
        # A broker stamps a wrapper with its last inner offset, but a wrapper
        # written by a client still says 0: derive it from the inner messages.
        if self._msg.attributes & 0x07:
            return self.records()[-1].offset
        return self._msg.offset

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def base_timestamp(self) -> int:
        return self._msg.timestamp

    @property
    def max_timestamp(self) -> int:
        return self._msg.timestamp

    @property
    def record_count(self) -> int:
        return len(self.records())

    @property
    def size_in_bytes(self) -> int:
        return _LOG_OVERHEAD + self._size

    def raw(self) -> bytes:
        return self._buf[self._start : self._start + _LOG_OVERHEAD + self._size]

    def crc_ok(self) -> bool:
        try:
            _check_crc(self._buf, self._start, self._size, self._msg.crc)
        except CorruptRecordError:
            return False
        return True

    def records(self) -> list[Record]:
        if self._records is None:
            self._records = self._decode()
        return self._records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def control_records(self) -> list[ControlRecord]:
        return []

    def _decode(self) -> list[Record]:
        msg = self._msg
        codec = msg.attributes & 0x07
        if not codec:
            return [Record(msg.offset, msg.timestamp, msg.key, msg.value, ())]
        if msg.value is None:
            raise CorruptRecordError(
                f"compressed legacy message at offset {msg.offset} has no value"
            )
        data = decompress(codec, msg.value, max_size=self._max_size, legacy=True)
        inner = self._inner_messages(data)
        if not inner:
            raise CorruptRecordError(f"compressed legacy message at offset {msg.offset} is empty")
        log_append = msg.magic == 1 and bool(msg.attributes & 0x08)
        shift = msg.offset - inner[-1].offset if msg.magic == 1 else 0
        if shift < 0:
            # A wrapper no broker has stamped yet (offset 0, as clients write
            # it): the relative offsets are all we have.
            shift = 0
        return [
            Record(
                m.offset + shift,
                msg.timestamp if log_append else m.timestamp,
                m.key,
                m.value,
                (),
            )
            for m in inner
        ]

    def _inner_messages(self, data: bytes) -> list[_Message]:
        out: list[_Message] = []
        pos = 0
        n = len(data)
        while pos < n:
            if n - pos < _LOG_OVERHEAD:
                raise CorruptRecordError("truncated message inside a compressed legacy message")
            (size,) = _I32.unpack_from(data, pos + 8)
            if size < LEGACY_MIN_V0_SIZE or size > n - pos - _LOG_OVERHEAD:
                raise CorruptRecordError(f"inner legacy message size {size} does not fit")
            m = _Message(data, pos, size)
            if m.attributes & 0x07:
                raise CorruptRecordError("nested compression in a legacy message")
            if self._verify_crc:
                _check_crc(data, pos, size, m.crc)
            out.append(m)
            pos += _LOG_OVERHEAD + size
        return out


def read_legacy_entry(
    buf: bytes, pos: int, size: int, verify_crc: bool, max_decompressed_size: int
) -> LegacyBatch:
    """Parse the complete top-level legacy message at ``buf[pos:pos + 12 + size]``."""
    batch = LegacyBatch(buf, pos, size, verify_crc, max_decompressed_size)
    if verify_crc:
        _check_crc(buf, pos, size, batch.crc)
    return batch
