"""Reliability scenario S4 (reliability guide 2f): secrets never show, end to end.

Real clients (admin, producer, consumer) with a SASL password, an
encrypted client key with its SSL key password, or an OAuth token, DEBUG logging on for
everything, and a broker that rejects the credentials. Everything a user or an operator
could see is collected and searched for the secrets: every log record (message, args,
exception text), stdout and stderr, repr/str of configs, clients and errors, formatted
tracebacks (also with local variables, as error trackers capture them), and pickling.
The client has no metrics or stats output to search.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import kclient
import protocol
from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer, TopicPartition
from kclient.config import CommonConfig, ProducerConfig
from kclient.errors import AuthenticationError, ConfigError
from protocol.messages.sasl_authenticate import SaslAuthenticateResponse
from protocol.messages.sasl_handshake import SaslHandshakeResponse
from tests import _tls
from tests._tls import issue_cert, server_context, tls_fake_broker

from ..net.fake_broker import FakeBroker, running

pytestmark = pytest.mark.anyio

pki = _tls.pki  # the module-scoped CA fixture

PASSWORD = "S3cr3t-XYZ"
KEY_PASSWORD = "K3yPa55-QRS"
TOKEN = "eyJ0b2tlbi1TRUNSRVQtNzc3In0"
SECRETS = (PASSWORD, KEY_PASSWORD, TOKEN)
FAST: dict[str, Any] = dict(
    request_timeout_ms=2000,
    socket_connection_setup_timeout_ms=2000,
    reconnect_backoff_ms=20,
    reconnect_backoff_max_ms=100,
    retry_backoff_ms=20,
    retry_backoff_max_ms=100,
)


def rejecting_broker() -> FakeBroker:
    """Accepts every mechanism in the handshake, then rejects every credential."""

    def handshake(version: int, request: Any) -> SaslHandshakeResponse:
        return SaslHandshakeResponse(mechanisms=["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"])

    def authenticate(version: int, request: Any) -> SaslAuthenticateResponse:
        return SaslAuthenticateResponse(
            error_code=58, error_message="Authentication failed: invalid credentials"
        )

    return FakeBroker({17: handshake, 36: authenticate})


_LIBRARY = (str(Path(kclient.__file__).parent), str(Path(protocol.__file__).parent), "<string>")


def _library_locals(tb: traceback.TracebackException) -> list[str]:
    """The locals of the client's own frames (and of dataclass-generated code, filename
    "<string>") as an error tracker records them. The test's frames are left out: they
    hold the plain secrets the test itself passed in."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [tb]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            if frame.filename.startswith(_LIBRARY) and frame.locals:
                out += [f"{frame.name}: {k} = {v}" for k, v in frame.locals.items()]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += list(getattr(current, "exceptions", None) or [])
    return out


def exposed_text(exc: BaseException) -> str:
    """Everything an error shows: str, repr, args, the formatted traceback (chained),
    and the library frames' local variables."""
    parts = [str(exc), repr(exc), repr(exc.args)]
    parts += traceback.format_exception(exc)
    parts += _library_locals(traceback.TracebackException.from_exception(exc, capture_locals=True))
    return "\n".join(parts)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(exposed_text(record.exc_info[1]))
    return "\n".join(parts)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (
            f"a secret leaked: ...{text[max(0, text.find(secret) - 80) :][:200]!r}"
        )


@pytest.fixture
def debug_everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # root: kclient, anyio, asyncio, ...
    return caplog


async def _fail_every_client(bootstrap: str, **security: Any) -> list[BaseException]:
    """Drive admin, producer and consumer into the auth failure; return their errors."""
    common = dict(bootstrap_servers=bootstrap, **FAST, **security)
    errors: list[BaseException] = []
    clients: list[Any] = []

    async def attempt(client: Any, call: Callable[[Any], Any]) -> None:
        clients.append(client)
        with anyio.fail_after(10):
            try:
                async with client:
                    await call(client)
            except Exception as exc:  # KafkaError, or a group of them from a task group
                errors.extend(getattr(exc, "exceptions", None) or [exc])

    await attempt(AsyncAdmin(**common), lambda a: a.list_topics())
    await attempt(AsyncProducer(**common, max_block_ms=3000), lambda p: p.send("t", b"x"))
    consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(**common, group_id="s4")

    async def committed(c: AsyncConsumer[bytes, bytes]) -> None:
        await c.committed(TopicPartition("t", 0), timeout_ms=3000)

    await attempt(consumer, committed)
    for client in clients:
        errors.append(Exception(repr(client) + str(client) + repr(getattr(client, "config", ""))))
    return errors


async def test_s4_sasl_password_never_shows(
    debug_everything: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """S4: PLAIN and SCRAM with a rejected password, DEBUG logging on."""
    broker = rejecting_broker()
    errors: list[BaseException] = []
    async with running(broker):
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            errors += await _fail_every_client(
                broker.address,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mechanism,
                sasl_username="alice",
                sasl_password=PASSWORD,
            )
    auth_errors = [e for e in errors if isinstance(e, AuthenticationError)]
    assert len(auth_errors) >= 6, errors  # every client of both mechanisms saw the rejection
    assert all("alice" in str(e) or "invalid credentials" in str(e) for e in auth_errors)
    out, err = capfd.readouterr()
    assert_no_secret("\n".join(exposed_text(e) for e in errors))
    assert_no_secret(log_text(debug_everything) + out + err)
    assert any(r.levelno == logging.DEBUG for r in debug_everything.records)  # it was on


async def test_s4_oauth_token_never_shows(
    debug_everything: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """S4: OAUTHBEARER with a token (sync and async providers) that the broker rejects."""

    async def async_provider() -> str:
        return TOKEN

    broker = rejecting_broker()
    errors: list[BaseException] = []
    async with running(broker):
        for provider in (lambda: TOKEN, async_provider):
            errors += await _fail_every_client(
                broker.address,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauthbearer_token_provider=provider,
            )
    assert sum(isinstance(e, AuthenticationError) for e in errors) >= 6, errors
    out, err = capfd.readouterr()
    assert_no_secret("\n".join(exposed_text(e) for e in errors))
    assert_no_secret(log_text(debug_everything) + out + err)


@pytest.fixture(scope="module")
def client_cert(pki: Path) -> Path:
    """A client key encrypted with KEY_PASSWORD, and its certificate signed by the test CA."""
    return issue_cert(pki, "client", cn="client", key_password=KEY_PASSWORD)


@asynccontextmanager
async def tls_rejecting_broker(pki: Path) -> AsyncIterator[str]:
    """TLS (client certificate required) in front of the rejecting SASL broker."""
    context = server_context(pki, require_client_cert=True)
    async with tls_fake_broker(rejecting_broker(), context) as port:
        yield f"localhost:{port}"


async def test_s4_ssl_key_password_and_sasl_password_over_tls_never_show(
    client_cert: Path,
    debug_everything: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """S4: SASL_SSL with an encrypted client key (mutual TLS) and a rejected password;
    plus a wrong key password, which must not echo either password."""
    security: dict[str, Any] = dict(
        security_protocol="SASL_SSL",
        ssl_ca_location=str(client_cert / "ca.pem"),
        ssl_certificate_location=str(client_cert / "client.pem"),
        ssl_key_location=str(client_cert / "client.key"),
        ssl_key_password=KEY_PASSWORD,
        sasl_mechanism="PLAIN",
        sasl_username="alice",
        sasl_password=PASSWORD,
    )
    async with tls_rejecting_broker(client_cert) as bootstrap:
        errors = await _fail_every_client(bootstrap, **security)
        wrong_key: dict[str, Any] = {**security, "ssl_key_password": KEY_PASSWORD + "-wrong"}
        with pytest.raises(ConfigError) as info:
            async with AsyncAdmin(bootstrap_servers=bootstrap, **FAST, **wrong_key) as admin:
                await admin.list_topics()
        errors.append(info.value)
    assert sum(isinstance(e, AuthenticationError) for e in errors) >= 3, errors
    out, err = capfd.readouterr()
    text = "\n".join(exposed_text(e) for e in errors) + log_text(debug_everything) + out + err
    assert_no_secret(text)
    assert KEY_PASSWORD + "-wrong" not in text


def test_s4_configs_never_show_secrets() -> None:
    """S4: repr/str/format of configs, evolve(), properties maps, and validation errors
    about other keys; pickling a config with a secret is refused."""
    config = ProducerConfig(
        bootstrap_servers="127.0.0.1:9092",
        security_protocol="SASL_SSL",
        sasl_username="alice",
        sasl_password=PASSWORD,
        ssl_key_password=KEY_PASSWORD,
    )
    texts = [repr(config), str(config), f"{config}", repr(config.evolve(linger_ms=7))]
    props = CommonConfig.from_properties(
        {"bootstrap.servers": "127.0.0.1:9092", "sasl.password": PASSWORD,
         "ssl.key.password": KEY_PASSWORD, "security.protocol": "SASL_SSL",
         "sasl.username": "alice"}
    )  # fmt: skip
    texts.append(repr(props))
    for bad in ({"linger_ms": "soon"}, {"sasl_password": 12345}, {"ssl_key_password": b"x"}):
        with pytest.raises(ConfigError) as info:
            config.evolve(**bad)
        texts.append(exposed_text(info.value))
    with pytest.raises(ConfigError) as info:
        ProducerConfig(
            bootstrap_servers="127.0.0.1:9092",
            security_protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_password=PASSWORD,
        )
    texts.append(exposed_text(info.value))
    with pytest.raises(TypeError):
        pickle.dumps(config)
    assert_no_secret("\n".join(texts))
