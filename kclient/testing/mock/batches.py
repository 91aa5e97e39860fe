"""The few record-batch facts the mock broker needs, read straight from the v2 header.

Record batch v2 header (61 bytes, big-endian)::

    0  baseOffset int64         27 baseTimestamp int64
    8  batchLength int32        35 maxTimestamp int64
    12 partitionLeaderEpoch     43 producerId int64
    16 magic int8               51 producerEpoch int16
    17 crc uint32 (CRC-32C of   53 baseSequence int32
       bytes 21..end)           57 recordCount int32
    21 attributes int16         61 records...
    23 lastOffsetDelta int32

The broker assigns offsets by rewriting baseOffset and stamps its leader epoch
into partitionLeaderEpoch; neither is covered by the CRC, so stored batches stay
valid without re-encoding the records. Control batches (transaction markers) are
built here because the broker, not the client, writes them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

__all__ = [
    "BatchError",
    "BatchHeader",
    "control_batch",
    "split_batches",
    "with_offset_and_epoch",
]

HEADER_SIZE = 61
_HEAD = struct.Struct(">qiibIhiqqqhii")
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
NO_PRODUCER_ID = -1


class BatchError(ValueError):
    """The bytes are not a valid v2 record batch (CORRUPT_MESSAGE to the client)."""


@dataclass(slots=True, frozen=True)
class BatchHeader:
    base_offset: int
    length: int  # whole batch including the offset and length fields
    leader_epoch: int
    magic: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def last_sequence(self) -> int:
        # Sequences wrap at int32 max back to 0, like the Java broker.
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


def parse_header(data: bytes) -> BatchHeader:
    if len(data) < HEADER_SIZE:
        raise BatchError(f"record batch of {len(data)} bytes is shorter than its header")
    fields = _HEAD.unpack_from(data)
    header = BatchHeader(
        base_offset=fields[0],
        length=fields[1] + 12,
        leader_epoch=fields[2],
        magic=fields[3],
        attributes=fields[5],
        last_offset_delta=fields[6],
        base_timestamp=fields[7],
        max_timestamp=fields[8],
        producer_id=fields[9],
        producer_epoch=fields[10],
        base_sequence=fields[11],
        record_count=fields[12],
    )
    if header.magic != 2:
        raise BatchError(f"record batch magic {header.magic} is not supported (only v2)")
    if header.length != len(data):
        raise BatchError("record batch length does not match its bytes")
    if crc32c.crc32c(data[21:]) != fields[4]:
        raise BatchError("record batch CRC-32C mismatch")
    if header.record_count < 0 or header.last_offset_delta < 0:
        raise BatchError("negative record count or offset delta")
    return header


def split_batches(records: bytes) -> list[tuple[BatchHeader, bytes]]:
    """Split a produce request's records field into validated batches."""
    out: list[tuple[BatchHeader, bytes]] = []
    pos = 0
    while pos < len(records):
        if len(records) - pos < 12:
            raise BatchError("truncated record batch")
        (length,) = struct.unpack_from(">i", records, pos + 8)
        end = pos + 12 + length
        if length < HEADER_SIZE - 12 or end > len(records):
            raise BatchError("truncated record batch")
        chunk = bytes(records[pos:end])
        out.append((parse_header(chunk), chunk))
        pos = end
    if not out:
        raise BatchError("produce request without record batches")
    return out


def with_offset_and_epoch(data: bytes, base_offset: int, leader_epoch: int) -> bytes:
    return struct.pack(">q", base_offset) + data[8:12] + struct.pack(">i", leader_epoch) + data[16:]


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def control_batch(
    *,
    base_offset: int,
    leader_epoch: int,
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int,
    timestamp_ms: int,
) -> bytes:
    """One control record (END_TXN marker): key = (version 0, type), value = (0, coord epoch)."""
    key = struct.pack(">hh", 0, 1 if commit else 0)
    value = struct.pack(">hi", 0, coordinator_epoch)
    body = (
        b"\x00"  # record attributes
        + _varint(0)  # timestamp delta
        + _varint(0)  # offset delta
        + _varint(len(key))
        + key
        + _varint(len(value))
        + value
        + _varint(0)  # header count
    )
    record = _varint(len(body)) + body
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            ATTR_TRANSACTIONAL | ATTR_CONTROL,
            0,
            timestamp_ms,
            timestamp_ms,
            producer_id,
            producer_epoch,
            -1,
            1,
        )
        + record
    )
    crc = crc32c.crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)  # epoch, magic, crc, rest
    return struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc) + after_crc
