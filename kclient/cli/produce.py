"""``kclient produce TOPIC``: one record per input line (stdin or --file)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

import anyio

from kclient.cli._common import CliError, client_settings, parse_pairs, require_bootstrap

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.producer.batch import DeliveryFuture


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("produce", parents=[parent], help="send lines as records")
    p.add_argument("topic")
    p.add_argument("--file", "-f", help="read lines from this file (default: stdin)")
    p.add_argument("--key-separator", "-K", help="split each line into KEY<sep>VALUE")
    p.add_argument("--header", "-H", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--partition", "-p", type=int, help="default: the partitioner's choice")
    p.add_argument(
        "--compression", default="none", choices=("none", "gzip", "snappy", "lz4", "zstd")
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = client_settings(args, require_bootstrap(args))
    headers = [(k, v.encode()) for k, v in parse_pairs(args.header, "--header")]
    if args.key_separator == "":
        raise CliError("--key-separator must not be empty")
    stream: IO[bytes] = open(args.file, "rb") if args.file else sys.stdin.buffer
    try:
        sent = anyio.run(_produce, args, settings, headers, stream)
    finally:
        if args.file:
            stream.close()
    print(f"produced {sent:,} records to {args.topic}", file=sys.stderr)
    return 0


async def _produce(
    args: argparse.Namespace,
    settings: dict[str, Any],
    headers: list[tuple[str, bytes]],
    stream: IO[bytes],
) -> int:
    from kclient.producer.producer import AsyncProducer

    sep = args.key_separator.encode() if args.key_separator else None
    futures: list[DeliveryFuture] = []
    async with AsyncProducer(compression_type=args.compression, **settings) as producer:
        async for line in _lines(stream):
            key, value = _split(line, sep)
            futures.append(
                await producer.send(args.topic, value, key, args.partition, headers=headers)
            )
        await producer.flush()
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        raise CliError(f"{len(failed):,} of {len(futures):,} records failed: {failed[0]}")
    return len(futures)


async def _lines(stream: IO[bytes]) -> AsyncIterator[bytes]:
    """Lines without their newline. A terminal is read in a worker thread so the
    producer keeps sending while the user types; files and pipes are read directly."""
    interactive = stream.isatty()
    while True:
        line = await anyio.to_thread.run_sync(stream.readline) if interactive else stream.readline()
        if not line:
            return
        yield line.rstrip(b"\r\n")


def _split(line: bytes, sep: bytes | None) -> tuple[bytes | None, bytes]:
    if sep is None:
        return None, line
    key, found, value = line.partition(sep)
    if not found:
        raise CliError(f"line has no key separator {sep.decode()!r}: {line[:60]!r}")
    return key, value
