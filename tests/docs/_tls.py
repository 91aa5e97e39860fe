"""TLS for the docs' security example: a client certificate signed by the test CA, and a
loopback TLS terminator in front of the MockCluster that can demand one (mutual TLS).

It reuses the address rewriting of tests/kclient/tls_terminator.py (broker addresses in
Metadata/FindCoordinator/DescribeCluster point back at the terminator) and adds what that
one lacks: ``require_client_cert`` and a count of verified client certificates, so a test
can tell that mutual TLS really happened.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSListener

from tests.kclient.tls_terminator import _PASS_ERRORS, _pump, _Rewriter


def make_client_cert(pki: Path) -> tuple[Path, Path]:
    """client.pem/client.key in ``pki``, signed by its ca.pem/ca.key (made once per dir)."""
    cert, key = pki / "client.pem", pki / "client.key"
    if not cert.exists():
        for args in (
            "req -newkey rsa:2048 -nodes -subj /CN=docs-client -keyout client.key -out client.csr",
            "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
            "-out client.pem",
        ):
            subprocess.run(["openssl", *args.split()], cwd=pki, check=True, capture_output=True)
    return cert, key


@dataclass
class Terminator:
    port: int
    connections: int = 0  # TLS handshakes completed
    client_certs: int = 0  # of those, with a client certificate the CA vouches for


@asynccontextmanager
async def tls_terminator(
    upstream: str, pki: Path, *, require_client_cert: bool = False
) -> AsyncIterator[Terminator]:
    """TLS on a free 127.0.0.1 port (server cert for "localhost") in front of ``upstream``."""
    up_host, _, up_port = upstream.rpartition(":")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    state = Terminator(int(tcp.extra(anyio.abc.SocketAttribute.local_port)))
    listener = TLSListener(tcp, context, standard_compatible=False)

    async def serve(client: anyio.abc.ByteStream) -> None:
        state.connections += 1
        if client.extra(TLSAttribute.peer_certificate, None):
            state.client_certs += 1
        rewriter = _Rewriter((up_host, int(up_port)), ("localhost", state.port))

        def request(frame: bytes) -> bytes:
            rewriter.note_request(frame)
            return frame

        try:
            async with await anyio.connect_tcp(up_host, int(up_port)) as server, client:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_pump, client, server, request)
                    tg.start_soon(_pump, server, client, rewriter.response)
        except (*_PASS_ERRORS, ssl.SSLError):
            pass  # the client went away

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield state
        finally:
            tg.cancel_scope.cancel()
