"""Adaptive sticky partitioning wired to the accumulator: it reports, the partitioner decides."""

from __future__ import annotations

import random
from collections import Counter

from kclient.config import ProducerConfig
from kclient.producer.accumulator import AccumulatorSettings, RecordAccumulator
from kclient.producer.partitioner import StickyPartitioner
from kclient.producer.producer import AsyncProducer

TOPIC = "t"
BATCH = 1000
VALUE = b"v" * 100


def accumulator() -> RecordAccumulator:
    return RecordAccumulator(
        AccumulatorSettings(
            batch_size=BATCH,
            linger_ms=5,
            buffer_memory=1 << 24,
            delivery_timeout_ms=120_000,
            retry_backoff_ms=100,
            retry_backoff_max_ms=100,
            max_in_flight=5,
        ),
        rng=random.Random(0),
    )


def queue(acc: RecordAccumulator, partition: int, records: int) -> int:
    """Queue ``records`` keyless records on ``partition``; return their estimated bytes."""
    total = 0
    for _ in range(records):
        result = acc.append((TOPIC, partition), 1000, None, VALUE, (), 0.0)
        assert result is not None
        total += result[2]
    return total


def choices(sticky: StickyPartitioner, available: tuple[int, ...], switches: int) -> Counter[int]:
    """The partitions the sticky partitioner moves to over ``switches`` switches."""
    seen: Counter[int] = Counter()
    for _ in range(switches):
        partition = sticky.partition(TOPIC, (0, 1, 2, 3), available)
        seen[partition] += 1
        sticky.on_append(TOPIC, partition, BATCH)  # a full batch: the next call moves on
    return seen


def test_partition_loads_count_queued_and_in_flight_batches() -> None:
    acc = accumulator()
    queue(acc, 1, 30)  # 4 batches of 8 records (ten would not fit 1000 bytes)
    queue(acc, 2, 5)  # one open batch
    batches_1 = len(acc.queued((TOPIC, 1)))
    assert batches_1 == 4
    # In whole batches of batch_size bytes each.
    assert acc.partition_loads(TOPIC, [0, 1, 2, 3]) == [0, batches_1 * BATCH, BATCH, 0]
    drained = acc.drain([7], {(TOPIC, 1): 7}.get, 1 << 20, 0)[7]
    assert len(drained) == 1 and acc.in_flight_count == 1
    assert acc.partition_loads(TOPIC, [1]) == [batches_1 * BATCH]  # in flight still counts
    acc.complete(drained[0], 0)
    assert acc.partition_loads(TOPIC, [1]) == [(batches_1 - 1) * BATCH]
    assert acc.partition_loads("other", [0]) == [0]


def test_sticky_partitioner_avoids_the_partition_with_the_longest_queue() -> None:
    acc = accumulator()
    queue(acc, 2, 2000)  # partition 2's leader is slow: its queue grew to ~230 kB
    sticky = StickyPartitioner(BATCH, load=acc.partition_loads, rng=random.Random(3))
    seen = choices(sticky, (0, 1, 2, 3), 3000)
    assert seen[2] < 0.01 * 3000
    assert min(seen[0], seen[1], seen[3]) > 0.25 * 3000


def test_sticky_partitioner_is_uniform_with_equal_queues() -> None:
    acc = accumulator()
    for partition in range(4):
        queue(acc, partition, 50)
    sticky = StickyPartitioner(BATCH, load=acc.partition_loads, rng=random.Random(4))
    seen = choices(sticky, (0, 1, 2, 3), 4000)
    assert all(800 < seen[p] < 1200 for p in range(4))


def test_sticky_partitioner_skips_partitions_without_a_leader() -> None:
    acc = accumulator()
    queue(acc, 0, 500)  # the only available partitions are 0 (loaded) and 3
    sticky = StickyPartitioner(BATCH, load=acc.partition_loads, rng=random.Random(5))
    seen = choices(sticky, (0, 3), 500)
    assert set(seen) <= {0, 3}  # 1 and 2 have no leader, however empty their queues
    assert seen[3] > seen[0]


def test_producer_wires_the_accumulator_loads_into_its_partitioner() -> None:
    producer = AsyncProducer(ProducerConfig(bootstrap_servers="127.0.0.1:9092", batch_size=BATCH))
    acc = producer._acc
    for _ in range(2000):
        assert acc.append((TOPIC, 1), 1000, None, VALUE, (), 0.0) is not None
    sticky = producer._sticky
    seen = choices(sticky, (0, 1, 2, 3), 1000)
    assert seen[1] < 0.02 * 1000
