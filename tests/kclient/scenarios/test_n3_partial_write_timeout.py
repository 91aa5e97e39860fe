"""Reliability scenario N3 (reliability guide 2d), the partly written request.

A request times out after only half of its frame reached the socket (a full send buffer:
the transport accepts half and then blocks). The connection must be closed, so the next
request can never be spliced into the old half frame; the caller gets a timeout and the
next request goes out whole on a new connection. The other N3 faults (1-byte fragments,
unknown correlation id, out-of-order responses) are covered in tests/kclient/net and
tests/protocol/test_framing.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import pytest

from kclient.config import CommonConfig
from kclient.errors import KafkaConnectionError, KafkaTimeoutError
from kclient.net.pool import ConnectionPool
from kclient.net.transport import BrokerAddress, TcpTransport
from protocol.messages.metadata import MetadataRequest, MetadataResponse

from ..net.fake_broker import FakeBroker, running

pytestmark = pytest.mark.anyio


class StallingStream(anyio.abc.ByteStream):
    """A TCP stream whose next send, once armed, writes half its bytes and then blocks."""

    def __init__(self, inner: anyio.abc.ByteStream, transport: StallingTransport) -> None:
        self._inner, self._transport = inner, transport

    async def send(self, item: bytes) -> None:
        if self._transport.armed:
            self._transport.armed = False
            await self._inner.send(item[: len(item) // 2])
            self._transport.stalled.set()
            await anyio.sleep_forever()
        await self._inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._inner.extra_attributes


class StallingTransport:
    def __init__(self) -> None:
        self.armed = False
        self.stalled = anyio.Event()
        self._tcp = TcpTransport()

    async def connect(
        self, address: BrokerAddress, ssl_context: ssl.SSLContext | None
    ) -> anyio.abc.ByteStream:
        return StallingStream(await self._tcp.connect(address, ssl_context), self)


async def test_n3_partly_written_request_times_out_and_closes_the_connection() -> None:
    """N3: half a frame written, then the deadline: connection closed, nothing spliced."""
    frames: list[bool] = []

    def metadata(version: int, request: Any) -> MetadataResponse:
        frames.append(request.topics is None)  # the broker decoded a whole, valid frame
        return MetadataResponse(cluster_id="whole")

    broker = FakeBroker({3: metadata})
    transport = StallingTransport()
    async with running(broker), anyio.create_task_group() as tg:
        config = CommonConfig(
            bootstrap_servers=broker.address,
            request_timeout_ms=300,
            reconnect_backoff_ms=10,
            reconnect_backoff_max_ms=50,
        )
        pool = ConnectionPool(config, tg, transport=transport)
        first = await pool.get(-1)
        await pool.request(-1, MetadataRequest(topics=[]))
        transport.armed = True
        with anyio.fail_after(5), pytest.raises((KafkaTimeoutError, KafkaConnectionError)):
            await pool.request(-1, MetadataRequest(topics=None))
        assert transport.stalled.is_set()
        assert first.closed  # the half frame can never be followed by another request
        with anyio.fail_after(5):
            response = await pool.request(-1, MetadataRequest(topics=None))
        assert isinstance(response, MetadataResponse) and response.cluster_id == "whole"
        await pool.aclose()
    assert broker.connections == 2
    # The broker decoded exactly the two whole requests; the stalled one never arrived
    # whole, and no later bytes were appended to it.
    assert frames == [False, True]
