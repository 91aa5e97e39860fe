"""In-memory byte streams: a client end and a server end joined by memory channels."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
from anyio.streams.stapled import StapledByteStream

__all__ = ["memory_stream_pair"]


class _BytesSend(anyio.abc.ByteSendStream):
    def __init__(self, channel: anyio.abc.ObjectSendStream[bytes], on_close: Callable[[], None]):
        self._channel = channel
        self._on_close = on_close

    async def send(self, item: bytes) -> None:
        try:
            await self._channel.send(bytes(item))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise anyio.BrokenResourceError from None

    async def aclose(self) -> None:
        await self._channel.aclose()
        self._on_close()


class _BytesReceive(anyio.abc.ByteReceiveStream):
    def __init__(self, channel: anyio.abc.ObjectReceiveStream[bytes]):
        self._channel = channel

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._channel.receive()
        except anyio.ClosedResourceError:
            raise anyio.EndOfStream from None

    async def aclose(self) -> None:
        await self._channel.aclose()


def memory_stream_pair() -> tuple[StapledByteStream, StapledByteStream]:
    """(client, server) byte streams; closing one side ends the other's reads."""
    a_send, a_recv = anyio.create_memory_object_stream[bytes](100)
    b_send, b_recv = anyio.create_memory_object_stream[bytes](100)
    client = StapledByteStream(_BytesSend(a_send, lambda: None), _BytesReceive(b_recv))
    server = StapledByteStream(_BytesSend(b_send, lambda: None), _BytesReceive(a_recv))
    return client, server
