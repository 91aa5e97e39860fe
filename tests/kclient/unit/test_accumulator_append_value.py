"""RecordAccumulator.append_value (send's fast path) against the general append()."""

from __future__ import annotations

import random

import pytest

from kclient.config import ProducerConfig
from kclient.producer.accumulator import AccumulatorSettings, RecordAccumulator
from kclient.producer.batch import BATCH_OVERHEAD, RECORD_OVERHEAD, records_encoder
from kclient.producer.compression_ratio import CompressionRatioEstimator
from kclient.producer.partitioner import StickyState

TP = ("t", 0)
TS = 1_700_000_000_000


def make(batch_size: int = 2000, buffer_memory: int = 1 << 20) -> RecordAccumulator:
    return RecordAccumulator(
        AccumulatorSettings(batch_size=batch_size, linger_ms=5, buffer_memory=buffer_memory,
                            delivery_timeout_ms=1000, retry_backoff_ms=10,
                            retry_backoff_max_ms=10, max_in_flight=5),
        rng=random.Random(0),
    )  # fmt: skip


def fast_or_general(acc: RecordAccumulator, value: bytes, counter: StickyState) -> bool:
    """One record the way ``send`` does it: the fast path, else the general append
    (whose size the caller counts). Returns whether the fast path took it."""
    future = acc.append_value(acc.partition(TP), TS, value, counter)
    if future is not None:
        return True
    result = acc.append(TP, TS, None, value, (), 0.0)
    assert result is not None
    counter.produced += result[2]
    return False


@pytest.mark.parametrize("batch_size", [200, 2000, 50_000])
def test_same_batches_bytes_and_counts_as_append(batch_size: int) -> None:
    rng = random.Random(3)
    values = [bytes(rng.randrange(0, 300)) for _ in range(400)]
    fast, general = make(batch_size), make(batch_size)
    fast_counter, general_counter = StickyState(0), StickyState(0)
    taken = sum(fast_or_general(fast, v, fast_counter) for v in values)
    for value in values:
        result = general.append(TP, TS, None, value, (), 0.0)
        assert result is not None
        general_counter.produced += result[2]
    assert 0 < taken < len(values)  # both paths ran
    encoder = records_encoder()
    assert [(b.size, b.record_count, b.build(encoder)) for b in fast.queued(TP)] == [
        (b.size, b.record_count, b.build(encoder)) for b in general.queued(TP)
    ]
    assert fast.used_bytes == general.used_bytes
    assert fast_counter.produced == general_counter.produced


def test_refuses_without_an_open_batch_and_before_filling_one() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    acc = make(batch_size=BATCH_OVERHEAD + 3 * record)  # three records per batch
    counter = StickyState(0)
    part = acc.partition(TP)
    assert acc.append_value(part, TS, value, counter) is None  # no batch yet
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    future = acc.append_value(part, TS, value, counter)
    assert future is not None and counter.produced == record
    # The third record fills the batch: the general path must take it (it wakes the
    # Sender); the fast path leaves everything untouched.
    used = acc.used_bytes
    assert acc.append_value(part, TS, value, counter) is None
    assert (acc.used_bytes, counter.produced, acc.queued(TP)[0].record_count) == (used, record, 2)
    # A drained batch is no longer open.
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    acc.drain([1], lambda tp: 1, 1 << 20, 0.0)
    assert acc.append_value(part, TS, value, counter) is None


def test_refuses_when_the_buffer_is_full_and_leaves_the_refusal_to_append() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    acc = make(batch_size=10_000, buffer_memory=BATCH_OVERHEAD + 2 * record + 10)
    counter = StickyState(0)
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    assert acc.append_value(acc.partition(TP), TS, value, counter) is not None
    assert acc.append_value(acc.partition(TP), TS, value, counter) is None
    assert acc.used_bytes == BATCH_OVERHEAD + 2 * record
    assert acc.append(TP, TS, None, value, (), 0.0) is None  # the general path refuses


def test_compressed_batches_count_the_wire_share() -> None:
    batch_size = 10_000
    settings = AccumulatorSettings(batch_size=batch_size, linger_ms=5, buffer_memory=1 << 20,
                                   delivery_timeout_ms=1000, retry_backoff_ms=10,
                                   retry_backoff_max_ms=10, max_in_flight=5,
                                   compressed=True)  # fmt: skip
    fast, general = RecordAccumulator(settings), RecordAccumulator(settings)
    for acc in (fast, general):  # batches now take twice batch_size of input
        ratios = acc._ratios
        assert isinstance(ratios, CompressionRatioEstimator)
        for _ in range(200):
            ratios.observe("t", 0.5)
    fast_counter, general_counter = StickyState(0), StickyState(0)
    for _ in range(300):
        fast_or_general(fast, b"w" * 100, fast_counter)
        result = general.append(TP, TS, None, b"w" * 100, (), 0.0)
        assert result is not None
        general_counter.produced += result[2]
    assert fast.queued(TP)[0].capacity > batch_size
    assert fast_counter.produced == general_counter.produced < 300 * (RECORD_OVERHEAD + 100)


def test_batch_size_above_max_request_size_is_capped() -> None:
    config = ProducerConfig(bootstrap_servers="127.0.0.1:9092", max_request_size=100_000)
    assert config.batch_size > config.max_request_size  # the 256 KiB default
    assert AccumulatorSettings.from_config(config).batch_size == 100_000
    small = config.evolve(batch_size=4096)
    assert AccumulatorSettings.from_config(small).batch_size == 4096
