"""``kclient bench``: producer throughput, then consumer throughput, on one topic.

The producer sends ``--records`` values of ``--size`` bytes (one payload, made once, as
Kafka's perf tools do) without keys, so the partitioner spreads them; delivery latency is
measured per record from the ``send_many`` call that queued it to its acknowledgement. The
consumer then assigns every partition (no group: a join would dominate a short run),
starts where the producer started, and reads until it has seen as many records. Without a
bootstrap server it runs against the embedded Tansu broker, like ``kclient demo``.

Figures are for one run on one machine; benchmarks/ compares clients side by side.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from kclient.cli._common import (
    CliError,
    Progress,
    check_results,
    client_settings,
    cluster_for,
    print_table,
)
from kclient.cli.demo import create_topic
from kclient.structs import TopicPartition
from protocol.errors import UnknownTopicOrPartitionError

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.producer.batch import DeliveryFuture

_CHUNK = 1000  # records per send_many call
_MB = 1_000_000


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bench", parents=[parent], help="producer then consumer throughput")
    p.add_argument("--records", type=int, default=100_000, help="default 100,000")
    p.add_argument("--size", type=int, default=100, help="value bytes (default 100)")
    p.add_argument("--partitions", type=int, default=4, help="of a new topic (default 4)")
    p.add_argument("--acks", choices=("all", "1", "0"), default="all")
    p.add_argument(
        "--compression", default="none", choices=("none", "gzip", "snappy", "lz4", "zstd")
    )
    p.add_argument("--topic", help="default: a fresh topic; created if missing")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class BenchOptions:
    records: int
    size: int
    partitions: int
    acks: str
    compression: str
    topic: str | None
    timeout_s: float


@dataclass(frozen=True)
class PhaseResult:
    records: int
    seconds: float
    latencies_ms: Sequence[float] = ()  # producer only
    first_record_s: float | None = None  # consumer only


def options_from(args: argparse.Namespace) -> BenchOptions:
    if args.records < 1:
        raise CliError("--records must be at least 1")
    if args.size < 0:
        raise CliError("--size must not be negative")
    if args.partitions < 1:
        raise CliError("--partitions must be at least 1")
    return BenchOptions(
        records=args.records,
        size=args.size,
        partitions=args.partitions,
        acks=args.acks,
        compression=args.compression,
        topic=args.topic,
        timeout_s=args.timeout,
    )


def run(args: argparse.Namespace) -> int:
    options = options_from(args)
    out = sys.stdout
    with cluster_for(args, out) as (bootstrap, _versions):
        settings = client_settings(args, bootstrap)
        produced, consumed = anyio.run(partial(bench, settings, options, out))
    print_table(summary_rows(options.size, produced, consumed), SUMMARY_HEADER, out)
    return 0


async def bench(
    settings: dict[str, Any], options: BenchOptions, out: TextIO
) -> tuple[PhaseResult, PhaseResult]:
    topic, starts = await _prepare_topic(settings, options)
    print(
        f"topic {topic}: {len(starts)} partitions; {options.records:,} records of "
        f"{options.size} bytes, acks={options.acks}, compression={options.compression}",
        file=out,
    )
    produced = await produce_phase(settings, topic, options, out)
    consumed = await consume_phase(settings, starts, options, out)
    return produced, consumed


async def _prepare_topic(
    settings: dict[str, Any], options: BenchOptions
) -> tuple[str, dict[TopicPartition, int]]:
    """The topic and where each partition ends now (where the consumer will start)."""
    from kclient.admin import AsyncAdmin, OffsetSpec

    topic = options.topic or f"kclient-bench-{uuid.uuid4().hex[:8]}"
    partitions = None
    if options.topic is not None:
        partitions = await _existing_partitions(settings, topic, options.timeout_s)
    if partitions is None:
        await create_topic(settings, topic, options.partitions, options.timeout_s)
        return topic, {TopicPartition(topic, p): 0 for p in range(options.partitions)}
    with anyio.fail_after(options.timeout_s + 1):
        async with AsyncAdmin(**settings) as admin:
            ends = await admin.list_offsets(dict.fromkeys(partitions, OffsetSpec.latest()))
    check_results("list offsets", {f"{tp.topic}-{tp.partition}": r for tp, r in ends.items()})
    return topic, {tp: r.offset for tp, r in ends.items()}


async def _existing_partitions(
    settings: dict[str, Any], topic: str, timeout_s: float
) -> list[TopicPartition] | None:
    from kclient.admin import AsyncAdmin

    with anyio.fail_after(timeout_s + 1):  # also bounds connecting to a silent address
        async with AsyncAdmin(**settings) as admin:
            found = (await admin.describe_topics([topic]))[topic]
    if isinstance(found.error, UnknownTopicOrPartitionError):
        return None
    if found.error is not None:
        raise CliError(f"cannot describe topic {topic}: {found.error}")
    return [TopicPartition(topic, p.partition) for p in found.partitions]


def payload(size: int) -> bytes:
    """Printable text from a fixed seed: compresses like text, the same on every run."""
    rng = random.Random(size)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size)).encode()


async def produce_phase(
    settings: dict[str, Any], topic: str, options: BenchOptions, out: TextIO
) -> PhaseResult:
    from kclient.producer.producer import AsyncProducer

    total, value = options.records, payload(options.size)
    progress = Progress("produced", total, out)
    latencies = array("d")
    failed = 0

    def on_done(sent_at: float, future: DeliveryFuture) -> None:
        nonlocal failed
        if future.exception() is None:
            latencies.append((time.perf_counter() - sent_at) * 1000)
        else:
            failed += 1
        progress.update(len(latencies) + failed)

    async with AsyncProducer(
        acks=options.acks,
        enable_idempotence=options.acks == "all",
        compression_type=options.compression,
        batch_size=64 * 1024,
        linger_ms=10,
        **settings,
    ) as producer:
        for start in range(0, total, _CHUNK):
            count = min(_CHUNK, total - start)
            sent_at = time.perf_counter()
            for future in await producer.send_many(topic, [value] * count):
                future.add_done_callback(partial(on_done, sent_at))
        await producer.flush()
    seconds = progress.finish(len(latencies) + failed)
    if failed:
        raise CliError(f"{failed:,} of {total:,} records were not acknowledged")
    return PhaseResult(total, seconds, latencies_ms=latencies)


async def consume_phase(
    settings: dict[str, Any], starts: dict[TopicPartition, int], options: BenchOptions, out: TextIO
) -> PhaseResult:
    from kclient.consumer.consumer import AsyncConsumer

    total = options.records
    progress = Progress("consumed", total, out)
    seen, first, last = 0, 0.0, 0.0
    began = since = progress.started
    consumer: AsyncConsumer[bytes | None, bytes | None] = AsyncConsumer(
        max_poll_records=5000, **settings
    )
    async with consumer:
        consumer.assign(starts)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        while seen < total:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            if not batches:
                if now - since > options.timeout_s:
                    raise CliError(
                        f"consumer stalled: {seen:,} of {total:,} records, "
                        f"none for {options.timeout_s:g} s"
                    )
                continue
            seen += sum(len(records) for records in batches.values())
            first, last, since = first or now, now, now
            progress.update(min(seen, total))
    progress.finish(min(seen, total), end=last)
    # The whole phase, connecting included, so that one big fetch cannot make the time
    # vanish; FIRST RECORD S shows how much of it was the start.
    return PhaseResult(seen, last - began, first_record_s=first - began)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in (0, 1]) of unsorted ``values``."""
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


SUMMARY_HEADER = (
    "PHASE", "RECORDS", "SECONDS", "RECORDS/S", "MB/S", "P50 MS", "P99 MS", "FIRST RECORD S",
)  # fmt: skip


def summary_rows(size: int, produced: PhaseResult, consumed: PhaseResult) -> list[list[str]]:
    """The table rows; MB/s counts value bytes, 1 MB = 10^6 bytes."""
    rows = []
    for name, phase in (("produce", produced), ("consume", consumed)):
        rate = phase.records / max(phase.seconds, 1e-9)
        lat = phase.latencies_ms
        rows.append(
            [
                name,
                f"{phase.records:,}",
                f"{phase.seconds:.2f}",
                f"{rate:,.0f}",
                f"{rate * size / _MB:.2f}",
                f"{percentile(lat, 0.50):.1f}" if lat else "-",
                f"{percentile(lat, 0.99):.1f}" if lat else "-",
                "-" if phase.first_record_s is None else f"{phase.first_record_s:.2f}",
            ]
        )
    return rows
