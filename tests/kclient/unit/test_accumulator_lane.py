"""Lanes (send's fast path, kclient/producer/_lane.py) against the general append():
same batches, bytes, sizes, buffer charge and sticky counts, and nothing lost when a
lane's batch drains, fails or meets a full buffer."""

from __future__ import annotations

import random

import pytest

from kclient.config import ProducerConfig
from kclient.producer.accumulator import AccumulatorSettings, Lane, RecordAccumulator
from kclient.producer.batch import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    DeliveryFuture,
    DeliveryState,
    records_encoder,
)
from kclient.producer.compression_ratio import CompressionRatioEstimator
from kclient.producer.idempotence import IdempotenceManager
from kclient.producer.partitioner import StickyState
from protocol.records import RecordBatch, read_batches

TP = ("t", 0)
TS = 1_700_000_000_000
NO_STINT_END = 1 << 40  # stint bytes left when the test is not about stints
GUARD = 1 << 30


def make(batch_size: int = 2000, buffer_memory: int = 1 << 20,
         compressed: bool = False) -> RecordAccumulator:  # fmt: skip
    return RecordAccumulator(
        AccumulatorSettings(batch_size=batch_size, linger_ms=5, buffer_memory=buffer_memory,
                            delivery_timeout_ms=1000, retry_backoff_ms=10,
                            retry_backoff_max_ms=10, max_in_flight=5, compressed=compressed),
        rng=random.Random(0),
    )  # fmt: skip


class Sender:
    """One partition's records the way ``AsyncProducer.send`` handles them: the lane
    when it takes the record, else the general append, then a new lane."""

    def __init__(self, acc: RecordAccumulator, stint: int = NO_STINT_END) -> None:
        self.acc, self.stint = acc, stint
        self.counter = StickyState(0)
        self.lane: Lane | None = None
        self.fast = 0

    def send(self, value: bytes, ts: int = TS) -> DeliveryFuture:
        lane = self.lane
        if lane is not None:  # the producer's fast path, line for line
            credit = lane.credit - RECORD_OVERHEAD - len(value)
            if credit >= 0:
                if ts != lane.timestamp:
                    lane.restamp(ts)
                lane.credit = credit
                lane.values.append(value)
                self.fast += 1
                return DeliveryFuture(lane.outcome, lane.base + len(lane.values), ts)
        result = self.acc.append(TP, ts, None, value, (), 0.0)
        assert result is not None
        future, _, size = result
        self.counter.produced += size
        self.lane = self.acc.open_lane(TP, self.counter, self.stint - self.counter.produced,
                                       GUARD, ts)  # fmt: skip
        return future


def general_only(acc: RecordAccumulator, values: list[bytes], stamps: list[int]) -> int:
    produced = 0
    for value, ts in zip(values, stamps, strict=True):
        result = acc.append(TP, ts, None, value, (), 0.0)
        assert result is not None
        produced += result[2]
    return produced


def snapshot(acc: RecordAccumulator) -> list[tuple[int, int, bytes]]:
    encoder = records_encoder()
    return [(b.size, b.record_count, b.build(encoder)) for b in acc.queued(TP)]


@pytest.mark.parametrize("batch_size", [200, 2000, 50_000])
def test_same_batches_bytes_and_counts_as_append(batch_size: int) -> None:
    rng = random.Random(3)
    values = [bytes(rng.randrange(0, 300)) for _ in range(400)]
    stamps = [TS + i // 37 for i in range(400)]  # the clock moves on now and then
    lanes, general = make(batch_size), make(batch_size)
    sender = Sender(lanes)
    futures = [sender.send(v, ts) for v, ts in zip(values, stamps, strict=True)]
    produced = general_only(general, values, stamps)
    assert 0 < sender.fast < len(values)  # both paths ran
    assert lanes.used_bytes == general.used_bytes  # inspection settles the lane
    assert sender.counter.produced == produced
    assert snapshot(lanes) == snapshot(general)
    # Every future names its own record: batch by batch, index by index.
    offset = 0
    while lanes.has_queued:
        for batch in lanes.drain([1], lambda tp: 1, 1 << 30, 0.0)[1]:
            lanes.complete(batch, offset)
            offset += batch.record_count
    assert [f.result().offset for f in futures] == list(range(len(values)))
    decoded = [
        record
        for data in (b for _, _, b in snapshot(general))
        for batch in read_batches(data)
        if isinstance(batch, RecordBatch)
        for record in batch.records()
    ]
    assert [f.result().timestamp for f in futures] == stamps == [r.timestamp for r in decoded]


def test_lane_refuses_where_append_starts_or_fills_a_batch() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    acc = make(batch_size=BATCH_OVERHEAD + 3 * record)  # three records per batch
    counter = StickyState(0)
    assert acc.open_lane(TP, counter, NO_STINT_END, GUARD, TS) is None  # no batch yet
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    lane = acc.open_lane(TP, counter, NO_STINT_END, GUARD, TS)
    assert lane is not None
    # Room for the second record only: the third fills the batch, which the general
    # path must do (it wakes the Sender).
    assert record <= lane.credit < 2 * record
    # While live, the reservation counts as used: an upper bound, never less.
    assert acc._used == BATCH_OVERHEAD + record + lane.credit
    lane.settle()
    assert not lane.live and acc._used == BATCH_OVERHEAD + record
    lane.settle()  # a second settle changes nothing
    assert acc._used == BATCH_OVERHEAD + record


def test_lane_stops_where_the_sticky_stint_ends() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    stint = 5 * record
    sender = Sender(make(batch_size=100_000), stint=stint)
    for _ in range(5):
        sender.send(value)
    # Records 2 to 4 took the lane; the fifth reaches the stint's end (as the general
    # path counts it, that record included) and so went the general way.
    assert sender.fast == 3
    assert sender.counter.produced == stint


def test_full_buffer_settles_lanes_before_refusing() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    acc = make(batch_size=10_000, buffer_memory=2 * BATCH_OVERHEAD + 4 * record)
    other = ("t", 1)
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    lane = acc.open_lane(TP, StickyState(0), NO_STINT_END, GUARD, TS)
    assert lane is not None and acc._used == acc._buffer_memory  # all reserved
    # Another partition's record fits once the lane gives its unused credit back.
    assert acc.append(other, TS, None, value, (), 0.0) is not None
    assert not lane.live
    assert acc.used_bytes == 2 * BATCH_OVERHEAD + 2 * record


def test_settling_wakes_senders_refused_before() -> None:
    value = b"v" * 100
    record = RECORD_OVERHEAD + len(value)
    acc = make(batch_size=10_000, buffer_memory=BATCH_OVERHEAD + 3 * record)
    freed: list[int] = []
    acc.on_space_freed = lambda: freed.append(acc._used)
    assert acc.append(TP, TS, None, value, (), 0.0) is not None
    assert acc.append(TP, TS, None, b"x" * (2 * record), (), 0.0) is None  # refused
    lane = acc.open_lane(TP, StickyState(0), NO_STINT_END, GUARD, TS)
    assert lane is not None and freed == []
    lane.settle()  # its unused credit is space the refused sender may now use
    assert freed == [BATCH_OVERHEAD + record]


def test_drain_takes_the_lanes_records() -> None:
    sender = Sender(make())
    futures = [sender.send(b"%03d" % i) for i in range(20)]
    assert sender.fast == 19
    drained = sender.acc.drain([1], lambda tp: 1, 1 << 20, 0.0)
    [batch] = drained[1]
    assert batch.record_count == 20 and batch.lane is None
    [decoded] = read_batches(batch.build(records_encoder()))
    assert isinstance(decoded, RecordBatch)
    assert [r.value for r in decoded.records()] == [b"%03d" % i for i in range(20)]
    sender.acc.complete(batch, 500)
    assert [f.result().offset for f in futures] == list(range(500, 520))
    assert sender.acc.used_bytes == 0
    assert sender.send(b"late").result  # the drained batch's lane is over: a new batch
    assert sender.acc.queued(TP)[0] is not batch


def test_drained_lane_batches_get_sequences_for_all_their_records() -> None:
    idem = IdempotenceManager(delivery_timeout_ms=1000)
    idem.begin_init()
    idem.on_init_success(7, 0)
    acc = RecordAccumulator(make().settings, idempotence=idem)
    sender = Sender(acc)
    for i in range(15):
        sender.send(b"%02d" % i)
    assert sender.fast == 14
    (first,) = acc.drain([1], lambda tp: 1, 1 << 20, 0.0)[1]
    for i in range(5):
        sender.send(b"%02d" % i)
    (second,) = acc.drain([1], lambda tp: 1, 1 << 20, 0.0)[1]
    assert (first.base_sequence, first.record_count) == (0, 15)
    assert (second.base_sequence, second.record_count) == (15, 5)
    assert idem.next_sequence(TP) == 20


def test_failing_a_lane_batch_fails_every_record_and_frees_the_buffer() -> None:
    acc = make()
    sender = Sender(acc)
    futures = [sender.send(b"x" * 10) for _ in range(30)]
    assert sender.lane is not None and sender.lane.live
    failed = acc.abort_all(lambda batch, state: RuntimeError("aborted"))
    assert len(failed) == 1 and failed[0].record_count == 30
    assert not sender.lane.live
    assert all(f.state is DeliveryState.NOT_PERSISTED for f in futures)
    assert acc.used_bytes == 0


def test_compressed_batches_count_about_the_wire_share() -> None:
    batch_size = 10_000
    lanes, general = make(batch_size, compressed=True), make(batch_size, compressed=True)
    for acc in (lanes, general):  # batches now take twice batch_size of input
        ratios = acc._ratios
        assert isinstance(ratios, CompressionRatioEstimator)
        for _ in range(200):
            ratios.observe("t", 0.5)
    sender = Sender(lanes)
    values = [b"w" * 100] * 300
    for value in values:
        sender.send(value)
    produced = general_only(general, values, [TS] * 300)
    assert lanes.queued(TP)[0].capacity > batch_size
    assert snapshot(lanes) == snapshot(general)
    # The lane counts its bytes' wire share in one go, the general path per record:
    # the same up to rounding.
    assert abs(sender.counter.produced - produced) <= len(values)
    assert produced < 300 * (RECORD_OVERHEAD + 100)


def test_credit_never_exceeds_the_size_guard() -> None:
    acc = make(batch_size=50_000)
    assert acc.append(TP, TS, None, b"x", (), 0.0) is not None
    lane = acc.open_lane(TP, StickyState(0), NO_STINT_END, 300, TS)
    assert lane is not None and lane.credit == 300


def test_batch_size_above_max_request_size_is_capped() -> None:
    config = ProducerConfig(bootstrap_servers="127.0.0.1:9092", max_request_size=100_000)
    assert config.batch_size > config.max_request_size  # the 256 KiB default
    assert AccumulatorSettings.from_config(config).batch_size == 100_000
    small = config.evolve(batch_size=4096)
    assert AccumulatorSettings.from_config(small).batch_size == 4096
