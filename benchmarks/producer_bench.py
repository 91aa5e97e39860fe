"""Producer throughput: kclient vs aiokafka, kafka-python and confluent-kafka on one broker.

``python -m benchmarks.producer_bench [--records N] [--quick] [--bootstrap 127.0.0.1:PORT]
[--clients a,b] [--compression zstd] [--json PATH]``

``python -m benchmarks.producer_bench --memory-check [--records N] [--value-size S]
[--buffer-memory B]``: kclient's peak RSS bound instead (see :func:`memory_check`).

Every (client, variant) run gets its own subprocess and a fresh 4-partition topic, and
produces N keyless 100-byte values with ``acks=all`` and idempotence on (where the client
has it). The clock runs from the first send to the end of ``flush()``. Client start-up,
the topic's metadata lookup and one acknowledged warm-up record (which settles the
producer id and the partition leaders; librdkafka otherwise stalls ~0.4 s on its first
batch, which would dominate a sub-second run) happen before it and are reported as
``setup s``. After each run the parent counts the records on the topic (end offsets, see
:func:`benchmarks._harness.count_records`) and rejects the run unless exactly N + 1 landed.

Variants:
  * ``send loop``: one record per call without waiting for its delivery, then flush
    (kclient/aiokafka ``await send()``, kafka-python ``send()``, confluent ``produce()`` +
    ``poll(0)``).
  * bulk: aiokafka ``create_batch``/``send_batch`` (batches of its default 16 KiB, round
    robin over the partitions), confluent ``produce_batch`` (lists of 1,000 message dicts
    built inside the timed loop, round robin over the partitions), kclient ``send_many``
    (lists of 1,000 values, partitioner's choice).

"records/CPU-s" divides N by the CPU time of the client's own process (all its threads,
librdkafka's included) inside the timed window: steadier than records/s when other jobs
share the machine, though it leaves out the broker's share.

aiokafka speaks only InitProducerId v0, which Tansu 0.6 fails with UNKNOWN_SERVER_ERROR;
when that happens aiokafka is measured with ``acks=all`` but without idempotence and the
table says so.

All other settings are each client's defaults (linger: kclient 5 ms, aiokafka 0,
kafka-python 0, librdkafka 5 ms; batch size: kclient 256 KiB, aiokafka and kafka-python
16 KiB, librdkafka 1 MB), except ``--compression``, which every client gets.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import producer_memory
from benchmarks._harness import (
    PARTITIONS,
    Result,
    broker,
    common_arguments,
    count_records,
    create_topic,
    fmt_num,
    fmt_rate,
    make_value,
    markdown_table,
    ratio_table,
    run_worker,
    save_json,
    selected,
    unique_name,
)

DEFAULT_RECORDS = 100_000
QUICK_RECORDS = 10_000
BULK_CHUNK = 1000
WARMUP_RECORDS = 1  # sent and acknowledged before the clock starts

# -- workers (each runs in its own subprocess) ------------------------------------------------


def _timed(setup_s: float, started: tuple[float, float], records: int) -> dict[str, Any]:
    """``started`` is (perf_counter, process_time) at the first send. The window's CPU
    time (every thread of the client's process, librdkafka's included) is steadier
    than wall time when other jobs share the machine."""
    return {
        "seconds": time.perf_counter() - started[0],
        "cpu_window_s": time.process_time() - started[1],
        "setup_s": setup_s,
        "records": records,
    }


def _compression_or_none(params: dict[str, Any]) -> str | None:
    """aiokafka and kafka-python spell "no compression" as None."""
    codec: str = params.get("compression", "none")
    return None if codec == "none" else codec


def kclient_worker(params: dict[str, Any]) -> dict[str, Any]:
    import anyio

    AsyncProducer = kclient_producer_class()

    topic, n, variant = params["topic"], params["records"], params["variant"]
    value = make_value()

    async def run() -> dict[str, Any]:
        t0 = time.perf_counter()
        async with AsyncProducer(
            bootstrap_servers=params["bootstrap"],
            acks="all",
            enable_idempotence=True,
            compression_type=params.get("compression", "none"),
        ) as producer:
            warm = producer.partitions_for(topic)
            if inspect.isawaitable(warm):
                await warm
            await producer.send_and_wait(topic, value, partition=0)  # warm-up record
            setup = time.perf_counter() - t0
            started = (time.perf_counter(), time.process_time())
            if variant == "send loop":
                send = producer.send
                for _ in range(n):
                    await send(topic, value)
            else:
                chunk = [value] * BULK_CHUNK
                for offset in range(0, n, BULK_CHUNK):
                    batch = chunk if offset + BULK_CHUNK <= n else chunk[: n - offset]
                    await producer.send_many(topic, batch)
            await producer.flush()
            return _timed(setup, started, n)

    result: dict[str, Any] = anyio.run(run)
    return result


def aiokafka_worker(params: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
    from aiokafka.errors import UnknownError  # type: ignore[import-untyped]

    topic, n, variant = params["topic"], params["records"], params["variant"]
    value = make_value()

    async def start() -> tuple[AIOKafkaProducer, bool]:
        for idempotent in (True, False):
            producer = AIOKafkaProducer(
                bootstrap_servers=params["bootstrap"],
                acks="all",
                enable_idempotence=idempotent,
                compression_type=_compression_or_none(params),
            )
            try:
                await producer.start()
            except UnknownError:
                # aiokafka only speaks InitProducerId v0, which Tansu 0.6 answers with
                # UNKNOWN_SERVER_ERROR: measure acks=all without idempotence instead.
                await producer.stop()
                continue
            return producer, idempotent
        raise RuntimeError("aiokafka producer did not start")

    async def run() -> dict[str, Any]:
        t0 = time.perf_counter()
        producer, idempotent = await start()
        try:
            await producer.partitions_for(topic)
            await producer.send_and_wait(topic, value, partition=0)  # warm-up record
            setup = time.perf_counter() - t0
            started = (time.perf_counter(), time.process_time())
            if variant == "send loop":
                send = producer.send
                for _ in range(n):
                    await send(topic, value)
                await producer.flush()
            else:
                futures = []
                partition = 0
                batch = producer.create_batch()
                for _ in range(n):
                    if batch.append(key=None, value=value, timestamp=None) is None:
                        batch.close()
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        partition = (partition + 1) % PARTITIONS
                        batch = producer.create_batch()
                        batch.append(key=None, value=value, timestamp=None)
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                await asyncio.gather(*futures)
            return {**_timed(setup, started, n), "idempotent": idempotent}
        finally:
            await producer.stop()

    return asyncio.run(run())


def kafka_python_worker(params: dict[str, Any]) -> dict[str, Any]:
    from kafka import KafkaProducer  # type: ignore[import-untyped]

    topic, n = params["topic"], params["records"]
    value = make_value()
    t0 = time.perf_counter()
    # kafka-python 3.x is idempotent by default; say so explicitly anyway.
    producer = KafkaProducer(
        bootstrap_servers=params["bootstrap"],
        acks="all",
        enable_idempotence=True,
        compression_type=_compression_or_none(params),
    )
    try:
        producer.partitions_for(topic)
        producer.send(topic, value, partition=0).get(timeout=30)  # warm-up record
        setup = time.perf_counter() - t0
        started = (time.perf_counter(), time.process_time())
        send = producer.send
        for _ in range(n):
            send(topic, value)
        producer.flush()
        return _timed(setup, started, n)
    finally:
        producer.close()


def confluent_worker(params: dict[str, Any]) -> dict[str, Any]:
    from confluent_kafka import Producer

    topic, n, variant = params["topic"], params["records"], params["variant"]
    value = make_value()
    t0 = time.perf_counter()
    producer = Producer(
        {
            "bootstrap.servers": params["bootstrap"],
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": params.get("compression", "none"),
        }
    )
    producer.list_topics(topic, timeout=30)
    producer.produce(topic, value, partition=0)  # warm-up record
    if producer.flush(30):
        raise RuntimeError("warm-up record not delivered")
    setup = time.perf_counter() - t0
    started = (time.perf_counter(), time.process_time())
    if variant == "produce loop":
        produce, poll = producer.produce, producer.poll
        for _ in range(n):
            while True:
                try:
                    produce(topic, value)
                    break
                except BufferError:  # local queue full: let librdkafka drain it
                    poll(0.05)
            poll(0)
    else:
        for i, offset in enumerate(range(0, n, BULK_CHUNK)):
            messages = [{"value": value} for _ in range(min(BULK_CHUNK, n - offset))]
            while messages:
                queued = producer.produce_batch(topic, messages, partition=i % PARTITIONS)
                if queued < len(messages):
                    messages = [m for m in messages if "_error" in m]
                    for m in messages:
                        del m["_error"]
                    producer.poll(0.05)
                else:
                    messages = []
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records still queued after flush")
    return _timed(setup, started, n)


# -- driver ---------------------------------------------------------------------------------

CLIENTS = ("kclient", "aiokafka", "kafka-python", "confluent-kafka")
VARIANTS: dict[str, tuple[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]], ...]] = {
    "kclient": (("send loop", kclient_worker), ("send_many", kclient_worker)),
    "aiokafka": (("send loop", aiokafka_worker), ("send_batch", aiokafka_worker)),
    "kafka-python": (("send loop", kafka_python_worker),),
    "confluent-kafka": (("produce loop", confluent_worker), ("produce_batch", confluent_worker)),
}


def kclient_producer_class() -> Any:
    """kclient's AsyncProducer, or None while it does not exist yet."""
    import kclient

    cls = getattr(kclient, "AsyncProducer", None)
    if cls is None:
        try:
            from kclient.producer import producer as module  # type: ignore[attr-defined]
        except ImportError:
            return None
        cls = getattr(module, "AsyncProducer", None)
    return cls


def kclient_availability() -> dict[str, str | None]:
    """None per kclient variant that can run, else the reason it cannot."""
    variants = ("send loop", "send_many")
    try:
        producer_cls = kclient_producer_class()
    except Exception as exc:  # a half-written module must not break the peers' numbers
        return dict.fromkeys(variants, f"not available yet (import failed: {exc})")
    if producer_cls is None:
        return dict.fromkeys(variants, "not available yet")
    state: dict[str, str | None] = {"send loop": None, "send_many": None}
    send_many = getattr(producer_cls, "send_many", None)
    if send_many is None:
        state["send_many"] = "no send_many yet"
    else:
        names = [n for n in inspect.signature(send_many).parameters if n != "self"]
        if names[:1] != ["topic"]:
            # The benchmark calls send_many(topic, [value, ...]); adapt it if the API differs.
            state["send_many"] = f"send_many{inspect.signature(send_many)} not recognised"
    return state


def run_one(
    bootstrap: str, client: str, variant: str, func: Callable[..., Any], n: int, compression: str
) -> Result:
    topic = unique_name(f"bench-produce-{client}")
    create_topic(bootstrap, topic)
    params = {"bootstrap": bootstrap, "topic": topic, "records": n, "variant": variant,
              "compression": compression}  # fmt: skip
    target = f"benchmarks.producer_bench:{func.__name__}"
    outcome = run_worker(target, params, timeout=60 + n / 1000)
    result = Result(
        client, variant, records=n, peak_rss_mb=outcome.peak_rss_mb, cpu_s=outcome.cpu_s
    )
    if outcome.data is None:
        result.note = outcome.error
        return result
    on_topic = count_records(bootstrap, topic)
    if on_topic != n + WARMUP_RECORDS:
        expected = n + WARMUP_RECORDS
        result.note = (
            f"verification failed: {on_topic:,} records on the topic, expected {expected:,}"
        )
        return result
    result.seconds = outcome.data["seconds"]
    result.rate = n / result.seconds
    result.extra["setup_s"] = outcome.data["setup_s"]
    result.extra["records_per_cpu_s"] = n / max(outcome.data["cpu_window_s"], 1e-9)
    if outcome.data.get("idempotent") is False:
        result.note = "NOT idempotent: broker refused InitProducerId v0"
        result.extra["idempotent"] = False
    return result


def print_report(results: list[Result], n: int, compression: str) -> None:
    rows = [
        [
            r.label,
            fmt_rate(r.rate),
            fmt_num(r.seconds, 2),
            fmt_num(r.extra.get("setup_s"), 2),
            fmt_num(r.peak_rss_mb),
            fmt_num(r.cpu_s, 2),
            fmt_rate(r.extra.get("records_per_cpu_s")),
            r.note or "",
        ]
        for r in results
    ]
    headers = ["client", "records/s", "time s", "setup s", "peak RSS MB", "CPU s",
               "records/CPU-s", "note"]  # fmt: skip
    codec = "" if compression == "none" else f", compression {compression}"
    print(
        f"\nProducer: {n:,} x 100-byte values, {PARTITIONS} partitions, acks=all, "
        f"idempotent{codec}\n"
    )
    print(markdown_table(headers, rows))
    ratios = ratio_table(results)
    if ratios is not None:
        print("\nkclient / peer (records/s ratio, >1 means kclient is faster)\n")
        print(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser, DEFAULT_RECORDS)
    parser.add_argument(
        "--compression",
        default="none",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
        help="compression codec for every client (default none)",
    )
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help="check kclient's peak RSS bound instead (see benchmarks/producer_memory.py)",
    )
    producer_memory.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.memory_check:
        records = args.records or (
            QUICK_RECORDS * 10 if args.quick else producer_memory.DEFAULT_RECORDS
        )
        return producer_memory.memory_check(
            args.bootstrap, records, args.value_size, args.buffer_memory
        )
    n = args.records or (QUICK_RECORDS if args.quick else DEFAULT_RECORDS)
    clients = selected(args.clients, CLIENTS)
    kclient_state = kclient_availability() if "kclient" in clients else {}
    results: list[Result] = []
    t0 = time.monotonic()
    with broker(args.bootstrap) as bootstrap:
        print(f"broker {bootstrap}; {n:,} records per run", file=sys.stderr)
        for client in clients:
            for variant, func in VARIANTS[client]:
                reason = kclient_state.get(variant) if client == "kclient" else None
                if reason is not None:
                    results.append(Result(client, variant, note=reason))
                    continue
                print(f"  {client} {variant} ...", file=sys.stderr, flush=True)
                results.append(run_one(bootstrap, client, variant, func, n, args.compression))
    print_report(results, n, args.compression)
    print(f"\n(total {time.monotonic() - t0:.1f} s)")
    if args.json:
        params = {"records": n, "partitions": PARTITIONS, "compression": args.compression}
        save_json(args.json, "producer", params, results)
    ran = [r for r in results if r.client != "kclient" or kclient_state.get(r.variant) is None]
    return 0 if all(r.rate is not None for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
