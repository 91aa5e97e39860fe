"""Partitioner: murmur2 golden values, peer-client agreement, sticky behaviour."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kclient.producer.partitioner import (
    DefaultPartitioner,
    KeyHashes,
    Partitioner,
    StickyPartitioner,
    murmur2,
    partition_for_key,
)


def _kafka_python_murmur2() -> Callable[[bytes], int]:
    # kafka-python's package import trips a DeprecationWarning in its schema
    # loader; the suite turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.partitioner.default import (  # type: ignore[import-untyped]
            murmur2 as kp_murmur2,
        )
    return kp_murmur2  # type: ignore[no-any-return]


# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints). The
# binary vector is from a JVM-generated table (Kafka client 1.0.0) kept in a Go
# port's tests; it exercises a 2-byte tail of non-ASCII-range bytes.
JAVA_VECTORS: list[tuple[bytes, int]] = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (bytes([12, 42, 56, 24, 109, 111]), 274204207),
]


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS)
def test_murmur2_matches_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS)
def test_partition_for_key_is_positive_hash_mod_n(data: bytes, expected: int) -> None:
    for n in (1, 3, 7, 12, 1000):
        assert partition_for_key(data, n) == (expected & 0x7FFFFFFF) % n


def test_murmur2_every_tail_length() -> None:
    # 0..3 trailing bytes after whole words take different branches.
    kp_murmur2 = _kafka_python_murmur2()

    for length in range(0, 13):
        data = bytes(range(200, 200 + length))
        assert murmur2(data) & 0xFFFFFFFF == kp_murmur2(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_agrees_with_kafka_python(data: bytes) -> None:
    kp_murmur2 = _kafka_python_murmur2()

    # kafka-python returns the same bits as an unsigned int.
    assert murmur2(data) & 0xFFFFFFFF == kp_murmur2(data)
    assert -(2**31) <= murmur2(data) < 2**31


def test_keyed_partition_agrees_with_kafka_python_default_partitioner() -> None:
    kp_murmur2 = _kafka_python_murmur2()

    rng = random.Random(7)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 64))
        n = rng.randrange(1, 50)
        assert partition_for_key(key, n) == (kp_murmur2(key) & 0x7FFFFFFF) % n


def test_key_hashes_agree_with_partition_for_key_and_stay_bounded() -> None:
    hashes = KeyHashes(limit=100)
    rng = random.Random(11)
    keys = [rng.randbytes(rng.randrange(0, 120)) for _ in range(300)]
    for _ in range(3):  # repeats are answered from the table
        for key in keys:
            n = rng.randrange(1, 50)
            assert hashes.partition(key, n) == partition_for_key(key, n)
            assert len(hashes._hashes) <= 100
    assert all(len(key) <= 64 for key in hashes._hashes)  # long keys are never kept


def test_keyed_partition_agrees_with_librdkafka_murmur2_random() -> None:
    """confluent-kafka's murmur2_random, read back from delivery reports.

    librdkafka's in-process mock cluster (loopback, no broker needed)
    auto-creates the topic; its delivery report says where each key went.
    """
    confluent_kafka = pytest.importorskip("confluent_kafka")
    producer = confluent_kafka.Producer(
        {
            "test.mock.num.brokers": 1,
            "partitioner": "murmur2_random",
            "linger.ms": 0,
            "log_level": 0,
        }
    )
    rng = random.Random(11)
    keys = [b""] + [rng.randbytes(rng.randrange(1, 40)) for _ in range(500)]
    placed: dict[bytes, int] = {}

    def on_delivery(err: object, msg: object) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()  # type: ignore[attr-defined]

    for key in keys:
        producer.produce("partitioner-compat", b"v", key=key, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    metadata = producer.list_topics("partitioner-compat", timeout=5)
    count = len(metadata.topics["partitioner-compat"].partitions)
    assert count > 1
    assert {k: partition_for_key(k, count) for k in keys} == placed


def test_default_partitioner_keyed_uses_all_partitions_not_available() -> None:
    sticky = StickyPartitioner(100, rng=random.Random(1))
    part = DefaultPartitioner(sticky)
    for key in (b"a", b"b", b"user-42"):
        # A key never moves because a leader is briefly unavailable.
        assert part("t", key, range(6), [0]) == partition_for_key(key, 6)


def test_default_partitioner_ignore_keys_spreads_like_keyless() -> None:
    sticky = StickyPartitioner(100, rng=random.Random(1))
    part = DefaultPartitioner(sticky, ignore_keys=True)
    first = part("t", b"k", range(6), range(6))
    assert part("t", b"other", range(6), range(6)) == first  # sticky, not hashed


def test_sticky_stays_for_batch_size_bytes_then_moves() -> None:
    sticky = StickyPartitioner(1000, rng=random.Random(3))
    parts = list(range(8))
    chosen = sticky.partition("t", parts, parts)
    for _ in range(9):
        assert sticky.partition("t", parts, parts) == chosen
        sticky.on_append("t", chosen, 100)
    sticky.on_append("t", chosen, 100)  # 1000 bytes reached
    moves: Counter[int] = Counter()
    for _ in range(200):
        p = sticky.partition("t", parts, parts)
        moves[p] += 1
        sticky.on_append("t", p, 1000)
    # Uniform over time: every partition was used.
    assert set(moves) == set(parts)


def test_sticky_ignores_appends_to_other_partitions() -> None:
    sticky = StickyPartitioner(100, rng=random.Random(3))
    chosen = sticky.partition("t", range(4), range(4))
    sticky.on_append("t", (chosen + 1) % 4, 10_000)  # a keyed record elsewhere
    assert sticky.partition("t", range(4), range(4)) == chosen


def test_sticky_prefers_available_partitions() -> None:
    sticky = StickyPartitioner(1, rng=random.Random(5))
    seen = set()
    for _ in range(100):
        p = sticky.partition("t", range(6), [1, 4])
        seen.add(p)
        sticky.on_append("t", p, 1)
    assert seen == {1, 4}


def test_sticky_falls_back_to_all_partitions_when_none_available() -> None:
    sticky = StickyPartitioner(1, rng=random.Random(5))
    assert sticky.partition("t", [0, 1, 2], []) in {0, 1, 2}


def test_sticky_invalidate_forces_a_new_choice() -> None:
    sticky = StickyPartitioner(10**9, rng=random.Random(5))
    assert sticky.partition("t", range(4), [2]) == 2
    assert sticky.partition("t", range(4), [3]) == 2  # sticky until told otherwise
    sticky.invalidate("t")
    assert sticky.partition("t", range(4), [3]) == 3
    sticky.invalidate()
    assert sticky.partition("t", range(4), [1]) == 1


def test_adaptive_sticky_avoids_loaded_partitions() -> None:
    loads = {0: 0, 1: 0, 2: 10_000_000, 3: 0}  # partition 2's broker is slow

    def load(topic: str, candidates: Sequence[int]) -> list[int]:
        return [loads[p] for p in candidates]

    sticky = StickyPartitioner(1000, load=load, rng=random.Random(9))
    counts: Counter[int] = Counter()
    for _ in range(3000):
        p = sticky.partition("t", range(4), range(4))
        counts[p] += 1
        sticky.on_append("t", p, 1000)
    assert counts[2] < 10
    assert min(counts[0], counts[1], counts[3]) > 800


def test_adaptive_sticky_is_uniform_when_loads_are_equal() -> None:
    sticky = StickyPartitioner(1000, load=lambda t, c: [5] * len(c), rng=random.Random(2))
    counts: Counter[int] = Counter()
    for _ in range(4000):
        p = sticky.partition("t", range(4), range(4))
        counts[p] += 1
        sticky.on_append("t", p, 1000)
    assert all(800 < counts[p] < 1200 for p in range(4))


def test_custom_partitioner_protocol() -> None:
    def by_length(
        topic: str, key: bytes | None, all_p: Sequence[int], available: Sequence[int]
    ) -> int:
        return len(key or b"") % len(all_p)

    custom: Partitioner = by_length
    assert custom("t", b"abc", range(2), range(2)) == 1
    default: Partitioner = DefaultPartitioner(StickyPartitioner(10))
    assert default("t", b"21", range(10), range(10)) == partition_for_key(b"21", 10)
