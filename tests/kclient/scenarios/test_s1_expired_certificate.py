"""Reliability scenario S1 (reliability guide 2f), the expired-certificate case.

Self-signed (untrusted) and wrong-host certificates are tested in tests/kclient/net/test_tls.py
and against Tansu in tests/kclient/admin/test_admin_tls.py. Here the broker's certificate is
signed by the trusted CA and names the right host, but expired in 2020: default settings
must refuse it with SSLVerificationError, and ssl_check_hostname=False must not change that
(it turns off the host name check only, not the chain and date check).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from kclient.errors import SSLVerificationError
from kclient.net.connection import ConnectionSettings, connect
from protocol.messages.metadata import MetadataResponse
from tests import _tls
from tests._tls import client_context, issue_cert, server_context, tls_fake_broker

from ..net.fake_broker import FakeBroker

pytestmark = pytest.mark.anyio

pki = _tls.pki  # the module-scoped CA fixture


@pytest.fixture(scope="module")
def expired(pki: Path) -> Path:
    """A localhost certificate from the test CA, valid only on 2020-01-01."""
    valid = ("20200101000000Z", "20200102000000Z")
    return issue_cert(pki, "expired", cn="localhost", san="DNS:localhost", valid=valid)


@pytest.mark.parametrize("check_hostname", [True, False])
async def test_s1_expired_certificate_is_rejected(expired: Path, check_hostname: bool) -> None:
    """S1: expired (but trusted, right host) certificate -> SSLVerificationError."""
    context = client_context(expired, ssl_check_hostname=check_hostname)
    settings = ConnectionSettings(connect_timeout_ms=3000, ssl_context=context)
    broker = FakeBroker({3: lambda v, r: MetadataResponse(cluster_id="expired")})
    async with tls_fake_broker(broker, server_context(expired, "expired")) as port:
        with anyio.fail_after(5), pytest.raises(SSLVerificationError) as info:
            async with connect(f"localhost:{port}", settings):
                pass
    assert "expired" in str(info.value).lower()
    assert not info.value.retriable
