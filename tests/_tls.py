"""Shared TLS set-up for the tests: a throwaway CA and certificates made with the openssl
CLI, the client and server ``SSLContext``s, and a FakeBroker served over TLS.

``pki`` is a module-scoped fixture (import it into the test module, as with any fixture
defined outside a conftest): a directory with ``ca.pem``/``ca.key`` and a ``localhost``
server certificate ``server.pem``/``server.key``. Each importing module gets its own
directory, so a module may add certificates to it with :func:`issue_cert`.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener

from kclient.config import CommonConfig
from kclient.net.tls import build_ssl_context
from tests.kclient.net.fake_broker import FakeBroker

__all__ = ["client_context", "issue_cert", "pki", "server_context", "tls_fake_broker"]

# `openssl ca` needs a config and a database; only the dated certificates use it
# (`openssl x509 -req` cannot set a start date on OpenSSL 3.0).
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


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA (valid two days) and a ``localhost`` server certificate it signed."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("pki")
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    issue_cert(d, "server", cn="localhost", san="DNS:localhost")
    return d


def issue_cert(
    pki: Path,
    name: str,
    *,
    cn: str,
    san: str | None = None,
    key_password: str | None = None,
    valid: tuple[str, str] | None = None,
) -> Path:
    """``<name>.pem``/``<name>.key`` in ``pki``, signed by its CA; returns ``pki``.

    ``san`` is a subjectAltName value (``"DNS:localhost"``); ``key_password`` encrypts the
    key (unencrypted otherwise); ``valid`` is (start, end) as ``YYYYMMDDHHMMSSZ``, else the
    certificate is valid for two days from now.
    """
    key_args = ["-passout", f"pass:{key_password}"] if key_password else ["-nodes"]
    san_args = ["-addext", f"subjectAltName={san}"] if san else []
    _openssl(pki, "req", "-newkey", "rsa:2048", *key_args, "-subj", f"/CN={cn}", *san_args,
             "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
    if valid is None:
        # x509 -req drops the request's extensions: the SAN goes in again from a file.
        ext_args: list[str] = []
        if san:
            (pki / f"{name}.ext").write_text(f"subjectAltName={san}\n")
            ext_args = ["-extfile", f"{name}.ext"]
        _openssl(pki, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", *ext_args, "-out", f"{name}.pem")  # fmt: skip
    else:
        if not (pki / "ca.cnf").exists():
            (pki / "ca.cnf").write_text(_CA_CONFIG)
            (pki / "index.txt").write_text("")
            (pki / "serial.txt").write_text("1000\n")
        _openssl(pki, "ca", "-config", "ca.cnf", "-batch", "-notext", "-cert", "ca.pem",
                 "-keyfile", "ca.key", "-startdate", valid[0], "-enddate", valid[1],
                 "-in", f"{name}.csr", "-out", f"{name}.pem")  # fmt: skip
    return pki


def server_context(
    pki: Path, name: str = "server", *, require_client_cert: bool = False
) -> ssl.SSLContext:
    """A server context presenting ``<name>.pem``; optionally demanding a client
    certificate signed by the test CA (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
    if require_client_cert:
        context.load_verify_locations(pki / "ca.pem")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: Path | None, **config: Any) -> ssl.SSLContext | None:
    """The client's context as kclient builds it from an SSL config trusting ``ca/ca.pem``
    (the system store when ``ca`` is None); ``config`` adds other ``ssl_*`` keys."""
    common = CommonConfig(
        bootstrap_servers="localhost:1",
        security_protocol="SSL",
        ssl_ca_location=str(ca / "ca.pem") if ca else None,
        **config,
    )
    return build_ssl_context(common)


@asynccontextmanager
async def tls_fake_broker(broker: FakeBroker, context: ssl.SSLContext) -> AsyncIterator[int]:
    """Serve ``broker`` over TLS on a free 127.0.0.1 port; yields the port.

    Failed handshakes and dropped connections end that connection only: the tests make
    clients fail on purpose.
    """
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(tcp.extra(anyio.abc.SocketAttribute.local_port))
    listener = TLSListener(tcp, context, standard_compatible=False)

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
