"""Structure-aware fuzzing of every generated decoder.

Each case starts from a populated, valid encoding (drawn from the round-trip
strategies) and mutates it the ways hostile or broken peers do: flipped bits,
every length/count slot overwritten with a lie, varint continuation bytes
forced on. Whatever the mutation, the decoder must either return a value or
raise a ``KafkaProtocolError`` subclass, and must never allocate more than a
small multiple of its input (tracemalloc), which is what stops a lying length
from turning into a huge allocation.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol._errors_base import KafkaProtocolError
from protocol.api import Message
from tests.protocol.test_generated_roundtrip import CASES, PROFILE, message_strategy

# Values a lying int32 length or count slot gets: just below/above the truth,
# null markers, and the largest possible claim.
_HOSTILE_INT32 = (-2, -1, 0, 1, 0x7FFFFFFF, 0x7FFFFFF0)
_MAX_SLOTS = 48
_BIT_FLIPS = 48


def _memory_budget(size: int) -> int:
    return 64 * 1024 + 4 * size


def _mutations(encoded: bytes, rng: random.Random) -> Iterator[bytes]:
    size = len(encoded)
    positions = list(range(size))
    rng.shuffle(positions)
    for pos in positions[:_BIT_FLIPS]:
        mutated = bytearray(encoded)
        mutated[pos] ^= 1 << rng.randrange(8)
        yield bytes(mutated)
    for pos in sorted(positions[:_MAX_SLOTS]):
        if pos + 4 <= size:
            for lie in _HOSTILE_INT32:
                mutated = bytearray(encoded)
                struct.pack_into(">i", mutated, pos, lie)
                yield bytes(mutated)
        for byte in (0x80, 0xFF):  # an unterminated or overlong varint
            mutated = bytearray(encoded)
            mutated[pos] = byte
            yield bytes(mutated)
    yield encoded + encoded  # two messages spliced together


def _decode_within_budget(cls: type[Message], version: int, data: bytes) -> None:
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    try:
        cls.decode(data, version)
    except KafkaProtocolError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    assert peak - before <= _memory_budget(len(data)), (
        f"{cls.__name__} v{version} allocated {peak - before} bytes for {len(data)} input bytes"
    )


@pytest.mark.parametrize(("cls", "version"), CASES)
@settings(PROFILE, max_examples=1)
@given(data=st.data())
def test_mutated_encodings_fail_cleanly_with_bounded_memory(
    cls: type[Message], version: int, data: st.DataObject
) -> None:
    value: Any = data.draw(message_strategy(cls, version))
    encoded = value.encode(version)
    rng = random.Random(f"{cls.__name__}-{version}")
    tracemalloc.start()
    try:
        for mutated in _mutations(encoded, rng):
            _decode_within_budget(cls, version, mutated)
    finally:
        tracemalloc.stop()
