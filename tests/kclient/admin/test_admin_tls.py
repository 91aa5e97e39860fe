"""A real AsyncAdmin over TLS to Tansu, through the loopback TLS terminator.

The CA and the server certificate (CN/SAN "localhost") are made in the test with the
openssl CLI (the ``pki`` fixture of tests/kclient/net/test_tls.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from kclient.admin import AsyncAdmin
from kclient.errors import SSLVerificationError
from tests.kclient.net.test_tls import pki  # noqa: F401  (fixture)
from tests.kclient.tls_terminator import tls_terminator

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

FAST: dict[str, Any] = dict(
    security_protocol="SSL",
    request_timeout_ms=3000,
    default_api_timeout_ms=3000,
    socket_connection_setup_timeout_ms=2000,
    retry_backoff_ms=50,
    retry_backoff_max_ms=200,
)


async def test_trusted_ca_works_end_to_end(tansu_bootstrap: str, pki: Path) -> None:  # noqa: F811
    async with tls_terminator(tansu_bootstrap, pki / "server.pem", pki / "server.key") as port:
        async with AsyncAdmin(
            bootstrap_servers=f"localhost:{port}", ssl_ca_location=str(pki / "ca.pem"), **FAST
        ) as admin:
            cluster = await admin.describe_cluster()
            # every broker address the client learns points at the terminator
            assert [(n.host, n.port) for n in cluster.nodes] == [("localhost", port)]
            listing = await admin.list_topics()
            assert isinstance(listing, list)
            assert (await admin.list_consumer_groups()) is not None


async def test_self_signed_rejected_by_default(tansu_bootstrap: str, pki: Path) -> None:  # noqa: F811
    async with tls_terminator(tansu_bootstrap, pki / "server.pem", pki / "server.key") as port:
        async with AsyncAdmin(bootstrap_servers=f"localhost:{port}", **FAST) as admin:
            with pytest.raises(Exception) as info:
                await admin.describe_cluster(timeout_ms=2000)
    assert _caused_by_tls(info.value)


async def test_wrong_host_rejected_unless_check_disabled(
    tansu_bootstrap: str,
    pki: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca = str(pki / "ca.pem")
    async with tls_terminator(
        tansu_bootstrap, pki / "server.pem", pki / "server.key", advertised_host="127.0.0.1"
    ) as port:
        async with AsyncAdmin(
            bootstrap_servers=f"127.0.0.1:{port}", ssl_ca_location=ca, **FAST
        ) as admin:
            with pytest.raises(Exception) as info:
                await admin.describe_cluster(timeout_ms=2000)
        assert _caused_by_tls(info.value)
        with caplog.at_level(logging.WARNING, logger="kclient"):
            async with AsyncAdmin(
                bootstrap_servers=f"127.0.0.1:{port}",
                ssl_ca_location=ca,
                ssl_check_hostname=False,
                **FAST,
            ) as admin:
                cluster = await admin.describe_cluster()
        assert cluster.nodes and cluster.nodes[0].port == port
        assert "host name verification is disabled" in caplog.text


async def test_verification_off_needs_the_explicit_flag(tansu_bootstrap: str, pki: Path) -> None:  # noqa: F811
    async with tls_terminator(tansu_bootstrap, pki / "server.pem", pki / "server.key") as port:
        async with AsyncAdmin(
            bootstrap_servers=f"localhost:{port}",
            enable_ssl_certificate_verification=False,
            **FAST,
        ) as admin:
            assert (await admin.describe_cluster()).nodes


def _caused_by_tls(exc: BaseException) -> bool:
    """The metadata refresh timed out; its last error was the certificate check."""
    text = str(exc)
    return isinstance(exc, SSLVerificationError) or "certificate was rejected" in text
