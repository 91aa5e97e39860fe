"""Consumer throughput: kclient vs aiokafka, kafka-python and confluent-kafka on one broker.

``python -m benchmarks.consumer_bench [--records N] [--quick] [--bootstrap 127.0.0.1:PORT]
[--clients a,b] [--json PATH] [--sync]``

One 4-partition topic is filled once with N 100-byte values (by confluent-kafka, spread
evenly over the partitions). Then every client, each in its own subprocess, subscribes to
it in a fresh consumer group (``auto_offset_reset=earliest``, auto-commit off) and reads
until it holds N records. Two figures per client:

  * ``first record s``: from just before the consumer is created to the first record in
    hand (bootstrap, group join and sync, offset lookup, first fetch).
  * ``records/s``: throughput from the first record to the N-th, i.e.
    ``(N - records in the first poll) / (t_last - t_first)``, so a slow group join does not
    hide in the throughput figure.

Loops: kclient and aiokafka ``getmany(timeout_ms=1000, max_records=1000)``, kafka-python
``poll(timeout_ms=1000, max_records=1000)``, confluent ``consume(num_messages=1000,
timeout=1)`` (checking ``msg.error()``), with librdkafka's defaults and once more with
``fetch.queue.backoff.ms=10`` (see RUNS). Every loop touches each value (sums its length),
and the run fails unless exactly N records of 100 bytes came back.

``--sync`` measures blocking loops instead: ``kclient.sync.Consumer`` as
``for record in consumer``, ``while True: consumer.getone()`` and
``getmany(timeout_ms=1000, max_records=1000)``, against
kafka-python's ``for msg in consumer`` and ``poll``. The iterating loops count each record
as it is handed out (the same per-record work on both sides).

Every client gets the same ``session_timeout_ms`` (10,000 by default, the default of
aiokafka and kclient): Tansu 0.6 holds every JoinGroup for about half the session
timeout, so with the 45 s default of kafka-python and librdkafka the first record takes
~23 s, and with 10 s ~5 s. Pinning it compares the clients, not their defaults;
``--session-timeout-ms 0`` keeps the defaults (docs/design-notes/consumer-defaults.md).

Use ``--records 1000000`` for steadier throughput figures: at 100,000 records the timed
window is 0.05-0.5 s, and librdkafka has the whole topic pre-fetched before its first
record is handed out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from benchmarks._harness import (
    PARTITIONS,
    VALUE_SIZE,
    Result,
    broker,
    common_arguments,
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
POLL_RECORDS = 1000
DEFAULT_SESSION_TIMEOUT_MS = 10_000


class _Clock:
    """Counts records and stamps the first and last arrival."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.nbytes = 0
        self.start = time.perf_counter()
        self.first: float | None = None
        self.first_cpu = 0.0
        self.first_batch = 0

    def add(self, records: int, nbytes: int) -> bool:
        """Account for one poll's records; True once the target is reached."""
        if records and self.first is None:
            self.first = time.perf_counter()
            self.first_cpu = time.process_time()
            self.first_batch = records
        self.count += records
        self.nbytes += nbytes
        return self.count >= self.target

    def result(self) -> dict[str, Any]:
        end = time.perf_counter()
        cpu = time.process_time() - self.first_cpu
        assert self.first is not None
        return {
            "first_record_s": self.first - self.start,
            "seconds": end - self.first,
            "window_cpu_s": cpu,
            "timed_records": self.count - self.first_batch,
            "records": self.count,
            "bytes": self.nbytes,
        }


# -- workers (each runs in its own subprocess) ------------------------------------------------


def _tally(batches: Iterable[Sequence[Any]]) -> tuple[int, int]:
    """Records and value bytes in one poll's batches (the same work for every client)."""
    count = nbytes = 0
    for records in batches:
        count += len(records)
        for record in records:
            nbytes += len(record.value)
    return count, nbytes


def _session(params: dict[str, Any]) -> dict[str, Any]:
    """``session_timeout_ms`` when the run pins it (0 keeps each client's default)."""
    value = params.get("session_timeout_ms") or 0
    return {"session_timeout_ms": value} if value > 0 else {}


def kclient_worker(params: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from kclient import AsyncConsumer

    async def run() -> dict[str, Any]:
        clock = _Clock(params["records"])
        consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(
            params["topic"],
            bootstrap_servers=params["bootstrap"],
            group_id=params["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **_session(params),
        )
        async with consumer:
            getmany = consumer.getmany
            while True:
                batches = await getmany(timeout_ms=1000, max_records=POLL_RECORDS)
                count, nbytes = _tally(batches.values())
                if clock.add(count, nbytes):
                    return clock.result()

    result: dict[str, Any] = anyio.run(run)
    return result


def aiokafka_worker(params: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    async def run() -> dict[str, Any]:
        clock = _Clock(params["records"])
        consumer = AIOKafkaConsumer(
            params["topic"],
            bootstrap_servers=params["bootstrap"],
            group_id=params["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **_session(params),
        )
        await consumer.start()
        try:
            getmany = consumer.getmany
            while True:
                batches = await getmany(timeout_ms=1000, max_records=POLL_RECORDS)
                count, nbytes = _tally(batches.values())
                if clock.add(count, nbytes):
                    return clock.result()
        finally:
            await consumer.stop()

    return asyncio.run(run())


def _kafka_python_consumer(params: dict[str, Any]) -> Any:
    from kafka import KafkaConsumer  # type: ignore[import-untyped]

    return KafkaConsumer(
        params["topic"],
        bootstrap_servers=params["bootstrap"],
        group_id=params["group"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **_session(params),
    )


def kafka_python_worker(params: dict[str, Any]) -> dict[str, Any]:
    clock = _Clock(params["records"])
    consumer = _kafka_python_consumer(params)
    try:
        poll = consumer.poll
        while True:
            batches = poll(timeout_ms=1000, max_records=POLL_RECORDS)
            count, nbytes = _tally(batches.values())
            if clock.add(count, nbytes):
                return clock.result()
    finally:
        consumer.close()


def confluent_worker(params: dict[str, Any]) -> dict[str, Any]:
    from confluent_kafka import Consumer, KafkaException

    clock = _Clock(params["records"])
    config: dict[str, Any] = {
        "bootstrap.servers": params["bootstrap"],
        "group.id": params["group"],
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if "session_timeout_ms" in _session(params):
        config["session.timeout.ms"] = params["session_timeout_ms"]
    config.update(params.get("librdkafka", {}))
    consumer = Consumer(config)
    try:
        consumer.subscribe([params["topic"]])
        consume = consumer.consume
        while True:
            messages = consume(num_messages=POLL_RECORDS, timeout=1.0)
            nbytes = 0
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                nbytes += len(message.value() or b"")
            if clock.add(len(messages), nbytes):
                return clock.result()
    finally:
        consumer.close()


# -- sync workers (``--sync``): blocking loops, one record at a time and per poll ----------


def _count_each(clock: _Clock, records: Iterable[Any], value: Callable[[Any], bytes]) -> None:
    """Feed an iterator's records to the clock one by one until the target is reached."""
    for record in records:
        if clock.add(1, len(value(record))):
            return


def _kclient_sync_consumer(params: dict[str, Any]) -> Any:
    from kclient.sync import Consumer

    return Consumer(
        params["topic"],
        bootstrap_servers=params["bootstrap"],
        group_id=params["group"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **_session(params),
    )


def kclient_sync_iter_worker(params: dict[str, Any]) -> dict[str, Any]:
    clock = _Clock(params["records"])
    with _kclient_sync_consumer(params) as consumer:
        _count_each(clock, consumer, lambda r: r.value)
        return clock.result()


def kclient_sync_getone_worker(params: dict[str, Any]) -> dict[str, Any]:
    clock = _Clock(params["records"])
    with _kclient_sync_consumer(params) as consumer:
        _count_each(clock, iter(consumer.getone, None), lambda r: r.value)  # never None
        return clock.result()


def kclient_sync_getmany_worker(params: dict[str, Any]) -> dict[str, Any]:
    clock = _Clock(params["records"])
    with _kclient_sync_consumer(params) as consumer:
        getmany = consumer.getmany
        while True:
            batches = getmany(timeout_ms=1000, max_records=POLL_RECORDS)
            count, nbytes = _tally(batches.values())
            if clock.add(count, nbytes):
                return clock.result()


def kafka_python_iter_worker(params: dict[str, Any]) -> dict[str, Any]:
    clock = _Clock(params["records"])
    consumer = _kafka_python_consumer(params)
    try:
        _count_each(clock, consumer, lambda m: m.value)
        return clock.result()
    finally:
        consumer.close()


# -- driver ---------------------------------------------------------------------------------

CLIENTS = ("kclient", "aiokafka", "kafka-python", "confluent-kafka")
Worker = Callable[[dict[str, Any]], dict[str, Any]]
# (client, variant, worker, extra worker params)
RUNS: tuple[tuple[str, str, Worker, dict[str, Any]], ...] = (
    ("kclient", "getmany", kclient_worker, {}),
    ("aiokafka", "getmany", aiokafka_worker, {}),
    ("kafka-python", "poll", kafka_python_worker, {}),
    ("confluent-kafka", "consume", confluent_worker, {}),
    # librdkafka pre-fetches queued.min.messages (100,000) per partition, then backs off
    # fetch.queue.backoff.ms (1,000 ms by default) whenever that queue is full, which
    # caps a fast application loop at a few hundred thousand records/s once N exceeds
    # the pre-fetch; this row shows the client without that pause.
    ("confluent-kafka", "consume, queue backoff 10 ms", confluent_worker,
     {"librdkafka": {"fetch.queue.backoff.ms": 10}}),
)  # fmt: skip
# ``--sync``: the blocking facade against kafka-python's blocking loops.
SYNC_RUNS: tuple[tuple[str, str, Worker, dict[str, Any]], ...] = (
    ("kclient", "sync for record in consumer", kclient_sync_iter_worker, {}),
    ("kclient", "sync getone loop", kclient_sync_getone_worker, {}),
    ("kclient", "sync getmany", kclient_sync_getmany_worker, {}),
    ("kafka-python", "for msg in consumer", kafka_python_iter_worker, {}),
    ("kafka-python", "poll", kafka_python_worker, {}),
)  # fmt: skip


def kclient_unavailable() -> str | None:
    try:
        import kclient

        if getattr(kclient, "AsyncConsumer", None) is None:
            return "not available yet"
    except Exception as exc:  # a half-written module must not break the peers' numbers
        return f"not available yet (import failed: {exc})"
    return None


def prefill(bootstrap: str, topic: str, n: int) -> None:
    """Write n values to ``topic``, spread evenly over its partitions, with confluent-kafka."""
    from confluent_kafka import Producer

    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    value = make_value()
    chunk = 1000
    deadline = time.monotonic() + 60 + n / 10_000
    for i, offset in enumerate(range(0, n, chunk)):
        messages: list[dict[str, Any]] = [{"value": value} for _ in range(min(chunk, n - offset))]
        while messages:
            try:
                producer.produce_batch(
                    topic, messages, partition=i % PARTITIONS, on_delivery=on_delivery
                )
                # Entries librdkafka could not queue (its local queue is full) carry
                # "_error": let it drain, then queue them again.
                messages = [{"value": value} for m in messages if "_error" in m]
            except BufferError:
                pass  # the queue is full: nothing was queued
            producer.poll(0.05 if messages else 0)
            if messages and time.monotonic() > deadline:
                raise RuntimeError(f"prefill: librdkafka's queue stayed full ({len(messages)})")
    if producer.flush(60) or failed:
        raise RuntimeError(f"prefill failed: {failed[:3]}")


def run_one(
    bootstrap: str,
    topic: str,
    run: tuple[str, str, Worker, dict[str, Any]],
    n: int,
    timeout: float,
    session_timeout_ms: int,
) -> Result:
    client, variant, worker, extra = run
    params = {
        "bootstrap": bootstrap,
        "topic": topic,
        "records": n,
        "group": unique_name(f"bench-{client}"),
        "session_timeout_ms": session_timeout_ms,
        **extra,
    }
    outcome = run_worker(f"benchmarks.consumer_bench:{worker.__name__}", params, timeout)
    result = Result(
        client, variant, records=n, peak_rss_mb=outcome.peak_rss_mb, cpu_s=outcome.cpu_s
    )
    data = outcome.data
    if data is None:
        result.note = outcome.error
        return result
    if data["records"] != n or data["bytes"] != n * VALUE_SIZE:
        result.note = (
            f"verification failed: {data['records']:,} records / {data['bytes']:,} bytes, "
            f"expected {n:,} / {n * VALUE_SIZE:,}"
        )
        return result
    result.seconds = data["seconds"]
    result.rate = data["timed_records"] / data["seconds"] if data["seconds"] > 0 else None
    result.extra["first_record_s"] = data["first_record_s"]
    if data["timed_records"] > 0:
        result.extra["cpu_us_per_record"] = data["window_cpu_s"] / data["timed_records"] * 1e6
    return result


def print_report(results: list[Result], n: int, session_timeout_ms: int) -> None:
    rows = [
        [
            r.label,
            fmt_rate(r.rate),
            fmt_num(r.extra.get("first_record_s"), 2),
            fmt_num(r.seconds, 2),
            fmt_num(r.extra.get("cpu_us_per_record"), 2),
            fmt_num(r.peak_rss_mb),
            fmt_num(r.cpu_s, 2),
            r.note or "",
        ]
        for r in results
    ]
    headers = ["client", "records/s", "first record s", "time s", "CPU us/record", "peak RSS MB"]
    headers += ["CPU s", "note"]
    print(f"\nConsumer: {n:,} x 100-byte values, {PARTITIONS} partitions, new group per client")
    session = f"{session_timeout_ms} ms" if session_timeout_ms > 0 else "client defaults"
    print(f"(session timeout: {session})\n")
    print(markdown_table(headers, rows))
    ratios = ratio_table(results)
    if ratios is not None:
        print("\nkclient / peer (records/s ratio, >1 means kclient is faster)\n")
        print(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    common_arguments(parser, DEFAULT_RECORDS)
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=DEFAULT_SESSION_TIMEOUT_MS,
        help="session timeout given to every client (default %(default)s, aiokafka's and "
        "kclient's default; Tansu holds a new group's join for half of it); 0 = each "
        "client's default",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="measure the blocking loops instead: kclient.sync.Consumer's `for record in "
        "consumer`, getone loop and getmany against kafka-python's iterator and poll",
    )
    args = parser.parse_args(argv)
    n = args.records or (QUICK_RECORDS if args.quick else DEFAULT_RECORDS)
    clients = selected(args.clients, CLIENTS)
    unavailable = kclient_unavailable() if "kclient" in clients else None
    timeout = 60 + n / 2000
    results: list[Result] = []
    t0 = time.monotonic()
    with broker(args.bootstrap) as bootstrap:
        topic = unique_name("bench-consume")
        print(f"broker {bootstrap}; filling {topic} with {n:,} records", file=sys.stderr)
        create_topic(bootstrap, topic)
        prefill(bootstrap, topic, n)
        for run in SYNC_RUNS if args.sync else RUNS:
            client, variant = run[0], run[1]
            if client not in clients:
                continue
            if client == "kclient" and unavailable is not None:
                results.append(Result(client, variant, note=unavailable))
                continue
            print(f"  {client} {variant} ...", file=sys.stderr, flush=True)
            results.append(run_one(bootstrap, topic, run, n, timeout, args.session_timeout_ms))
    print_report(results, n, args.session_timeout_ms)
    print(f"\n(total {time.monotonic() - t0:.1f} s)")
    if args.json:
        params = {
            "records": n,
            "partitions": PARTITIONS,
            "session_timeout_ms": args.session_timeout_ms,
        }
        save_json(args.json, "consumer", params, results)
    ran = [r for r in results if not (r.client == "kclient" and unavailable is not None)]
    return 0 if all(r.rate is not None for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
