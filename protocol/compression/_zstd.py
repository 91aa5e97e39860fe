"""zstd codec (Codec.ZSTD, attribute value 4, record batch v2 only).

Wire layout: one or more RFC 8878 zstd frames (magic ``28 b5 2f fd``). Java's
ZstdOutputStream streams, so its frames carry no content size; when a frame
does claim one we ignore it, because a hostile claim must not size an
allocation.

Bounding the output: zstandard's decompressobj has no ``max_length`` and its
stream reader hides truncated frames (it just stops), so we feed the
decompressobj small input slices. A zstd block inflates to at most 128 KiB
and takes at least 4 input bytes (3-byte header + 1 RLE byte), so a slice of
``k`` bytes yields at most ``(k / 4 + 1) * 128 KiB``. Slices are sized from the
remaining budget, which keeps the overshoot past the cap within a few blocks.
``eof`` on the decompressobj then tells a complete frame from a truncated one.
"""

from __future__ import annotations

import zstandard

from protocol.compression._common import corrupt, limit_exceeded

_NAME = "zstd"
_DEFAULT_LEVEL = 3  # zstd's and Java's default
_BLOCK_SHIFT = 17  # 128 KiB, the largest block output
_MIN_SLICE = 16


def compress(data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    comp = zstandard.ZstdCompressor(level=_DEFAULT_LEVEL if level is None else level)
    return comp.compress(data)


def decompress(data: bytes | bytearray | memoryview, cap: int) -> bytes:
    view = memoryview(data)
    if not len(view):
        corrupt(_NAME, "empty input")
    dctx = zstandard.ZstdDecompressor()
    chunks: list[bytes] = []
    total = 0
    pos = 0
    end = len(view)
    try:
        while pos < end:  # one iteration per frame
            dobj = dctx.decompressobj()
            while not dobj.eof:
                if pos >= end:
                    corrupt(_NAME, "truncated frame")
                size = max(_MIN_SLICE, ((cap - total) >> _BLOCK_SHIFT) << 2)
                stop = min(pos + size, end)
                out = dobj.decompress(view[pos:stop])
                pos = stop
                if out:
                    total += len(out)
                    if total > cap:
                        limit_exceeded(_NAME, cap)
                    chunks.append(out)
            # The last slice may run past the frame; give the rest back.
            pos -= len(dobj.unused_data)
    except zstandard.ZstdError as exc:
        corrupt(_NAME, exc)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)
