"""Reliability scenario S1 (reliability guide 2f), the expired-certificate case.

Self-signed (untrusted) and wrong-host certificates are tested in tests/kclient/net/test_tls.py
and against Tansu in tests/kclient/admin/test_admin_tls.py. Here the broker's certificate is
signed by the trusted CA and names the right host, but expired in 2020: default settings
must refuse it with SSLVerificationError, and ssl_check_hostname=False must not change that
(it turns off the host name check only, not the chain and date check).
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener

from kclient.config import CommonConfig
from kclient.errors import SSLVerificationError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.tls import build_ssl_context
from protocol.messages.metadata import MetadataResponse

from ..net.fake_broker import FakeBroker
from ..net.test_tls import pki  # noqa: F401 - the module-scoped CA fixture

pytestmark = pytest.mark.anyio

_CA_CONFIG = """[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = anything
copy_extensions = copy
[anything]
commonName = supplied
"""


@pytest.fixture(scope="module")
def expired(pki: Path) -> Path:  # noqa: F811
    """A localhost certificate from the test CA, valid only on 2020-01-01."""

    def run(*args: str) -> None:
        subprocess.run(args, cwd=pki, check=True, capture_output=True)

    (pki / "ca.cnf").write_text(_CA_CONFIG)
    (pki / "index.txt").write_text("")
    (pki / "serial.txt").write_text("1000\n")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost", "-keyout", "expired.key",
        "-out", "expired.csr")  # fmt: skip
    run("openssl", "ca", "-config", "ca.cnf", "-batch", "-notext", "-cert", "ca.pem",
        "-keyfile", "ca.key", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
        "-in", "expired.csr", "-out", "expired.pem")  # fmt: skip
    return pki


@asynccontextmanager
async def expired_broker(pki: Path) -> AsyncIterator[int]:  # noqa: F811
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki / "expired.pem", pki / "expired.key")
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(tcp.extra(anyio.abc.SocketAttribute.local_port))
    listener = TLSListener(tcp, server_ctx, standard_compatible=False)
    broker = FakeBroker({3: lambda v, r: MetadataResponse(cluster_id="expired")})

    async def serve(stream: anyio.abc.ByteStream) -> None:
        try:
            await broker._serve(stream)
        except (ssl.SSLError, anyio.BrokenResourceError, OSError):
            pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("check_hostname", [True, False])
async def test_s1_expired_certificate_is_rejected(expired: Path, check_hostname: bool) -> None:
    """S1: expired (but trusted, right host) certificate -> SSLVerificationError."""
    config = CommonConfig(
        bootstrap_servers="localhost:1",
        security_protocol="SSL",
        ssl_ca_location=str(expired / "ca.pem"),
        ssl_check_hostname=check_hostname,
    )
    settings = ConnectionSettings(connect_timeout_ms=3000, ssl_context=build_ssl_context(config))
    async with expired_broker(expired) as port:
        with anyio.fail_after(5), pytest.raises(SSLVerificationError) as info:
            async with connect(f"localhost:{port}", settings):
                pass
    assert "expired" in str(info.value).lower()
    assert not info.value.retriable
