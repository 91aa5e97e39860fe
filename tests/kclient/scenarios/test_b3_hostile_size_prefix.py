"""Reliability scenario B3 (reliability guide 2e): a hostile size prefix on a real connection.

A loopback server answers the client's first request with a 4-byte size of 0x7FFFFFFF or
-1, with "HTTP", or with a TLS alert. The client must fail the connection with a message
that names the likely cause, before allocating anything near the claimed size (tracemalloc
peak under 1 MB above the baseline, measured around the whole connection attempt), and a
pool must pace its reconnects with the usual backoff. The pure framing check is in
tests/protocol/test_framing.py.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from kclient.config import CommonConfig
from kclient.errors import KafkaConnectionError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.pool import ConnectionPool
from protocol.messages.metadata import MetadataRequest

pytestmark = pytest.mark.anyio

HOSTILE = [
    pytest.param(b"\x7f\xff\xff\xff" + b"\x00" * 60, "does not speak", id="2GiB"),
    pytest.param(b"\xff\xff\xff\xff" + b"\x00" * 60, "does not speak", id="minus-1"),
    pytest.param(b"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP", id="http"),
    pytest.param(b"\x15\x03\x03\x00\x02\x02\x28", "TLS", id="tls-alert"),
]


@asynccontextmanager
async def hostile_server(reply: bytes) -> AsyncIterator[tuple[int, list[int]]]:
    """Answers whatever arrives first with ``reply``, then keeps the socket open (so only
    the client's own check can end the attempt quickly)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    accepted: list[int] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        accepted.append(1)
        async with stream:
            try:
                await stream.receive()
                await stream.send(reply)
                await anyio.sleep_forever()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield port, accepted
        finally:
            tg.cancel_scope.cancel()


@pytest.mark.parametrize(("reply", "hint"), HOSTILE)
async def test_b3_connection_fails_with_a_hint_before_allocating(reply: bytes, hint: str) -> None:
    """B3: a clear, non-timeout error naming the likely misconfiguration; bounded memory."""
    settings = ConnectionSettings(request_timeout_ms=10_000, connect_timeout_ms=10_000)
    async with hostile_server(reply) as (port, _):
        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            with anyio.fail_after(5), pytest.raises(KafkaConnectionError) as info:
                async with connect(f"127.0.0.1:{port}", settings):
                    pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert hint in str(info.value)
    assert info.value.retriable  # a broker that restarts correctly will be retried
    assert peak - baseline < 1024 * 1024


async def test_b3_pool_retries_with_backoff_not_in_a_hot_loop() -> None:
    """B3: the pool treats the hostile reply as a connection failure: each retry waits out
    the (growing) reconnect backoff, and the caller gets the hint, not a hang."""
    async with hostile_server(b"\x7f\xff\xff\xff" + b"\x00" * 60) as (port, accepted):
        config = CommonConfig(
            bootstrap_servers=f"127.0.0.1:{port}",
            request_timeout_ms=1000,
            socket_connection_setup_timeout_ms=1000,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=400,
        )
        failures: list[str] = []
        async with anyio.create_task_group() as tg:
            pool = ConnectionPool(config, tg)
            with anyio.move_on_after(1.0):
                while True:
                    try:
                        await pool.request(-1, MetadataRequest(topics=[]))
                    except KafkaConnectionError as exc:
                        failures.append(str(exc))
            await pool.aclose()
    assert failures and all("does not speak" in f for f in failures)
    # 0, +100, +200, +400, +400 ms (with jitter) fit in one second: a handful, not hundreds
    assert 2 <= len(accepted) <= 7
