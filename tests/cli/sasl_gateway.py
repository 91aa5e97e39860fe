"""A SASL/PLAIN gate in front of a plaintext broker: the mock cluster speaks no SASL.

``async with sasl_gateway(upstream, "alice", "pw") as gate:`` listens on
127.0.0.1:``gate.port``. Each connection may send ApiVersions first (answered by the
upstream, with SaslHandshake and SaslAuthenticate added to the list); SaslHandshake and
SaslAuthenticate are answered here, and anything else before a good PLAIN exchange closes
the connection, as a SASL listener does. After that, frames pass through, with the broker
addresses in metadata rewritten to the gate (so the client never goes around it).
Put :func:`tests.kclient.tls_terminator.tls_terminator` in front for SASL_SSL.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY
from protocol.messages.api_versions import ApiVersion, ApiVersionsResponse
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.messages.sasl_authenticate import SaslAuthenticateResponse
from protocol.messages.sasl_handshake import SaslHandshakeResponse
from protocol.primitives import Reader
from tests.kclient.net.fake_broker import response_frame
from tests.kclient.tls_terminator import _PASS_ERRORS, _frames, _Rewriter

_API_VERSIONS, _HANDSHAKE, _AUTHENTICATE = 18, 17, 36


@dataclass
class Gate:
    port: int
    accepted: list[str] = field(default_factory=list)  # user names let in
    rejected: list[str] = field(default_factory=list)


class _AddSaslVersions(_Rewriter):
    """Also add the SASL APIs to the upstream's ApiVersions answer."""

    def response(self, frame: bytes) -> bytes:
        (correlation_id,) = struct.unpack_from(">i", frame)
        if self.pending.get(correlation_id, (-1, -1))[0] != _API_VERSIONS:
            return super().response(frame)
        _, version = self.pending.pop(correlation_id)
        reader = Reader(frame)
        header = ResponseHeader.read(reader, response_header_version(_API_VERSIONS, version))
        body = ApiVersionsResponse.decode(memoryview(frame)[reader.pos :], version)
        body.api_keys = [
            *body.api_keys,
            ApiVersion(api_key=_HANDSHAKE, min_version=0, max_version=1),
            ApiVersion(api_key=_AUTHENTICATE, min_version=0, max_version=2),
        ]
        out = bytearray()
        header.write(out, response_header_version(_API_VERSIONS, version))
        body.write(out, version)
        return bytes(out)


class _Session:
    def __init__(self, gate: Gate, username: str, password: str) -> None:
        self.gate, self.expected = gate, b"\0" + username.encode() + b"\0" + password.encode()
        self.authenticated = False

    def answer(self, frame: bytes) -> bytes | None:
        """The reply to a SASL frame, or None when the connection must be closed."""
        api_key, version = struct.unpack_from(">hh", frame)
        reader = Reader(frame)
        header = RequestHeader.read(reader, request_header_version(api_key, version))
        request: Any = REGISTRY[api_key][0].decode(memoryview(frame)[reader.pos :], version)
        if api_key == _HANDSHAKE:
            code = 0 if request.mechanism == "PLAIN" else 33  # UNSUPPORTED_SASL_MECHANISM
            reply = SaslHandshakeResponse(error_code=code, mechanisms=["PLAIN"])
            return response_frame(header.correlation_id, reply, version)
        user = bytes(request.auth_bytes).split(b"\0")[1].decode(errors="replace")
        if bytes(request.auth_bytes) == self.expected:
            self.authenticated = True
            self.gate.accepted.append(user)
            ok = SaslAuthenticateResponse(session_lifetime_ms=0)
            return response_frame(header.correlation_id, ok, version)
        self.gate.rejected.append(user)
        failed = SaslAuthenticateResponse(
            error_code=58, error_message="Authentication failed: invalid credentials"
        )
        return response_frame(header.correlation_id, failed, version)


@asynccontextmanager
async def sasl_gateway(upstream: str, username: str, password: str) -> AsyncIterator[Gate]:
    up_host, _, up_port_text = upstream.rpartition(":")
    up_port = int(up_port_text)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    gate = Gate(int(listener.extra(anyio.abc.SocketAttribute.local_port)))

    async def serve(client: anyio.abc.SocketStream) -> None:
        rewriter = _AddSaslVersions((up_host, up_port), ("127.0.0.1", gate.port))
        session = _Session(gate, username, password)
        lock = anyio.Lock()  # both directions may write to the client

        async def to_client(data: bytes) -> None:
            async with lock:
                await client.send(struct.pack(">i", len(data)) + data)

        async def from_server(server: anyio.abc.SocketStream) -> None:
            buffer = bytearray()
            while True:
                buffer += await server.receive()
                for frame in _frames(buffer):
                    await to_client(rewriter.response(frame))

        async def from_client(server: anyio.abc.SocketStream) -> None:
            buffer = bytearray()
            while True:
                buffer += await client.receive()
                for frame in _frames(buffer):
                    (api_key,) = struct.unpack_from(">h", frame)
                    if api_key in (_HANDSHAKE, _AUTHENTICATE):
                        reply = session.answer(frame)
                        if reply is not None:
                            await to_client(reply[4:])
                        continue
                    if api_key != _API_VERSIONS and not session.authenticated:
                        return  # a SASL listener closes the connection
                    rewriter.note_request(frame)
                    await server.send(struct.pack(">i", len(frame)) + frame)

        try:
            async with await anyio.connect_tcp(up_host, up_port) as server, client:
                async with anyio.create_task_group() as tg:

                    async def pump_then_stop() -> None:
                        try:
                            await from_server(server)
                        except _PASS_ERRORS:
                            pass
                        finally:
                            tg.cancel_scope.cancel()

                    tg.start_soon(pump_then_stop)
                    try:
                        await from_client(server)
                    except _PASS_ERRORS:
                        pass
                    finally:
                        tg.cancel_scope.cancel()
        except _PASS_ERRORS:
            pass  # the upstream is gone

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield gate
        finally:
            tg.cancel_scope.cancel()
