"""Compression codecs for record batches: one call each way, bounded on decode.

Wire facts: a record batch names its codec in the low three bits of its
attributes (``0`` none, ``1`` gzip, ``2`` snappy, ``3`` lz4, ``4`` zstd; 5-7
are undefined) and the compressed bytes replace the records section. Each
codec module documents its own framing.

Decoding never trusts a size the data declares: output grows in steps and
stops with :class:`~protocol._errors_base.DecompressionLimitError` once it
passes ``max_size``. Every third-party failure becomes a
:class:`~protocol._errors_base.CorruptRecordError`; an unknown codec number is
an :class:`~protocol._errors_base.UnsupportedCompressionError`. Codec
libraries are imported on first use so that importing the codec package
stays cheap; a missing library also becomes UnsupportedCompressionError.
"""

from __future__ import annotations

import importlib
from enum import IntEnum
from types import ModuleType
from typing import Final

from protocol._errors_base import UnsupportedCompressionError
from protocol.compression._common import limit_exceeded

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "Codec",
    "compress",
    "decompress",
    "is_available",
]

DEFAULT_MAX_DECOMPRESSED_SIZE: Final = 64 * 1024 * 1024
"""Default cap on one batch's decompressed records section (64 MiB)."""


class Codec(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_MODULES: Final[dict[int, str]] = {
    Codec.GZIP: "protocol.compression._gzip",
    Codec.SNAPPY: "protocol.compression._snappy",
    Codec.LZ4: "protocol.compression._lz4",
    Codec.ZSTD: "protocol.compression._zstd",
}
_loaded: dict[int, ModuleType] = {}


def _module(codec: int) -> ModuleType:
    mod = _loaded.get(codec)
    if mod is not None:
        return mod
    name = _MODULES.get(codec)
    if name is None:
        raise UnsupportedCompressionError(f"unknown compression codec {codec}")
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        raise UnsupportedCompressionError(
            f"compression codec {Codec(codec).name} needs a library that is not installed: {exc}"
        ) from None
    _loaded[codec] = mod
    return mod


def is_available(codec: int) -> bool:
    """Whether ``codec`` is known and its library imports."""
    if codec == Codec.NONE:
        return True
    try:
        _module(codec)
    except UnsupportedCompressionError:
        return False
    return True


def compress(
    codec: int, data: bytes | bytearray | memoryview, *, level: int | None = None
) -> bytes:
    """Compress ``data`` the way the Java client does for ``codec``.

    ``level`` is the codec's own level (gzip 1-9, lz4 0-16, zstd -7..22); None
    picks the codec default. Codec.NONE returns the data unchanged.
    """
    if codec == Codec.NONE:
        return bytes(data)
    out: bytes = _module(codec).compress(data, level)
    return out


def decompress(
    codec: int,
    data: bytes | bytearray | memoryview,
    *,
    max_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    legacy: bool = False,
) -> bytes:
    """Decompress ``data``; at most ``max_size`` bytes of output are produced.

    ``legacy`` marks data from a magic 0/1 message set, which enables the
    old Kafka lz4 header-checksum workaround.
    """
    if codec == Codec.NONE:
        if len(data) > max_size:
            limit_exceeded("uncompressed", max_size)
        return bytes(data)
    mod = _module(codec)
    if legacy and codec == Codec.LZ4:
        out: bytes = mod.decompress(data, max_size, legacy=True)
    else:
        out = mod.decompress(data, max_size)
    return out
