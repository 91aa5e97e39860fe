"""A loopback TLS terminator in front of a plaintext broker (Tansu's own TLS is broken).

``async with tls_terminator(upstream, cert, key) as port:`` listens with TLS on
127.0.0.1:port and forwards every connection in plaintext to ``upstream``.
A client reaches the brokers named in metadata, so the terminator also rewrites
the addresses in Metadata, FindCoordinator and DescribeCluster responses: the
upstream's host:port becomes ``advertised_host``:port (the name in the server
certificate), and the client stays behind TLS for every connection.

Requests are passed through as bytes; only their headers are read, to know how
to decode each response (Kafka responses carry no API key of their own).
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener

from protocol.headers import response_header_version
from protocol.messages import REGISTRY
from protocol.messages.headers import ResponseHeader
from protocol.primitives import Reader

_REWRITTEN = {3, 10, 60}  # Metadata, FindCoordinator, DescribeCluster
_PASS_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def _frames(buffer: bytearray) -> list[bytes]:
    """Cut complete size-prefixed frames off ``buffer`` (without their prefix)."""
    out = []
    while len(buffer) >= 4:
        (size,) = struct.unpack_from(">i", buffer)
        if len(buffer) < 4 + size:
            break
        out.append(bytes(buffer[4 : 4 + size]))
        del buffer[: 4 + size]
    return out


class _Rewriter:
    def __init__(self, upstream: tuple[str, int], advertised: tuple[str, int]) -> None:
        self.upstream = upstream
        self.advertised = advertised
        self.pending: dict[int, tuple[int, int]] = {}  # correlation id -> (api key, version)

    def note_request(self, frame: bytes) -> None:
        api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
        self.pending[correlation_id] = (api_key, version)

    def response(self, frame: bytes) -> bytes:
        (correlation_id,) = struct.unpack_from(">i", frame)
        api_key, version = self.pending.pop(correlation_id, (-1, -1))
        if api_key not in _REWRITTEN:
            return frame
        reader = Reader(frame)
        header = ResponseHeader.read(reader, response_header_version(api_key, version))
        body = REGISTRY[api_key][1].decode(memoryview(frame)[reader.pos :], version)
        self._rewrite(body)
        out = bytearray()
        header.write(out, response_header_version(api_key, version))
        body.write(out, version)
        return bytes(out)

    def _rewrite(self, body: Any) -> None:
        targets = [body, *getattr(body, "brokers", []), *getattr(body, "coordinators", [])]
        for item in targets:
            if (getattr(item, "host", None), getattr(item, "port", None)) == self.upstream:
                item.host, item.port = self.advertised


async def _pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, on_frame: Any) -> None:
    buffer = bytearray()
    try:
        while True:
            buffer += await source.receive()
            for frame in _frames(buffer):
                await sink.send(struct.pack(">i", len(out := on_frame(frame))) + out)
    except _PASS_ERRORS:
        pass
    finally:
        await sink.aclose()


@asynccontextmanager
async def tls_terminator(
    upstream: str, cert: Path, key: Path, *, advertised_host: str = "localhost"
) -> AsyncIterator[int]:
    """Serve TLS on a free loopback port (yielded) in front of plaintext ``upstream``."""
    up_host, _, up_port = upstream.rpartition(":")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(tcp.extra(anyio.abc.SocketAttribute.local_port))
    listener = TLSListener(tcp, server_ctx, standard_compatible=False)

    async def serve(client: anyio.abc.ByteStream) -> None:
        rewriter = _Rewriter((up_host, int(up_port)), (advertised_host, port))

        def request(frame: bytes) -> bytes:
            rewriter.note_request(frame)
            return frame

        try:
            async with await anyio.connect_tcp(up_host, int(up_port)) as server, client:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_pump, client, server, request)
                    tg.start_soon(_pump, server, client, rewriter.response)
        except (*_PASS_ERRORS, ssl.SSLError):
            pass  # a client that fails the TLS handshake (the point of some tests)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()
