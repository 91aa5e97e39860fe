"""``kclient consume TOPIC``: print records, as a group member or from chosen partitions."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import TYPE_CHECKING, Any

import anyio

from kclient.cli._common import CliError, admin_settings, check_results
from kclient.structs import ConsumerRecord, TopicPartition

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.consumer.consumer import AsyncConsumer

Record = ConsumerRecord[bytes | None, bytes | None]


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("consume", parents=[parent], help="print records")
    p.add_argument("topic")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--group", "-g", help="consume as a member of this group (commits)")
    who.add_argument("--partition", "-p", type=int, action="append", help="repeatable")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--from-beginning", action="store_true")
    where.add_argument("--from-end", action="store_true", help="only new records (default)")
    where.add_argument("--offset", type=int, help="start offset (with --partition)")
    where.add_argument("--timestamp", type=int, help="first record at or after this epoch ms")
    # 10 s, not Java's 45 s: Tansu holds a join for half the session (tansu-quirks.md).
    p.add_argument("--session-timeout-ms", type=int, default=10_000, help="group session")
    p.add_argument("--format", choices=("raw", "json"), default="raw")
    p.add_argument("--count", "-n", type=int, help="stop after this many records")
    p.add_argument("--idle", type=float, help="stop after this many seconds without records")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.offset is not None and args.group:
        raise CliError("--offset needs --partition (a group starts at its committed offsets)")
    anyio.run(_consume, args)
    return 0


async def _consume(args: argparse.Namespace) -> None:
    from kclient.consumer.consumer import AsyncConsumer

    settings = admin_settings(args)
    partitions = None if args.group else await _partitions(args, settings)
    consumer: AsyncConsumer[bytes | None, bytes | None] = AsyncConsumer(
        group_id=args.group,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=args.group is not None,
        session_timeout_ms=args.session_timeout_ms,
        **settings,
    )
    async with consumer:
        if partitions is None:
            consumer.subscribe([args.topic])
        else:
            consumer.assign(partitions)
            await _position(consumer, partitions, args)
        await _print_records(consumer, args)


async def _partitions(args: argparse.Namespace, settings: dict[str, Any]) -> list[TopicPartition]:
    from kclient.admin import AsyncAdmin

    with anyio.fail_after(args.timeout + 1):  # also bounds connecting to a silent address
        async with AsyncAdmin(**settings) as admin:
            found = await admin.describe_topics([args.topic])
    check_results("describe", found)
    every = [p.partition for p in found[args.topic].partitions]
    chosen = args.partition or every
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        raise CliError(f"{args.topic} has no partition {unknown[0]} (it has {len(every)})")
    return [TopicPartition(args.topic, p) for p in chosen]


async def _position(
    consumer: AsyncConsumer[Any, Any], partitions: list[TopicPartition], args: argparse.Namespace
) -> None:
    if args.from_beginning:
        await consumer.seek_to_beginning(*partitions)
    elif args.offset is not None:
        for tp in partitions:
            consumer.seek(tp, args.offset)
    elif args.timestamp is not None:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, args.timestamp))
        for tp in partitions:
            hit = found.get(tp)
            if hit is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)
    else:
        await consumer.seek_to_end(*partitions)


async def _print_records(consumer: AsyncConsumer[Any, Any], args: argparse.Namespace) -> None:
    printed = 0
    idle_ms = args.idle * 1000 if args.idle is not None else None
    while args.count is None or printed < args.count:
        limit = None if args.count is None else args.count - printed
        batches = await consumer.getmany(timeout_ms=idle_ms or 1000, max_records=limit)
        if not batches and idle_ms is not None:
            return
        for records in batches.values():
            for record in records:
                print(_format(record, args.format), flush=False)
                printed += 1
        sys.stdout.flush()


def _format(record: Record, fmt: str) -> str:
    if fmt == "raw":
        return _text(record.value) or ""
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "key": _text(record.key),
            "value": _text(record.value),
            "headers": [[k, _text(v)] for k, v in record.headers],
        }
    )


def _text(data: bytes | None) -> str | None:
    """UTF-8 text as is; anything else base64 with a ``base64:`` prefix (lossless)."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()
