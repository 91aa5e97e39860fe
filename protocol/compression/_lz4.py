"""lz4 codec (Codec.LZ4, attribute value 3).

Wire layout: an LZ4 frame (magic ``04 22 4d 18``, FLG, BD, optional 8-byte
content size, HC header checksum byte, then blocks ``[uint32 LE size, data]``
up to an end mark ``00 00 00 00``, optional content checksum). We write what
Java's KafkaLZ4BlockOutputStream writes: independent 64 KiB blocks, no block
or content checksum, no content size.

Magic 0 message sets from Kafka 0.8-0.9 carry a wrong HC byte: Kafka hashed
the frame magic together with the descriptor instead of the descriptor alone.
For legacy data we recompute HC from the descriptor before decoding, which
accepts both the broken and the correct form; that needs xxHash32 over at
most 10 bytes, done here in pure Python.
"""

from __future__ import annotations

import lz4.frame as lz4frame  # type: ignore[import-untyped]

from protocol.compression._common import corrupt, first_step, limit_exceeded

_NAME = "lz4"
_MAGIC = b"\x04\x22\x4d\x18"


def compress(data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    out: bytes = lz4frame.compress(
        data,
        compression_level=0 if level is None else level,
        block_size=lz4frame.BLOCKSIZE_MAX64KB,
        block_linked=False,
        content_checksum=False,
        store_size=False,
    )
    return out


def decompress(data: bytes | bytearray | memoryview, cap: int, *, legacy: bool = False) -> bytes:
    if legacy:
        data = _fix_header_checksum(bytes(data))
    if not len(data):
        corrupt(_NAME, "empty input")
    chunks: list[bytes] = []
    total = 0
    step = first_step(len(data), cap)
    pending: bytes | bytearray | memoryview = data
    try:
        while pending:
            dec = lz4frame.LZ4FrameDecompressor()
            out: bytes = dec.decompress(pending, max_length=min(step, cap - total + 1))
            while True:
                total += len(out)
                if total > cap:
                    limit_exceeded(_NAME, cap)
                chunks.append(out)
                if dec.eof or dec.needs_input:
                    break
                step *= 2
                out = dec.decompress(b"", max_length=min(step, cap - total + 1))
            if not dec.eof:
                corrupt(_NAME, "truncated frame")
            pending = dec.unused_data
    except RuntimeError as exc:  # lz4.frame reports every decoding error this way
        corrupt(_NAME, exc)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def _fix_header_checksum(data: bytes) -> bytes:
    if len(data) < 7 or data[:4] != _MAGIC:
        return data  # let the decoder report it
    flg = data[4]
    hc_pos = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    if hc_pos >= len(data):
        return data
    good = (_xxh32(data[4:hc_pos]) >> 8) & 0xFF
    if data[hc_pos] == good:
        return data
    return data[:hc_pos] + bytes((good,)) + data[hc_pos + 1 :]


_P1 = 2654435761
_P2 = 2246822519
_P3 = 3266489917
_P4 = 668265263
_P5 = 374761393
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 of an input shorter than 16 bytes (the single-stripe-free path)."""
    if len(data) >= 16:
        raise ValueError("only short inputs are supported")
    acc = (seed + _P5 + len(data)) & _M32
    pos = 0
    while pos + 4 <= len(data):
        lane = int.from_bytes(data[pos : pos + 4], "little")
        acc = (_rotl((acc + lane * _P3) & _M32, 17) * _P4) & _M32
        pos += 4
    while pos < len(data):
        acc = (_rotl((acc + data[pos] * _P5) & _M32, 11) * _P1) & _M32
        pos += 1
    acc ^= acc >> 15
    acc = (acc * _P2) & _M32
    acc ^= acc >> 13
    acc = (acc * _P3) & _M32
    acc ^= acc >> 16
    return acc
