"""protocol.compression: round trips, Java-compatible framing, corrupt input, bombs."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable

import cramjam
import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol._errors_base import (
    CorruptRecordError,
    DecompressionLimitError,
    KafkaProtocolError,
    UnsupportedCompressionError,
)
from protocol.compression import (
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    Codec,
    compress,
    decompress,
    is_available,
)
from protocol.compression._lz4 import _xxh32

CODECS = list(Codec)
COMPRESSED = [c for c in Codec if c != Codec.NONE]
GiB = 1 << 30
MiB = 1 << 20


@pytest.mark.parametrize("codec", CODECS)
def test_all_codecs_available(codec: Codec) -> None:
    assert is_available(codec)


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000) | st.builds(lambda n: bytes(n), st.integers(0, 300_000)))
def test_round_trip(codec: Codec, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


@pytest.mark.parametrize("codec", COMPRESSED)
@pytest.mark.parametrize("level", [1, 5])
def test_levels(codec: Codec, level: int) -> None:
    data = b"abc" * 10_000
    assert decompress(codec, compress(codec, data, level=level)) == data


def test_unknown_codec() -> None:
    for code in (5, 6, 7, 99):
        with pytest.raises(UnsupportedCompressionError):
            decompress(code, b"xx")
        with pytest.raises(UnsupportedCompressionError):
            compress(code, b"xx")
        assert not is_available(code)


def test_memoryview_input() -> None:
    data = b"0123456789" * 1000
    for codec in CODECS:
        packed = compress(codec, memoryview(data))
        assert decompress(codec, memoryview(bytearray(packed))) == data


# -- framing matches what Java writes ---------------------------------------------


def test_gzip_writes_gzip_format_and_reads_zlib_and_multimember() -> None:
    data = b"hello kafka " * 100
    packed = compress(Codec.GZIP, data)
    assert packed[:3] == b"\x1f\x8b\x08"
    assert decompress(Codec.GZIP, zlib.compress(data)) == data
    assert decompress(Codec.GZIP, packed + packed) == data + data


def test_snappy_writes_xerial_framing() -> None:
    data = bytes(range(256)) * 300  # 76800 bytes: three 32 KiB blocks
    packed = compress(Codec.SNAPPY, data)
    magic, version, compat = struct.unpack_from(">8sii", packed)
    assert (magic, version, compat) == (b"\x82SNAPPY\x00", 1, 1)
    pos, blocks = 16, []
    while pos < len(packed):
        (size,) = struct.unpack_from(">i", packed, pos)
        blocks.append(bytes(cramjam.snappy.decompress_raw(packed[pos + 4 : pos + 4 + size])))
        pos += 4 + size
    assert [len(b) for b in blocks] == [32768, 32768, 11264]
    assert b"".join(blocks) == data


def test_snappy_reads_raw() -> None:
    data = b"raw snappy " * 500
    assert decompress(Codec.SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data


def test_lz4_frame_flags_match_java() -> None:
    packed = compress(Codec.LZ4, b"x" * 200_000)
    assert packed[:4] == b"\x04\x22\x4d\x18"
    flg, bd = packed[4], packed[5]
    assert flg >> 6 == 1  # version 01
    assert flg & 0x20  # independent blocks
    assert not flg & 0x10  # no block checksum
    assert not flg & 0x08  # no content size
    assert not flg & 0x04  # no content checksum
    assert (bd >> 4) & 0x7 == 4  # 64 KiB blocks


def test_zstd_reads_multiple_frames() -> None:
    comp = zstandard.ZstdCompressor(write_content_size=False)
    assert decompress(Codec.ZSTD, comp.compress(b"a" * 1000) + comp.compress(b"b")) == (
        b"a" * 1000 + b"b"
    )


def test_xxh32_known_vectors() -> None:
    assert _xxh32(b"") == 0x02CC5D05
    assert _xxh32(b"a") == 0x550D7456
    assert _xxh32(b"abc") == 0x32D153FF


def _break_lz4_header_checksum(frame: bytes) -> bytes:
    # Kafka 0.8/0.9 hashed magic + descriptor instead of the descriptor alone.
    hc_pos = 6 + (8 if frame[4] & 0x08 else 0)
    bad = (_xxh32(frame[0:hc_pos]) >> 8) & 0xFF
    return frame[:hc_pos] + bytes((bad,)) + frame[hc_pos + 1 :]


@pytest.mark.parametrize("store_size", [False, True])
def test_lz4_old_kafka_header_checksum_is_tolerated_for_legacy(store_size: bool) -> None:
    data = b"legacy lz4 " * 100
    broken = _break_lz4_header_checksum(lz4.frame.compress(data, store_size=store_size))
    assert decompress(Codec.LZ4, broken, legacy=True) == data
    with pytest.raises(CorruptRecordError):
        decompress(Codec.LZ4, broken)  # v2 batches must carry a correct checksum


# -- corrupt input -------------------------------------------------------------------


@pytest.mark.parametrize("codec", COMPRESSED)
def test_garbage_raises_corrupt(codec: Codec) -> None:
    # (A lone zero byte is a valid empty raw-snappy block.)
    for junk in (b"", b"\x00\x01", b"\xff" * 64, b"not compressed at all" * 3):
        with pytest.raises(KafkaProtocolError):
            decompress(codec, junk)


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.LZ4, Codec.ZSTD, Codec.SNAPPY])
def test_truncation_never_passes_silently(codec: Codec) -> None:
    data = bytes(range(256)) * 400
    packed = compress(codec, data)
    # Snappy's xerial header alone is a valid empty stream; start past it.
    first = 17 if codec == Codec.SNAPPY else 0
    for cut in range(first, len(packed), max(1, len(packed) // 300)):
        try:
            out = decompress(codec, packed[:cut])
        except KafkaProtocolError:
            continue
        # Xerial framing has no end mark: a cut between blocks is a shorter
        # valid stream (the batch's record count catches it one level up).
        if codec == Codec.SNAPPY and len(out) % 32768 == 0 and data.startswith(out):
            continue
        pytest.fail(f"{codec.name}: truncation at {cut} decoded {len(out)} bytes silently")


@pytest.mark.parametrize("codec", COMPRESSED)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_bit_flips_raise_only_protocol_errors(codec: Codec, data: st.DataObject) -> None:
    packed = bytearray(compress(codec, b"some text that compresses " * 40))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(packed) - 1))
        packed[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decompress(codec, bytes(packed), max_size=1 * MiB)
    except KafkaProtocolError:
        pass


@pytest.mark.parametrize("codec", COMPRESSED)
@settings(max_examples=100, deadline=None)
@given(junk=st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_errors(codec: Codec, junk: bytes) -> None:
    try:
        decompress(codec, junk, max_size=1 * MiB)
    except KafkaProtocolError:
        pass


# -- decompression bombs ------------------------------------------------------------


def _gzip_bomb(size: int) -> bytes:
    # After a full flush the deflate state is reset, so every further 1 MiB of
    # zeros compresses to the same bytes: repeat them instead of compressing 1 GiB.
    zeros = bytes(MiB)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH) == block
    body = first + block * (size // MiB - 1)
    trailer = struct.pack("<II", _crc32_of_zeros(size), size & 0xFFFFFFFF)
    return body + comp.flush(zlib.Z_FINISH)[:-8] + trailer


def _crc32_of_zeros(size: int) -> int:
    crc, zeros = 0, bytes(MiB)
    for _ in range(size // MiB):
        crc = zlib.crc32(zeros, crc)
    return crc


def _zstd_bomb(size: int) -> bytes:
    comp = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(MiB)
    return b"".join([comp.compress(zeros) for _ in range(size // MiB)] + [comp.flush()])


def _lz4_bomb(size: int) -> bytes:
    comp = lz4.frame.LZ4FrameCompressor(block_linked=False)
    zeros = bytes(MiB)
    parts = [comp.begin()] + [comp.compress(zeros) for _ in range(size // MiB)] + [comp.flush()]
    return b"".join(parts)


def _snappy_claim(size: int) -> bytes:
    # A raw snappy block whose length preamble claims ``size`` bytes.
    preamble = bytearray()
    while size > 0x7F:
        preamble.append((size & 0x7F) | 0x80)
        size >>= 7
    preamble.append(size)
    return bytes(preamble) + b"\x00" * 32


def _xerial_many_claims(per_block: int, blocks: int) -> bytes:
    block = _snappy_claim(per_block)
    body = (struct.pack(">i", len(block)) + block) * blocks
    return struct.pack(">8sii", b"\x82SNAPPY\x00", 1, 1) + body


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "gzip": _gzip_bomb(GiB),
        "zstd": _zstd_bomb(GiB),
        "lz4": _lz4_bomb(GiB),
    }


def test_gzip_bomb_is_valid_gzip() -> None:
    small = _gzip_bomb(3 * MiB)
    assert zlib.decompress(small, 47) == bytes(3 * MiB)


def _assert_bounded(fn: Callable[[], object], cap: int, seconds: float = 5.0) -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(DecompressionLimitError):
            fn()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds
    # Output is capped at ``cap`` plus at most a couple of codec blocks, and
    # chunks are joined once (at most twice the output).
    assert peak < 2 * cap + 4 * MiB, f"peak {peak} bytes for a {cap}-byte cap"


@pytest.mark.parametrize(("name", "codec"), [("gzip", 1), ("lz4", 3), ("zstd", 4)])
def test_one_gib_bomb_small_cap(bombs: dict[str, bytes], name: str, codec: int) -> None:
    cap = 4 * MiB
    _assert_bounded(lambda: decompress(codec, bombs[name], max_size=cap), cap)


@pytest.mark.parametrize(("name", "codec"), [("gzip", 1), ("lz4", 3), ("zstd", 4)])
def test_one_gib_bomb_default_cap(bombs: dict[str, bytes], name: str, codec: int) -> None:
    _assert_bounded(lambda: decompress(codec, bombs[name]), DEFAULT_MAX_DECOMPRESSED_SIZE)


def test_snappy_claimed_sizes_rejected_before_allocation() -> None:
    cap = 4 * MiB
    _assert_bounded(lambda: decompress(Codec.SNAPPY, _snappy_claim(GiB), max_size=cap), cap)
    # Many blocks, each plausible, together over the cap.
    many = _xerial_many_claims(32 * 1024, 1024)
    _assert_bounded(lambda: decompress(Codec.SNAPPY, many, max_size=cap), cap)


def test_zstd_frame_claiming_huge_content_size() -> None:
    # A frame header claiming 64 GiB of content in front of a tiny block.
    comp = zstandard.ZstdCompressor(write_content_size=True)
    frame = bytearray(comp.compress(b"tiny"))
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == 4
    fhd = frame[4]
    assert fhd >> 6 == 0 and fhd & 0x20  # 1-byte content size, single segment
    forged = frame[:4] + bytes(((3 << 6) | 0x20,)) + struct.pack("<Q", 64 * GiB) + frame[6:]
    tracemalloc.start()
    try:
        with pytest.raises(KafkaProtocolError):
            decompress(Codec.ZSTD, bytes(forged))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


def test_uncompressed_limit() -> None:
    with pytest.raises(DecompressionLimitError):
        decompress(Codec.NONE, b"x" * 100, max_size=99)
    assert decompress(Codec.NONE, b"x" * 100, max_size=100) == b"x" * 100


@pytest.mark.parametrize("codec", COMPRESSED)
def test_exact_cap_is_allowed(codec: Codec) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    packed = compress(codec, data)
    assert decompress(codec, packed, max_size=len(data)) == data
    with pytest.raises(DecompressionLimitError):
        decompress(codec, packed, max_size=len(data) - 1)
