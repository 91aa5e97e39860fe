"""A tiny Kafka broker for tests: an anyio TCP listener on 127.0.0.1 that speaks
just the frames a test needs, using the generated codec.

Handlers map an API key to ``fn(version, request) -> reply`` where the reply is a
Response, raw frame bytes (sent as is), ``None`` (never answer: a blackhole) or
``CLOSE`` (drop the connection). Handlers may be async. Unhandled APIs get no answer.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from protocol.api import Request, Response
from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY
from protocol.messages.api_versions import ApiVersion, ApiVersionsResponse
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.primitives import Reader

CLOSE = object()
Handler = Callable[[int, Any], Any]


def response_frame(correlation_id: int, response: Response, version: int) -> bytes:
    out = bytearray(4)
    ResponseHeader(correlation_id=correlation_id).write(
        out, response_header_version(response.API_KEY, version)
    )
    response.write(out, version)
    struct.pack_into(">i", out, 0, len(out) - 4)
    return bytes(out)


def api_versions_ok(
    version: int, request: Any, *, drop: tuple[int, ...] = (), caps: dict[int, int] | None = None
) -> ApiVersionsResponse:
    keys = []
    for key, (req_cls, _) in sorted(REGISTRY.items()):
        if key in drop:
            continue
        high = min(req_cls.MAX_VERSION, (caps or {}).get(key, req_cls.MAX_VERSION))
        keys.append(ApiVersion(api_key=key, min_version=req_cls.MIN_VERSION, max_version=high))
    return ApiVersionsResponse(error_code=0, api_keys=keys)


class FakeBroker:
    def __init__(self, handlers: dict[int, Handler] | None = None) -> None:
        self.handlers: dict[int, Handler] = {18: api_versions_ok}
        self.handlers.update(handlers or {})
        self.port = 0
        self.connections = 0
        self.requests: list[tuple[int, int, Request]] = []
        self.open_streams: set[anyio.abc.ByteStream] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        self.open_streams.add(stream)
        buffer = bytearray()
        try:
            async with stream:
                while True:
                    try:
                        buffer += await stream.receive()
                    except (
                        anyio.EndOfStream,
                        anyio.BrokenResourceError,
                        anyio.ClosedResourceError,
                    ):
                        return
                    while len(buffer) >= 4:
                        (size,) = struct.unpack_from(">i", buffer)
                        if len(buffer) < 4 + size:
                            break
                        frame = bytes(buffer[4 : 4 + size])
                        del buffer[: 4 + size]
                        if not await self._handle(stream, frame):
                            return
        finally:
            self.open_streams.discard(stream)

    async def _handle(self, stream: anyio.abc.ByteStream, frame: bytes) -> bool:
        api_key, version = struct.unpack_from(">hh", frame)
        reader = Reader(frame)
        header = RequestHeader.read(reader, request_header_version(api_key, version))
        request = REGISTRY[api_key][0].decode(memoryview(frame)[reader.pos :], version)
        self.requests.append((api_key, version, request))
        handler = self.handlers.get(api_key)
        if handler is None:
            return True
        reply = handler(version, request)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply is CLOSE:
            return False
        if reply is None:
            return True
        if isinstance(reply, bytes):
            await stream.send(reply)
        else:
            await stream.send(response_frame(header.correlation_id, reply, version))
        return True

    async def close_all(self) -> None:
        for stream in list(self.open_streams):
            await stream.aclose()


@asynccontextmanager
async def running(broker: FakeBroker) -> AsyncIterator[FakeBroker]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    broker.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, broker._serve)
        try:
            yield broker
        finally:
            tg.cancel_scope.cancel()
