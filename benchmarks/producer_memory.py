"""kclient producer memory bound: peak RSS <= baseline + buffer_memory + a fixed overhead.

``python -m benchmarks.producer_bench --memory-check [--records N] [--value-size S]
[--buffer-memory B] [--bootstrap 127.0.0.1:PORT]`` (or ``python -m
benchmarks.producer_memory`` with the same options).

One subprocess per variant (``send loop``, ``send_many``) starts an idempotent,
``acks=all`` producer with ``buffer_memory=B``, sends one acknowledged warm-up
record, collects garbage and reads its own RSS (the *baseline*: interpreter,
imports, connections). It then produces N keyless records of S bytes, each a
*distinct* bytes object made in the loop (as an application serializing its own
data would: a producer that kept references to values would show here), flushes
and exits; its ``VmHWM`` is the peak. N x S is chosen well above B, so the buffer
fills and ``send`` has to wait for room: the bound is actually exercised.

The bound is ``baseline + B + FIXED_OVERHEAD``: B for the records queued or in
flight (the accumulator charges every batch until its request is answered),
plus a fixed allowance for what is outside the buffer by design: the frames of
the requests being written and answered (at most ``max_in_flight`` x
``max_request_size`` per broker), socket buffers and the allocator's own
slack. Exit status 1 if a variant exceeds it. Not a timed test: the figures go
in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any

from benchmarks._harness import (
    broker,
    count_records,
    create_topic,
    fmt_num,
    loopback_bootstrap,
    make_value,
    markdown_table,
    run_worker,
    unique_name,
    vm_status_kib,
)

DEFAULT_RECORDS = 500_000
DEFAULT_VALUE_SIZE = 100
DEFAULT_BUFFER_MEMORY = 8 << 20
MIB = 1 << 20
# 5 in-flight requests x the 1 MiB default max_request_size, plus 8 MiB of slack
# for socket buffers, response frames and allocator fragmentation.
FIXED_OVERHEAD = 5 * MIB + 8 * MIB
CHUNK = 1000
VARIANTS = ("send loop", "send_many")


def kclient_memory_worker(params: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from kclient import AsyncProducer

    topic, n, size = params["topic"], params["records"], params["value_size"]
    template = make_value(size)

    def value(i: int) -> bytes:  # a new object per record, like serialized app data
        return template[:-8] + i.to_bytes(8, "big")

    async def run() -> dict[str, Any]:
        async with AsyncProducer(
            bootstrap_servers=params["bootstrap"],
            acks="all",
            enable_idempotence=True,
            buffer_memory=params["buffer_memory"],
            max_block_ms=120_000,
        ) as producer:
            await producer.partitions_for(topic)
            await producer.send_and_wait(topic, b"warm-up", partition=0)
            gc.collect()
            baseline = vm_status_kib("VmRSS")
            started = time.perf_counter()
            if params["variant"] == "send loop":
                send = producer.send
                for i in range(n):
                    await send(topic, value(i))
            else:
                for offset in range(0, n, CHUNK):
                    chunk = [value(i) for i in range(offset, min(offset + CHUNK, n))]
                    await producer.send_many(topic, chunk)
            await producer.flush()
            return {"baseline_kib": baseline, "seconds": time.perf_counter() - started}

    result: dict[str, Any] = anyio.run(run)
    return result


def memory_check(bootstrap: str | None, n: int, size: int, buffer_memory: int) -> int:
    rows: list[list[str]] = []
    failures = 0
    with broker(bootstrap) as servers:
        for variant in VARIANTS:
            topic = unique_name("bench-produce-memory")
            create_topic(servers, topic)
            params = {"bootstrap": servers, "topic": topic, "records": n, "value_size": size,
                      "buffer_memory": buffer_memory, "variant": variant}  # fmt: skip
            print(f"  kclient {variant} ...", file=sys.stderr, flush=True)
            outcome = run_worker(
                "benchmarks.producer_memory:kclient_memory_worker", params, timeout=120 + n / 500
            )
            if outcome.data is None or outcome.data.get("baseline_kib") is None:
                rows.append([variant, "-", "-", "-", "-", "-", f"failed: {outcome.error}"])
                failures += 1
                continue
            landed = count_records(servers, topic) - 1  # minus the warm-up record
            baseline = outcome.data["baseline_kib"] / 1024
            peak = outcome.peak_rss_mb
            bound = baseline + (buffer_memory + FIXED_OVERHEAD) / MIB
            ok = peak <= bound and landed == n
            failures += not ok
            verdict = "ok" if ok else ("OVER BOUND" if landed == n else f"{landed:,} landed")
            rate = f"{n / outcome.data['seconds']:,.0f}"
            rows.append([variant, fmt_num(baseline), fmt_num(peak), fmt_num(peak - baseline),
                         fmt_num(bound), rate, verdict])  # fmt: skip
    print(
        f"\nkclient peak RSS: {n:,} records x {size} B (distinct objects), "
        f"buffer_memory={buffer_memory / MIB:g} MiB, fixed overhead {FIXED_OVERHEAD / MIB:g} MiB\n"
    )
    headers = ["variant", "baseline MB", "peak MB", "growth MB", "bound MB", "records/s", "check"]
    print(markdown_table(headers, rows))
    return 1 if failures else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--value-size",
        type=int,
        default=DEFAULT_VALUE_SIZE,
        help=f"memory check: bytes per value (default {DEFAULT_VALUE_SIZE})",
    )
    parser.add_argument(
        "--buffer-memory",
        type=int,
        default=DEFAULT_BUFFER_MEMORY,
        help=f"memory check: buffer_memory in bytes (default {DEFAULT_BUFFER_MEMORY >> 20} MiB)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--bootstrap", type=loopback_bootstrap, default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return memory_check(args.bootstrap, args.records, args.value_size, args.buffer_memory)


if __name__ == "__main__":
    sys.exit(main())
