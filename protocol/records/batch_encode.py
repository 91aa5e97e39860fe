"""Record batch v2 encoding: :class:`BatchBuilder`, one-shot builders and header rewrites.

The layout is described in :mod:`protocol.records._batch_layout`; reading is in
:mod:`protocol.records.batch_decode`. Every name here is also importable from
:mod:`protocol.records.batch` and :mod:`protocol.records`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from crc32c import crc32c

from protocol._errors_base import CorruptRecordError, EncodeError
from protocol.compression import Codec, compress
from protocol.records._batch_layout import (
    CONTROL_BIT,
    CRC_START,
    HEAD,
    I16,
    I32,
    I64,
    LOG_OVERHEAD,
    MAGIC,
    RECORD_BATCH_OVERHEAD,
    TAIL,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    U32,
    Bytes,
    Headers,
)
from protocol.records._extend import extend_builder
from protocol.records.control import encode_end_txn_marker
from protocol.records.record import (
    ENCODED_VARINT,
    NULL_LENGTH,
    TimestampType,
    encode_headers,
    encode_varint,
    record_size_upper_bound,
)

__all__ = [
    "BatchBuilder",
    "NewRecord",
    "build_batch",
    "build_control_batch",
    "rewrite_batch_header",
    "set_base_offset",
]

_VARINT_CACHE: Final = len(ENCODED_VARINT)


class NewRecord(NamedTuple):
    """A record to be written; the offset delta is its position in the batch."""

    timestamp: int
    key: Bytes | None
    value: Bytes | None
    headers: Sequence[tuple[str, Bytes | None]] = ()


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
        self._parts: list[Bytes] = []
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
        key: Bytes | None,
        value: Bytes | None,
        headers: Sequence[tuple[str, Bytes | None]] = (),
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

    def extend(self, records: Iterable[tuple[int, Bytes | None, Bytes | None, Headers]]) -> None:
        """:meth:`append` for many ``(timestamp, key, value, headers)`` records, with
        the same bytes; see ``_extend.py`` (the producer encodes every batch so)."""
        extend_builder(self, records)

    def try_append(
        self,
        timestamp: int,
        key: Bytes | None,
        value: Bytes | None,
        headers: Sequence[tuple[str, Bytes | None]] = (),
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
            attributes |= TRANSACTIONAL_BIT
        if self.is_control:
            attributes |= CONTROL_BIT
        try:
            tail = TAIL.pack(
                attributes,
                count - 1,
                self._base_ts,
                self._max_ts,
                self.producer_id,
                self.producer_epoch,
                self.base_sequence,
                count,
            )
            head = HEAD.pack(
                self.base_offset,
                RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + len(payload),
                self.partition_leader_epoch,
                MAGIC,
                crc32c(payload, crc32c(tail)),
            )
        except struct.error as exc:
            raise EncodeError(f"record batch header field out of range: {exc}") from None
        return b"".join((head, tail, payload))


def build_batch(
    records: Iterable[NewRecord | tuple[int, Bytes | None, Bytes | None]],
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
    I64.pack_into(batch, 0, base_offset)


def rewrite_batch_header(
    batch: Bytes,
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
    if len(out) < RECORD_BATCH_OVERHEAD or out[16] != MAGIC:
        raise CorruptRecordError("not a complete v2 record batch")
    try:
        if base_offset is not None:
            I64.pack_into(out, 0, base_offset)
        if partition_leader_epoch is not None:
            I32.pack_into(out, 12, partition_leader_epoch)
        crc_dirty = False
        if producer_id is not None:
            I64.pack_into(out, 43, producer_id)
            crc_dirty = True
        if producer_epoch is not None:
            I16.pack_into(out, 51, producer_epoch)
            crc_dirty = True
        if base_sequence is not None:
            I32.pack_into(out, 53, base_sequence)
            crc_dirty = True
        if is_transactional is not None or timestamp_type is not None:
            (attrs,) = I16.unpack_from(out, 21)
            if is_transactional is not None:
                attrs = (
                    (attrs | TRANSACTIONAL_BIT)
                    if is_transactional
                    else (attrs & ~TRANSACTIONAL_BIT)
                )
            if timestamp_type is not None:
                if timestamp_type not in (0, 1):
                    raise EncodeError(f"invalid timestamp type {timestamp_type}")
                attrs = (attrs & ~TIMESTAMP_TYPE_BIT) | (timestamp_type << 3)
            I16.pack_into(out, 21, attrs)
            crc_dirty = True
        if max_timestamp is not None:
            I64.pack_into(out, 35, max_timestamp)
            crc_dirty = True
    except struct.error as exc:
        raise EncodeError(f"record batch header field out of range: {exc}") from None
    if crc_dirty:
        U32.pack_into(out, 17, crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)
