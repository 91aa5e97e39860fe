"""Compressed batch sizing: ratio estimate, capacities, max_request_size, sticky units."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from kclient.producer.accumulator import AccumulatorSettings, RecordAccumulator
from kclient.producer.batch import BATCH_OVERHEAD, DeliveryState, records_encoder
from kclient.producer.compression_ratio import (
    DETERIORATING_STEP,
    IMPROVING_STEP,
    MIN_RATIO,
    CompressionRatioEstimator,
)
from kclient.producer.delivery import DeliveryFutures
from protocol.records import Codec

TP = ("t", 0)
BATCH = 2048  # small batches keep these tests fast
MAX_REQUEST = 1_048_576


def settings(*, compressed: bool, batch_size: int = BATCH, max_request_size: int = MAX_REQUEST,
             buffer_memory: int = 64 << 20) -> AccumulatorSettings:  # fmt: skip
    return AccumulatorSettings(
        batch_size=batch_size,
        linger_ms=5,
        buffer_memory=buffer_memory,
        delivery_timeout_ms=120_000,
        retry_backoff_ms=100,
        retry_backoff_max_ms=100,
        max_in_flight=5,
        compressed=compressed,
        max_request_size=max_request_size,
    )


def fill_one_batch(acc: RecordAccumulator, value: bytes | Callable[[], bytes]) -> int:
    """Append ``value`` (or values it makes) until the open batch is full (the next
    record starts another one); return how many records the full batch took."""
    make = value if callable(value) else lambda: value
    if not acc.queued(TP):
        assert acc.append(TP, 1000, None, make(), (), 0.0) is not None
    current = acc.queued(TP)[-1]
    while acc.queued(TP)[-1] is current:
        assert acc.append(TP, 1000, None, make(), (), 0.0) is not None
    return current.record_count


def send_full(acc: RecordAccumulator, codec: Codec) -> None:
    """Send and complete the full head batch (built, as the Sender does); the open
    batch behind it stays, so no small leftover batch skews the estimate."""
    (batch,) = acc.drain([1], {TP: 1}.get, MAX_REQUEST, 0)[1]
    batch.build(records_encoder(codec))
    acc.complete(batch, 0)


def train(acc: RecordAccumulator, value: bytes | Callable[[], bytes], rounds: int) -> None:
    for _ in range(rounds):
        fill_one_batch(acc, value)
        send_full(acc, Codec.ZSTD)


# -- the estimator -------------------------------------------------------------------


def test_estimate_starts_at_no_gain_and_improves_slowly() -> None:
    est = CompressionRatioEstimator(BATCH, MAX_REQUEST)
    assert est.estimate("t") == 1.0
    assert est.capacity("t") == BATCH
    assert est.observe("t", 0.2) == pytest.approx(1.0 - IMPROVING_STEP)
    for _ in range(1000):
        est.observe("t", 0.2)
    assert est.estimate("t") == pytest.approx(0.2)  # never below what was observed
    assert est.capacity("t") == int(BATCH / est.estimate("t"))
    assert est.estimate("other") == 1.0  # per topic


def test_estimate_worsens_at_once() -> None:
    est = CompressionRatioEstimator(BATCH, MAX_REQUEST)
    for _ in range(1000):
        est.observe("t", 0.2)
    assert est.observe("t", 0.21) == pytest.approx(0.2 + DETERIORATING_STEP)
    assert est.observe("t", 0.9) == pytest.approx(0.9)
    est.reset("t")
    assert est.estimate("t") == 1.0


def test_capacity_is_bounded_below_max_request_size() -> None:
    est = CompressionRatioEstimator(16_384, 100_000)
    for _ in range(5000):
        est.observe("t", 0.001)
    assert est.estimate("t") == MIN_RATIO
    assert 16_384 < est.capacity("t") < 100_000 - BATCH_OVERHEAD


def test_estimator_rejects_bad_settings_and_ignores_empty_batches() -> None:
    with pytest.raises(ValueError):
        CompressionRatioEstimator(BATCH, 0)
    est = CompressionRatioEstimator(BATCH, MAX_REQUEST)
    assert est.observe("t", 0.0) == 1.0


# -- the accumulator's use of it -----------------------------------------------------


def test_uncompressed_batches_keep_batch_size() -> None:
    acc = RecordAccumulator(settings(compressed=False))
    value = b"a" * 100
    first = fill_one_batch(acc, value)
    send_full(acc, Codec.NONE)
    assert fill_one_batch(acc, value) == first
    assert acc.queued(TP)[0].capacity == BATCH


@pytest.mark.parametrize("codec", [Codec.ZSTD, Codec.GZIP, Codec.LZ4, Codec.SNAPPY])
def test_compressed_batches_grow_to_about_batch_size_on_the_wire(codec: Codec) -> None:
    acc = RecordAccumulator(settings(compressed=True), rng=random.Random(1))
    rng = random.Random(4)

    def value() -> bytes:  # half noise, half zeros: about 2x for every codec, at any size
        return rng.randbytes(50) + bytes(50)

    first = fill_one_batch(acc, value)  # sized at ratio 1.0: batch_size uncompressed
    for _ in range(150):  # the estimate improves a small step per completed batch
        send_full(acc, codec)
        fill_one_batch(acc, value)
    send_full(acc, codec)
    later = fill_one_batch(acc, value)
    batch = acc.drain([1], {TP: 1}.get, MAX_REQUEST, 0)[1][0]
    wire = len(batch.build(records_encoder(codec)))
    # About batch_size on the wire, not batch_size of input.
    assert BATCH * 0.6 <= wire <= BATCH * 1.2
    # Filled in proportion to the gain (0.5-0.7 here: noise, framing, codec overhead).
    assert batch.compression_ratio < 0.8
    assert later >= 0.85 * first / batch.compression_ratio


def test_incompressible_data_never_exceeds_max_request_size() -> None:
    max_request = 200_000
    acc = RecordAccumulator(settings(compressed=True, max_request_size=max_request))
    train(acc, b"\x00" * 1000, 300)  # teach it an extreme ratio
    send_full(acc, Codec.ZSTD)
    # The estimate is now at its floor; the data turns incompressible.
    rng = random.Random(5)
    fill_one_batch(acc, rng.randbytes(1000))
    batch = acc.drain([1], {TP: 1}.get, max_request, 0)[1][0]
    assert batch.capacity > 2 * BATCH  # sized for the old, good ratio
    data = batch.build(records_encoder(Codec.ZSTD))
    assert len(data) <= max_request


def test_mixed_random_payload_batches_stay_under_max_request_size() -> None:
    max_request = 150_000
    acc = RecordAccumulator(settings(compressed=True, max_request_size=max_request))
    encoder = records_encoder(Codec.ZSTD)
    rng = random.Random(3)
    for round_ in range(300):
        value = b"\x00" * 500 if round_ % 50 < 45 else rng.randbytes(500)
        fill_one_batch(acc, value)
        for batch in acc.drain([1], {TP: 1}.get, max_request, 0)[1]:
            assert len(batch.build(encoder)) <= max_request
            acc.complete(batch, 0)


def test_split_resets_the_estimate() -> None:
    acc = RecordAccumulator(settings(compressed=True))
    train(acc, b"z" * 200, 300)
    fill_one_batch(acc, b"z" * 200)
    assert acc.queued(TP)[0].capacity > BATCH
    batch = acc.drain([1], {TP: 1}.get, MAX_REQUEST, 0)[1][0]
    batch.build(records_encoder(Codec.ZSTD))
    halves = acc.split(batch, 0)
    assert len(halves) == 2
    # New batches are sized at no gain again.
    while len(acc.queued(TP)) < 5:
        acc.append(TP, 1000, None, b"z" * 200, (), 0.0)
    assert acc.queued(TP)[-1].capacity == BATCH


def test_sticky_units_are_estimated_wire_bytes() -> None:
    acc = RecordAccumulator(settings(compressed=True))
    train(acc, b"q" * 100, 300)
    send_full(acc, Codec.ZSTD)
    assert acc.append(TP, 1000, None, b"q" * 100, (), 0.0) is not None
    capacity = acc.queued(TP)[-1].capacity
    assert capacity > 2 * BATCH
    total = 0
    for _ in range(50):
        result = acc.append(TP, 1000, None, b"q" * 100, (), 0.0)
        assert result is not None
        total += result[2]
    uncompressed = 50 * (100 + 17)
    assert total == pytest.approx(uncompressed * BATCH / capacity, rel=0.1, abs=50)


def test_bulk_append_counts_wire_bytes_like_single_appends() -> None:
    bulk = RecordAccumulator(settings(compressed=True))
    single = RecordAccumulator(settings(compressed=True))
    for acc in (bulk, single):
        train(acc, b"w" * 100, 300)
        send_full(acc, Codec.ZSTD)
    out = DeliveryFutures()
    stop, appended, _ = bulk.append_values(TP, 1000, None, [b"w" * 100] * 3000, 0, BATCH,
                                           (), 0.0, out)  # fmt: skip
    total, count = 0, 0
    while total < BATCH:
        result = single.append(TP, 1000, None, b"w" * 100, (), 0.0)
        assert result is not None
        total += result[2]
        count += 1
    assert stop == len(out)
    assert abs(stop - count) <= count // 20 + 2  # per-record vs per-run rounding
    assert appended >= BATCH


def test_failed_batches_do_not_teach_the_estimate() -> None:
    acc = RecordAccumulator(settings(compressed=True))
    for _ in range(20):
        fill_one_batch(acc, b"f" * 100)
        (batch,) = acc.drain([1], {TP: 1}.get, MAX_REQUEST, 0)[1]
        batch.build(records_encoder(Codec.ZSTD))
        acc.fail(batch, RuntimeError("x"), DeliveryState.NOT_PERSISTED)
    assert acc.queued(TP)[-1].capacity == BATCH
