"""A tiny v2 record-batch builder for pure-state tests (independent of protocol.records)."""

from __future__ import annotations

import struct

import crc32c

from kclient.testing.mock.batches import BatchHeader, parse_header


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if not zigzag:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def raw_batch(
    values: list[bytes],
    *,
    producer_id: int = -1,
    epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    timestamp: int = 1000,
) -> bytes:
    records = b""
    for delta, value in enumerate(values):
        body = (
            b"\x00"
            + _varint(0)
            + _varint(delta)
            + _varint(-1)
            + _varint(len(value))
            + value
            + _varint(0)
        )
        records += _varint(len(body)) + body
    attributes = 0x10 if transactional else 0
    rest = (
        struct.pack(
            ">hiqqqhii",
            attributes,
            len(values) - 1,
            timestamp,
            timestamp,
            producer_id,
            epoch,
            base_sequence,
            len(values),
        )
        + records
    )
    return struct.pack(">qiibI", 0, 9 + len(rest), -1, 2, crc32c.crc32c(rest)) + rest


def batch(values: list[bytes], **kwargs: int | bool) -> list[tuple[BatchHeader, bytes]]:
    data = raw_batch(values, **kwargs)  # type: ignore[arg-type]
    return [(parse_header(data), data)]
