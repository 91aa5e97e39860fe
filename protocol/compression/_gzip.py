"""gzip codec (Codec.GZIP, attribute value 1).

Wire layout: an RFC 1952 gzip stream (10-byte header ``1f 8b 08 ...``, raw
deflate, CRC-32 and ISIZE trailer), as Java's GZIPOutputStream writes it. We
also accept several concatenated members and a bare zlib stream (wbits 47
auto-detects both headers) because other clients have written both.
"""

from __future__ import annotations

import zlib

from protocol.compression._common import corrupt, limit_exceeded

_NAME = "gzip"
_WBITS_GZIP = 31  # 16 + 15: gzip header and trailer
_WBITS_AUTO = 47  # 32 + 15: detect gzip or zlib header


def compress(data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    # Java's default deflate level is 6; zlib's -1 means the same.
    comp = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, _WBITS_GZIP)
    return comp.compress(data) + comp.flush()


def decompress(data: bytes | bytearray | memoryview, cap: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    pending: bytes | bytearray | memoryview = data
    try:
        while True:
            dec = zlib.decompressobj(_WBITS_AUTO)
            # zlib grows its output buffer in small blocks, so max_length does
            # not pre-allocate; one call per member suffices.
            out = dec.decompress(pending, cap - total + 1)
            total += len(out)
            if total > cap:
                limit_exceeded(_NAME, cap)
            if not dec.eof:
                corrupt(_NAME, "truncated stream")
            chunks.append(out)
            pending = dec.unused_data
            # Trailing zero padding is tolerated (some writers pad to a block).
            if not pending.strip(b"\x00"):
                break
    except zlib.error as exc:
        corrupt(_NAME, exc)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)
