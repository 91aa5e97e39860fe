"""snappy codec (Codec.SNAPPY, attribute value 2).

Two wire layouts exist and both are decoded:

* raw snappy: a varint (7 bits per byte, low group first) holding the
  uncompressed length, then snappy elements;
* xerial framing, which Java writes (org.xerial.snappy.SnappyOutputStream) and
  which we therefore write too::

      magic   8 bytes  82 'S' 'N' 'A' 'P' 'P' 'Y' 00
      version int32    1
      compat  int32    1
      blocks  [int32 compressed length, raw snappy block]...  (32 KiB of input each)

Raw snappy declares its output length up front, and cramjam allocates that
much, so the declared lengths are summed and checked against the cap before
any block is decompressed.
"""

from __future__ import annotations

import struct

import cramjam

from protocol.compression._common import corrupt, limit_exceeded

_NAME = "snappy"
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_BLOCK_LEN = struct.Struct(">i")
_XERIAL_BLOCK = 32 * 1024  # SnappyOutputStream's default block size


def compress(data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    del level  # snappy has no levels
    view = memoryview(data)
    parts = [_XERIAL_HEADER.pack(_XERIAL_MAGIC, 1, 1)]
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        parts.append(_BLOCK_LEN.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def compress_raw(data: bytes | bytearray | memoryview) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def decompress(data: bytes | bytearray | memoryview, cap: int) -> bytes:
    view = memoryview(data)
    if bytes(view[:8]) == _XERIAL_MAGIC:
        blocks = _xerial_blocks(view)
    else:
        blocks = [view]
    total = 0
    for block in blocks:
        total += _declared_length(block)
        if total > cap:
            limit_exceeded(_NAME, cap)
    out: list[bytes] = []
    for block in blocks:
        try:
            out.append(bytes(cramjam.snappy.decompress_raw(block)))
        except cramjam.DecompressionError as exc:
            corrupt(_NAME, exc)
    if len(out) == 1:
        return out[0]
    return b"".join(out)


def _xerial_blocks(view: memoryview) -> list[memoryview]:
    if len(view) < _XERIAL_HEADER.size:
        corrupt(_NAME, "truncated xerial header")
    pos = _XERIAL_HEADER.size
    blocks: list[memoryview] = []
    while pos < len(view):
        if pos + 4 > len(view):
            corrupt(_NAME, "truncated xerial block length")
        (size,) = _BLOCK_LEN.unpack_from(view, pos)
        pos += 4
        if size < 0 or pos + size > len(view):
            corrupt(_NAME, f"xerial block length {size} overruns the data")
        blocks.append(view[pos : pos + size])
        pos += size
    return blocks


def _declared_length(block: memoryview) -> int:
    """Read the raw-snappy length preamble without trusting it further."""
    result = 0
    for i in range(min(len(block), 5)):
        byte = block[i]
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return result
    corrupt(_NAME, "bad length preamble")
