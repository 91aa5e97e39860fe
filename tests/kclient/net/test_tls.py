"""TLS against a local fake broker with a CA and server certificate made in the test (S1, S2)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.streams.tls import TLSListener

from kclient.config import CommonConfig
from kclient.errors import KafkaConnectionError, KafkaTimeoutError, SSLVerificationError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.tls import build_ssl_context
from protocol.messages.metadata import MetadataRequest, MetadataResponse

from .fake_broker import FakeBroker

pytestmark = pytest.mark.anyio


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("pki")
    _run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=d,
    )
    _run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=d,
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
        cwd=d,
    )
    return d


@asynccontextmanager
async def tls_broker(pki: Path) -> AsyncIterator[int]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(tcp.extra(anyio.abc.SocketAttribute.local_port))
    listener = TLSListener(tcp, server_ctx, standard_compatible=False)
    broker = FakeBroker({3: lambda v, r: MetadataResponse(cluster_id="tls")})

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


def ctx(pki: Path | None, **kw: object) -> ssl.SSLContext | None:
    cfg = CommonConfig(
        bootstrap_servers="localhost:1",
        security_protocol="SSL",
        ssl_ca_location=str(pki / "ca.pem") if pki else None,
        **kw,  # type: ignore[arg-type]
    )
    return build_ssl_context(cfg)


async def test_trusted_ca_connects(pki: Path) -> None:
    async with (
        tls_broker(pki) as port,
        connect(
            f"localhost:{port}", ConnectionSettings(connect_timeout_ms=3000, ssl_context=ctx(pki))
        ) as conn,
    ):
        response = await conn.request(MetadataRequest(topics=[]))
        assert isinstance(response, MetadataResponse) and response.cluster_id == "tls"


async def test_untrusted_certificate_rejected_by_default(pki: Path) -> None:
    async with tls_broker(pki) as port:
        with pytest.raises(SSLVerificationError, match="certificate was rejected"):
            async with connect(
                f"localhost:{port}",
                ConnectionSettings(connect_timeout_ms=3000, ssl_context=ctx(None)),
            ):
                pass


async def test_wrong_host_rejected_unless_check_disabled(
    pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_broker(pki) as port:
        with pytest.raises(SSLVerificationError):
            async with connect(
                f"127.0.0.1:{port}",
                ConnectionSettings(connect_timeout_ms=3000, ssl_context=ctx(pki)),
            ):
                pass
        insecure = ctx(pki, ssl_check_hostname=False)
        assert "host name verification is disabled" in caplog.text
        async with connect(
            f"127.0.0.1:{port}", ConnectionSettings(connect_timeout_ms=3000, ssl_context=insecure)
        ) as conn:
            await conn.request(MetadataRequest(topics=[]))


async def test_plaintext_client_to_tls_port_fails_fast_with_hint(pki: Path) -> None:
    import tracemalloc

    async with tls_broker(pki) as port:
        tracemalloc.start()
        try:
            with pytest.raises((KafkaConnectionError, KafkaTimeoutError)) as info:
                async with connect(
                    f"localhost:{port}", ConnectionSettings(connect_timeout_ms=2000)
                ):
                    pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "TLS" in str(info.value)
    assert peak < 5 * 1024 * 1024  # the bogus "size" was rejected before allocating
