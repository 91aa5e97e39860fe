"""Reliability scenario B4 (reliability guide 2e), deterministic primitive cases.

The generated-decoder fuzzer (tests/protocol/test_fuzz_decoders.py) hits these lies at
random positions; here each one is pinned at the primitive that must catch it, so a
regression names the rule it broke: lengths above the bytes remaining, negative
non-nullable lengths, varints longer than 5 (int32) or 10 (int64) bytes. Each must raise
a KafkaProtocolError subclass with bounded memory.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable

import pytest

from protocol._errors_base import KafkaProtocolError
from protocol.primitives import Reader

CASES: list[tuple[str, bytes, Callable[[Reader], object]]] = [
    ("string length beyond the buffer", struct.pack(">h", 32000) + b"ab", Reader.string),
    ("bytes length beyond the buffer", struct.pack(">i", 0x7FFFFFFF) + b"ab", Reader.bytes_),
    ("array count beyond the buffer", struct.pack(">i", 0x7FFFFFFF) + b"\0" * 8,
     Reader.array_length),
    ("compact array count beyond the buffer", b"\xff\xff\xff\xff\x07" + b"\0" * 4,
     Reader.compact_array_length),
    ("negative non-nullable string", struct.pack(">h", -2) + b"ab", Reader.string),
    ("null non-nullable string", struct.pack(">h", -1), Reader.string),
    ("negative non-nullable bytes", struct.pack(">i", -2) + b"ab", Reader.bytes_),
    ("null non-nullable bytes", struct.pack(">i", -1), Reader.bytes_),
    ("null non-nullable compact string", b"\x00", Reader.compact_string),
    ("6-byte unsigned varint", b"\x80\x80\x80\x80\x80\x01", Reader.unsigned_varint),
    ("6-byte varint", b"\xff\xff\xff\xff\xff\x01", Reader.varint),
    ("11-byte varlong", b"\xff" * 10 + b"\x01", Reader.varlong),
    ("unterminated varint", b"\x80\x80", Reader.varint),
]  # fmt: skip


@pytest.mark.parametrize(("data", "read"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_b4_hostile_primitive_is_a_protocol_error_with_bounded_memory(
    data: bytes, read: Callable[[Reader], object]
) -> None:
    """B4: only KafkaProtocolError, and no allocation sized by the lie."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with pytest.raises(KafkaProtocolError):
            read(Reader(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 64 * 1024
