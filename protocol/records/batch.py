"""Record batch v2 (magic 2): builder, reader and cheap header rewrites.

Wire layout (big-endian; offsets from the start of the batch)::

    0   baseOffset            int64
    8   batchLength           int32   bytes after this field (total size - 12)
    12  partitionLeaderEpoch  int32
    16  magic                 int8    2
    17  crc                   uint32  CRC-32C of bytes 21..end
    21  attributes            int16
    23  lastOffsetDelta       int32
    27  baseTimestamp         int64
    35  maxTimestamp          int64
    43  producerId            int64
    51  producerEpoch         int16
    53  baseSequence          int32
    57  recordsCount          int32
    61  records               (see record.py), compressed as a whole unless codec 0

Attribute bits: 0-2 codec, 3 timestamp type (1 = log-append time), 4
transactional, 5 control, 6 delete horizon (baseTimestamp then holds it).

A message set (Produce request, Fetch response) is batches back to back; the
first 17 bytes of every entry (offset, length, epoch or CRC, magic) sit at
the same places in v0/v1 messages, which is how :func:`read_batches` tells the
formats apart. Because baseOffset and partitionLeaderEpoch precede the CRC'd
range, a broker (or a retrying producer) can rewrite them without touching the
CRC; producer id, epoch and sequence need a CRC recomputation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, NamedTuple, TypeVar

from crc32c import crc32c

from protocol._errors_base import CorruptRecordError, EncodeError
from protocol.compression import DEFAULT_MAX_DECOMPRESSED_SIZE, Codec, compress, decompress
from protocol.records._extend import extend_builder
from protocol.records.control import ControlRecord, decode_control_record, encode_end_txn_marker
from protocol.records.legacy import LEGACY_MIN_V0_SIZE, LegacyBatch, read_legacy_entry
from protocol.records.record import (
    ENCODED_VARINT,
    NULL_LENGTH,
    Record,
    RecordFactory,
    TimestampType,
    decode_records,
    decode_records_into,
    encode_headers,
    encode_varint,
    record_size_upper_bound,
)

__all__ = [
    "RECORD_BATCH_OVERHEAD",
    "BatchBuilder",
    "NewRecord",
    "RecordBatch",
    "TimestampType",
    "build_batch",
    "build_control_batch",
    "rewrite_batch_header",
    "set_base_offset",
]

RECORD_BATCH_OVERHEAD: Final = 61
_LOG_OVERHEAD: Final = 12  # baseOffset + batchLength
_CRC_START: Final = 21
_MAGIC: Final = 2

# Header split at the CRC: the first part is outside the checksum.
_HEAD: Final = struct.Struct(">qiibI")  # baseOffset .. crc (21 bytes)
_TAIL: Final = struct.Struct(">hiqqqhii")  # attributes .. recordsCount (40 bytes)
_FULL: Final = struct.Struct(">qiibIhiqqqhii")
_I16: Final = struct.Struct(">h")
_I32: Final = struct.Struct(">i")
_I64: Final = struct.Struct(">q")
_U32: Final = struct.Struct(">I")

_CODEC_MASK: Final = 0x07
_TIMESTAMP_TYPE_BIT: Final = 0x08
_TRANSACTIONAL_BIT: Final = 0x10
_CONTROL_BIT: Final = 0x20
_DELETE_HORIZON_BIT: Final = 0x40

_VARINT_CACHE: Final = len(ENCODED_VARINT)
_T = TypeVar("_T")
_Bytes = bytes | bytearray | memoryview
_Headers = Sequence[tuple[str, _Bytes | None]]


class NewRecord(NamedTuple):
    """A record to be written; the offset delta is its position in the batch."""

    timestamp: int
    key: _Bytes | None
    value: _Bytes | None
    headers: Sequence[tuple[str, _Bytes | None]] = ()


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)  # snapshot: the caller may reuse its buffer
    raise TypeError(f"record {what} must be bytes or None, not {type(data).__name__}")


# -- building --------------------------------------------------------------------


class BatchBuilder:
    """Accumulates records into one v2 batch; :meth:`build` returns its bytes.

    Appending encodes the record's varint fields at once and keeps the pieces
    (plus references to the key and value) in a list, so no record objects
    exist and nothing is copied until :meth:`build` joins everything once.
    ``estimated_size`` is exact for uncompressed batches and scaled by
    ``estimated_compression_ratio`` otherwise (feed back
    :attr:`compression_ratio` from earlier batches, as Java does).
    """

    __slots__ = (
        "_base_ts",
        "_compressed_size",
        "_count",
        "_max_ts",
        "_parts",
        "_size",
        "base_offset",
        "base_sequence",
        "codec",
        "compression_level",
        "estimated_compression_ratio",
        "is_control",
        "is_transactional",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
        "timestamp_type",
    )

    def __init__(
        self,
        *,
        codec: Codec | int = Codec.NONE,
        base_offset: int = 0,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        partition_leader_epoch: int = -1,
        is_transactional: bool = False,
        is_control: bool = False,
        timestamp_type: TimestampType | int = TimestampType.CREATE_TIME,
        compression_level: int | None = None,
        estimated_compression_ratio: float = 1.0,
    ) -> None:
        if codec not in (0, 1, 2, 3, 4):
            raise EncodeError(f"unknown compression codec {codec}")
        if timestamp_type not in (0, 1):
            raise EncodeError(f"invalid timestamp type {timestamp_type} for a v2 batch")
        self.codec = Codec(codec)
        self.base_offset = base_offset
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.partition_leader_epoch = partition_leader_epoch
        self.is_transactional = is_transactional
        self.is_control = is_control
        self.timestamp_type = TimestampType(timestamp_type)
        self.compression_level = compression_level
        self.estimated_compression_ratio = estimated_compression_ratio
        self._parts: list[_Bytes] = []
        self._count = 0
        self._size = 0
        self._base_ts = -1
        self._max_ts = -1
        self._compressed_size = -1

    @property
    def record_count(self) -> int:
        return self._count

    @property
    def uncompressed_size(self) -> int:
        """Exact size of the batch if it were written without compression."""
        return RECORD_BATCH_OVERHEAD + self._size

    @property
    def estimated_size(self) -> int:
        if self.codec == Codec.NONE:
            return RECORD_BATCH_OVERHEAD + self._size
        return RECORD_BATCH_OVERHEAD + int(self._size * self.estimated_compression_ratio)

    @property
    def compression_ratio(self) -> float:
        """Compressed / uncompressed size of the records at the last build (1.0 before)."""
        if self._compressed_size < 0 or not self._size:
            return 1.0
        return self._compressed_size / self._size

    @property
    def base_timestamp(self) -> int:
        return self._base_ts

    @property
    def max_timestamp(self) -> int:
        return self._max_ts

    def append(
        self,
        timestamp: int,
        key: _Bytes | None,
        value: _Bytes | None,
        headers: Sequence[tuple[str, _Bytes | None]] = (),
    ) -> int:
        """Add a record; returns its offset delta (its index in the batch)."""
        if key is not None and type(key) is not bytes:
            key = _as_bytes(key, "key")
        if value is not None and type(value) is not bytes:
            value = _as_bytes(value, "value")
        count = self._count
        if count:
            delta = timestamp - self._base_ts
            if timestamp > self._max_ts:
                self._max_ts = timestamp
        else:
            # Java's choice: the first record's timestamp is the base.
            self._base_ts = self._max_ts = timestamp
            delta = 0
        enc = ENCODED_VARINT
        tsd = enc[delta] if 0 <= delta < _VARINT_CACHE else encode_varint(delta)
        od = enc[count] if count < _VARINT_CACHE else encode_varint(count)
        if key is None:
            kl = NULL_LENGTH
            key = b""
            klen = 0
        else:
            klen = len(key)
            kl = enc[klen] if klen < _VARINT_CACHE else encode_varint(klen)
        if value is None:
            vl = NULL_LENGTH
            value = b""
            vlen = 0
        else:
            vlen = len(value)
            vl = enc[vlen] if vlen < _VARINT_CACHE else encode_varint(vlen)
        hb = encode_headers(headers) if headers else b"\x00"
        # 1 = the attributes byte.
        body = 1 + len(tsd) + len(od) + len(kl) + klen + len(vl) + vlen + len(hb)
        lb = enc[body] if body < _VARINT_CACHE else encode_varint(body)
        self._parts += (lb, b"\x00", tsd, od, kl, key, vl, value, hb)
        self._size += len(lb) + body
        self._count = count + 1
        return count

    def extend(self, records: Iterable[tuple[int, _Bytes | None, _Bytes | None, _Headers]]) -> None:
        """:meth:`append` for many ``(timestamp, key, value, headers)`` records, with
        the same bytes; see ``_extend.py`` (the producer encodes every batch so)."""
        extend_builder(self, records)

    def try_append(
        self,
        timestamp: int,
        key: _Bytes | None,
        value: _Bytes | None,
        headers: Sequence[tuple[str, _Bytes | None]] = (),
        *,
        max_batch_size: int,
    ) -> int | None:
        """Append unless the batch would outgrow ``max_batch_size``; None if full.

        The first record is always accepted (an oversized record must still be
        sendable on its own; the caller checks max.request.size separately).
        """
        if self._count:
            bound = record_size_upper_bound(key, value, headers)
            if self.codec != Codec.NONE:
                bound = int(bound * self.estimated_compression_ratio)
            if self.estimated_size + bound > max_batch_size:
                return None
        return self.append(timestamp, key, value, headers)

    def build(self) -> bytes:
        """Encode the batch; can be called again after changing header fields."""
        records = b"".join(self._parts)
        codec = self.codec
        if codec != Codec.NONE:
            payload = compress(codec, records, level=self.compression_level)
            self._compressed_size = len(payload)
        else:
            payload = records
        count = self._count
        attributes = codec | (self.timestamp_type << 3)
        if self.is_transactional:
            attributes |= _TRANSACTIONAL_BIT
        if self.is_control:
            attributes |= _CONTROL_BIT
        try:
            tail = _TAIL.pack(
                attributes,
                count - 1,
                self._base_ts,
                self._max_ts,
                self.producer_id,
                self.producer_epoch,
                self.base_sequence,
                count,
            )
            head = _HEAD.pack(
                self.base_offset,
                RECORD_BATCH_OVERHEAD - _LOG_OVERHEAD + len(payload),
                self.partition_leader_epoch,
                _MAGIC,
                crc32c(payload, crc32c(tail)),
            )
        except struct.error as exc:
            raise EncodeError(f"record batch header field out of range: {exc}") from None
        return b"".join((head, tail, payload))


def build_batch(
    records: Iterable[NewRecord | tuple[int, _Bytes | None, _Bytes | None]],
    *,
    codec: Codec | int = Codec.NONE,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    timestamp_type: TimestampType | int = TimestampType.CREATE_TIME,
    compression_level: int | None = None,
) -> bytes:
    """One-shot form of :class:`BatchBuilder`; records are NewRecord or 3-tuples."""
    builder = BatchBuilder(
        codec=codec,
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        partition_leader_epoch=partition_leader_epoch,
        is_transactional=is_transactional,
        is_control=is_control,
        timestamp_type=timestamp_type,
        compression_level=compression_level,
    )
    append = builder.append
    for rec in records:
        append(*rec)
    return builder.build()


def build_control_batch(
    *,
    commit: bool,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transactional control batch holding one COMMIT or ABORT marker."""
    key, value = encode_end_txn_marker(commit, coordinator_epoch)
    builder = BatchBuilder(
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        partition_leader_epoch=partition_leader_epoch,
        is_transactional=True,
        is_control=True,
    )
    builder.append(timestamp, key, value)
    return builder.build()


# -- rewriting -------------------------------------------------------------------


def set_base_offset(batch: bytearray | memoryview, base_offset: int) -> None:
    """Overwrite baseOffset in place; it lies outside the CRC, so nothing else changes."""
    _I64.pack_into(batch, 0, base_offset)


def rewrite_batch_header(
    batch: _Bytes,
    *,
    base_offset: int | None = None,
    partition_leader_epoch: int | None = None,
    producer_id: int | None = None,
    producer_epoch: int | None = None,
    base_sequence: int | None = None,
    is_transactional: bool | None = None,
    timestamp_type: TimestampType | int | None = None,
    max_timestamp: int | None = None,
) -> bytes:
    """Return a copy of a v2 batch with header fields replaced and the CRC fixed.

    Costs one copy plus, when a CRC'd field changes, one CRC-32C pass; the
    records (compressed or not) are never re-encoded. A broker uses this to
    assign offsets and log-append time, a producer to restamp a retried
    batch with a new producer epoch or sequence.
    """
    out = bytearray(batch)
    if len(out) < RECORD_BATCH_OVERHEAD or out[16] != _MAGIC:
        raise CorruptRecordError("not a complete v2 record batch")
    try:
        if base_offset is not None:
            _I64.pack_into(out, 0, base_offset)
        if partition_leader_epoch is not None:
            _I32.pack_into(out, 12, partition_leader_epoch)
        crc_dirty = False
        if producer_id is not None:
            _I64.pack_into(out, 43, producer_id)
            crc_dirty = True
        if producer_epoch is not None:
            _I16.pack_into(out, 51, producer_epoch)
            crc_dirty = True
        if base_sequence is not None:
            _I32.pack_into(out, 53, base_sequence)
            crc_dirty = True
        if is_transactional is not None or timestamp_type is not None:
            (attrs,) = _I16.unpack_from(out, 21)
            if is_transactional is not None:
                attrs = (
                    (attrs | _TRANSACTIONAL_BIT)
                    if is_transactional
                    else (attrs & ~_TRANSACTIONAL_BIT)
                )
            if timestamp_type is not None:
                if timestamp_type not in (0, 1):
                    raise EncodeError(f"invalid timestamp type {timestamp_type}")
                attrs = (attrs & ~_TIMESTAMP_TYPE_BIT) | (timestamp_type << 3)
            _I16.pack_into(out, 21, attrs)
            crc_dirty = True
        if max_timestamp is not None:
            _I64.pack_into(out, 35, max_timestamp)
            crc_dirty = True
    except struct.error as exc:
        raise EncodeError(f"record batch header field out of range: {exc}") from None
    if crc_dirty:
        _U32.pack_into(out, 17, crc32c(memoryview(out)[_CRC_START:]))
    return bytes(out)


# -- reading ---------------------------------------------------------------------


class RecordBatch:
    """A v2 batch found by :func:`read_batches`; records decode on first use.

    Header fields are plain attributes. Decompression and record decoding
    happen in :meth:`records` (so skipped or aborted batches cost nothing) and
    raise :class:`~protocol._errors_base.CorruptRecordError` or
    :class:`~protocol._errors_base.DecompressionLimitError` there.
    """

    __slots__ = (
        "_buf",
        "_end",
        "_max_size",
        "_records",
        "_start",
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "batch_length",
        "crc",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
        "record_count",
    )

    def __init__(
        self,
        buf: bytes,
        start: int,
        header: tuple[int, int, int, int, int, int, int, int, int, int, int, int, int],
        max_decompressed_size: int,
    ) -> None:
        (
            self.base_offset,
            self.batch_length,
            self.partition_leader_epoch,
            self.magic,
            self.crc,
            self.attributes,
            self.last_offset_delta,
            self.base_timestamp,
            self.max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self.record_count,
        ) = header
        self._buf = buf
        self._start = start
        self._end = start + _LOG_OVERHEAD + self.batch_length
        self._max_size = max_decompressed_size
        self._records: list[Record] | None = None

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, count={self.record_count}, "
            f"codec={self.codec!r}, producer_id={self.producer_id}, "
            f"transactional={self.is_transactional}, control={self.is_control})"
        )

    @property
    def codec(self) -> Codec | int:
        """The codec; a plain int for the undefined values 5-7."""
        code = self.attributes & _CODEC_MASK
        return Codec(code) if code <= 4 else code

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes >> 3) & 1)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & _DELETE_HORIZON_BIT)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF

    @property
    def size_in_bytes(self) -> int:
        return _LOG_OVERHEAD + self.batch_length

    def raw(self) -> bytes:
        """The batch's bytes as they appeared on the wire."""
        return self._buf[self._start : self._end]

    def crc_ok(self) -> bool:
        view = memoryview(self._buf)[self._start + _CRC_START : self._end]
        return bool(crc32c(view) == self.crc)

    def records(self) -> list[Record]:
        records = self._records
        if records is None:
            records = self._records = self._decode()
        return records

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def control_records(self) -> list[ControlRecord]:
        """Decode a control batch's records as markers (empty for a data batch)."""
        if not self.is_control:
            return []
        return [decode_control_record(rec) for rec in self.records()]

    def records_into(
        self, out: list[_T], make: RecordFactory[_T], prefix: tuple[object, ...] = ()
    ) -> None:
        """Decode the records straight into caller-built objects appended to ``out``.

        ``make(*prefix, offset, timestamp, timestamp_type, key, value, headers,
        leader_epoch, key_size, value_size)`` is called per record (or mapped over runs
        of records; see :func:`~protocol.records.record.decode_records_into`). Nothing is cached:
        the consumer calls this once per batch and keeps the objects. Same errors as
        :meth:`records`; on one, ``out`` may hold part of the batch.
        """
        start = self._start + RECORD_BATCH_OVERHEAD
        end = self._end
        attributes = self.attributes
        fixed_ts = self.max_timestamp if attributes & _TIMESTAMP_TYPE_BIT else None
        ts_type = (attributes >> 3) & 1
        code = attributes & _CODEC_MASK
        try:
            if code == Codec.NONE:
                buf = self._buf
            else:
                buf = decompress(code, memoryview(self._buf)[start:end], max_size=self._max_size)
                start, end = 0, len(buf)
            decode_records_into(
                out, make, buf, start, end, self.record_count, self.base_offset,
                self.base_timestamp, ts_type, self.partition_leader_epoch, fixed_ts, prefix,
            )  # fmt: skip
        except CorruptRecordError as exc:
            raise CorruptRecordError(f"batch at offset {self.base_offset}: {exc}") from None

    def _decode(self) -> list[Record]:
        start = self._start + RECORD_BATCH_OVERHEAD
        end = self._end
        fixed_ts = self.max_timestamp if self.attributes & _TIMESTAMP_TYPE_BIT else None
        code = self.attributes & _CODEC_MASK
        try:
            if code == Codec.NONE:
                return decode_records(
                    self._buf,
                    start,
                    end,
                    self.record_count,
                    self.base_offset,
                    self.base_timestamp,
                    fixed_ts,
                )
            data = decompress(code, memoryview(self._buf)[start:end], max_size=self._max_size)
            return decode_records(
                data,
                0,
                len(data),
                self.record_count,
                self.base_offset,
                self.base_timestamp,
                fixed_ts,
            )
        except CorruptRecordError as exc:
            raise CorruptRecordError(f"batch at offset {self.base_offset}: {exc}") from None


def _read_v2(buf: bytes, pos: int, length: int, verify_crc: bool, max_size: int) -> RecordBatch:
    if length < RECORD_BATCH_OVERHEAD - _LOG_OVERHEAD:
        raise CorruptRecordError(
            f"record batch at byte {pos} declares {length} bytes, less than its header"
        )
    batch = RecordBatch(buf, pos, _FULL.unpack_from(buf, pos), max_size)
    if verify_crc and not batch.crc_ok():
        raise CorruptRecordError(
            f"CRC mismatch in record batch at offset {batch.base_offset} (byte {pos})"
        )
    return batch


def read_batches(
    data: _Bytes,
    *,
    verify_crc: bool = True,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> Iterator[RecordBatch | LegacyBatch]:
    """Iterate the batches of a message set (e.g. a Fetch response's records).

    Yields :class:`RecordBatch` for magic 2 and :class:`LegacyBatch` for each
    top-level magic 0/1 message. A partial batch at the end is skipped
    silently (brokers cut fetch responses at a byte limit); a batch that is
    complete but malformed raises CorruptRecordError.
    """
    buf = data if type(data) is bytes else bytes(data)
    n = len(buf)
    pos = 0
    unpack_i32 = _I32.unpack_from
    while n - pos >= _LOG_OVERHEAD:
        (length,) = unpack_i32(buf, pos + 8)
        if length < LEGACY_MIN_V0_SIZE:
            raise CorruptRecordError(
                f"entry at byte {pos} declares {length} bytes, less than any message header"
            )
        if length > n - pos - _LOG_OVERHEAD:
            return  # partial trailing batch
        magic = buf[pos + 16]
        if magic == _MAGIC:
            yield _read_v2(buf, pos, length, verify_crc, max_decompressed_size)
        elif magic <= 1:
            yield read_legacy_entry(buf, pos, length, verify_crc, max_decompressed_size)
        else:
            raise CorruptRecordError(f"unknown record batch magic {magic} at byte {pos}")
        pos += _LOG_OVERHEAD + length
