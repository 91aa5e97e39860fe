"""TLS against a local fake broker with a CA and server certificate made in the test (S1, S2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from kclient.errors import KafkaConnectionError, KafkaTimeoutError, SSLVerificationError
from kclient.net.connection import ConnectionSettings, connect
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from tests import _tls
from tests._tls import client_context, server_context, tls_fake_broker

from .fake_broker import FakeBroker

pytestmark = pytest.mark.anyio

pki = _tls.pki  # the module-scoped CA fixture; other test modules import it from here


@asynccontextmanager
async def tls_broker(pki: Path) -> AsyncIterator[int]:
    broker = FakeBroker({3: lambda v, r: MetadataResponse(cluster_id="tls")})
    async with tls_fake_broker(broker, server_context(pki)) as port:
        yield port


async def test_trusted_ca_connects(pki: Path) -> None:
    async with (
        tls_broker(pki) as port,
        connect(
            f"localhost:{port}",
            ConnectionSettings(connect_timeout_ms=3000, ssl_context=client_context(pki)),
        ) as conn,
    ):
        response = await conn.request(MetadataRequest(topics=[]))
        assert isinstance(response, MetadataResponse) and response.cluster_id == "tls"


async def test_untrusted_certificate_rejected_by_default(pki: Path) -> None:
    async with tls_broker(pki) as port:
        with pytest.raises(SSLVerificationError, match="certificate was rejected"):
            async with connect(
                f"localhost:{port}",
                ConnectionSettings(connect_timeout_ms=3000, ssl_context=client_context(None)),
            ):
                pass


async def test_wrong_host_rejected_unless_check_disabled(
    pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_broker(pki) as port:
        with pytest.raises(SSLVerificationError):
            async with connect(
                f"127.0.0.1:{port}",
                ConnectionSettings(connect_timeout_ms=3000, ssl_context=client_context(pki)),
            ):
                pass
        insecure = client_context(pki, ssl_check_hostname=False)
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
