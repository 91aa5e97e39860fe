"""``kclient demo``: produce records, consume them with a two-member group, verify each.

Without a bootstrap server it starts the embedded Tansu broker (kclient.testing, through
``cluster_for``, which ``kclient bench`` shares), so the demo needs nothing but the dev
extra. Exit status 1 when verification fails.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from kclient.cli._common import CliError, Progress, client_settings, cluster_for
from kclient.cli._demo_consume import consume_all
from kclient.cli._ledger import Ledger, key_for, value_for
from kclient.cli._versions import print_versions_table

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.producer.batch import DeliveryFuture

PARTITIONS = 4
_CHUNK = 1000  # records per send_many call: big enough to amortise, small enough to yield


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[parent], help="produce, consume and verify records")
    p.add_argument("--records", type=int, default=100_000, help="how many (default 100,000)")
    p.add_argument(
        "--versions-table",
        action="store_true",
        help="only print the broker's API versions as the markdown table of tansu-quirks.md",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.records < 1:
        raise CliError("--records must be at least 1")
    out = sys.stdout
    with cluster_for(args, out, announce=not args.versions_table) as (bootstrap, versions):
        if args.versions_table:
            print_versions_table(bootstrap, versions, args.timeout, out)
            return 0
        settings = client_settings(args, bootstrap)
        ok: bool = anyio.run(partial(demo, settings, args.records, args.timeout, out))
    return 0 if ok else 1


async def demo(settings: dict[str, Any], total: int, timeout_s: float, out: TextIO) -> bool:
    """The whole demo with client ``settings``; True when every record arrived exactly once."""
    topic = f"kclient-demo-{uuid.uuid4().hex[:8]}"
    await create_topic(settings, topic, PARTITIONS, timeout_s)
    print(f"topic {topic}: {PARTITIONS} partitions; {total:,} records of 100 bytes", file=out)
    ledger = Ledger(total)
    produce_s = await _produce(settings, topic, ledger, out)
    consume_s, per_member = await consume_all(settings, topic, ledger, timeout_s, out)
    verdict = ledger.verdict()
    members = ", ".join(f"{n:,}" for n in per_member)
    rate = total / produce_s
    print(f"  produce   {rate:>12,.0f} rec/s  ({produce_s:.2f} s, idempotent, acks=all)", file=out)
    print(
        f"  consume   {verdict.received / max(consume_s, 1e-9):>12,.0f} rec/s  "
        f"({consume_s:.2f} s first to last record, 2 consumers: {members})",
        file=out,
    )
    print(verdict.line(), file=out)
    return verdict.ok


async def create_topic(
    settings: dict[str, Any], topic: str, partitions: int, timeout_s: float
) -> None:
    from kclient.admin import AsyncAdmin, NewTopic

    # fail_after as well as timeout_ms: the admin's own deadline covers requests, this one
    # also covers start-up against an address where nothing answers.
    with anyio.fail_after(timeout_s + 1):
        async with AsyncAdmin(default_api_timeout_ms=int(timeout_s * 1000), **settings) as admin:
            new = NewTopic(topic, num_partitions=partitions, replication_factor=1)
            result = (await admin.create_topics([new], timeout_ms=timeout_s * 1000))[topic]
    if result.error is not None:
        raise CliError(f"cannot create topic {topic}: {result.error}")


async def _produce(settings: dict[str, Any], topic: str, ledger: Ledger, out: TextIO) -> float:
    from kclient.producer.producer import AsyncProducer, ProducerRecord

    total = ledger.total
    progress = Progress("produced", total, out)
    acked = 0

    def on_done(_future: DeliveryFuture) -> None:
        nonlocal acked
        acked += 1
        progress.update(acked)

    futures: list[DeliveryFuture] = []
    async with AsyncProducer(
        acks="all", enable_idempotence=True, batch_size=64 * 1024, linger_ms=10, **settings
    ) as producer:
        for start in range(0, total, _CHUNK):
            chunk = [
                ProducerRecord(value=value_for(i), key=key_for(i))
                for i in range(start, min(total, start + _CHUNK))
            ]
            for future in await producer.send_many(topic, chunk):
                future.add_done_callback(on_done)
                futures.append(future)
        await producer.flush()
    elapsed = progress.finish(acked)
    failed = _record_acks(futures, ledger)
    if failed:
        raise CliError(f"{failed:,} of {total:,} records were not acknowledged")
    return elapsed


def _record_acks(futures: list[DeliveryFuture], ledger: Ledger) -> int:
    failed = 0
    for index, future in enumerate(futures):
        if future.exception() is None:
            ledger.acked(index, future.result())
        else:
            failed += 1
    return failed
