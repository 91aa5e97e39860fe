"""Record batch v2 decoding: :func:`read_batches` over a message set, lazy :class:`RecordBatch`.

The layout is described in :mod:`protocol.records._batch_layout`; building is in
:mod:`protocol.records.batch_encode`. Every name here is also importable from
:mod:`protocol.records.batch` and :mod:`protocol.records`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from crc32c import crc32c

from protocol._errors_base import CorruptRecordError
from protocol.compression import DEFAULT_MAX_DECOMPRESSED_SIZE, Codec, decompress
from protocol.records._batch_layout import (
    CODEC_MASK,
    CONTROL_BIT,
    CRC_START,
    DELETE_HORIZON_BIT,
    FULL,
    I32,
    LOG_OVERHEAD,
    MAGIC,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    Bytes,
)
from protocol.records.control import ControlRecord, decode_control_record
from protocol.records.legacy import LEGACY_MIN_V0_SIZE, LegacyBatch, read_legacy_entry
from protocol.records.record import (
    Record,
    RecordFactory,
    TimestampType,
    decode_records,
    decode_records_into,
)

__all__ = ["RecordBatch", "read_batches"]

_T = TypeVar("_T")


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
        self._end = start + LOG_OVERHEAD + self.batch_length
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
        code = self.attributes & CODEC_MASK
        return Codec(code) if code <= 4 else code

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes >> 3) & 1)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_BIT)

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
        return LOG_OVERHEAD + self.batch_length

    def raw(self) -> bytes:
        """The batch's bytes as they appeared on the wire."""
        return self._buf[self._start : self._end]

    def crc_ok(self) -> bool:
        view = memoryview(self._buf)[self._start + CRC_START : self._end]
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
        fixed_ts = self.max_timestamp if attributes & TIMESTAMP_TYPE_BIT else None
        ts_type = (attributes >> 3) & 1
        code = attributes & CODEC_MASK
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
        fixed_ts = self.max_timestamp if self.attributes & TIMESTAMP_TYPE_BIT else None
        code = self.attributes & CODEC_MASK
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
    if length < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD:
        raise CorruptRecordError(
            f"record batch at byte {pos} declares {length} bytes, less than its header"
        )
    batch = RecordBatch(buf, pos, FULL.unpack_from(buf, pos), max_size)
    if verify_crc and not batch.crc_ok():
        raise CorruptRecordError(
            f"CRC mismatch in record batch at offset {batch.base_offset} (byte {pos})"
        )
    return batch


def read_batches(
    data: Bytes,
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
    unpack_i32 = I32.unpack_from
    while n - pos >= LOG_OVERHEAD:
        (length,) = unpack_i32(buf, pos + 8)
        if length < LEGACY_MIN_V0_SIZE:
            raise CorruptRecordError(
                f"entry at byte {pos} declares {length} bytes, less than any message header"
            )
        if length > n - pos - LOG_OVERHEAD:
            return  # partial trailing batch
        magic = buf[pos + 16]
        if magic == MAGIC:
            yield _read_v2(buf, pos, length, verify_crc, max_decompressed_size)
        elif magic <= 1:
            yield read_legacy_entry(buf, pos, length, verify_crc, max_decompressed_size)
        else:
            raise CorruptRecordError(f"unknown record batch magic {magic} at byte {pos}")
        pos += LOG_OVERHEAD + length
