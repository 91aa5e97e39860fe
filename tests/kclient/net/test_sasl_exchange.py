"""SASL over a real socket against a fake broker: PLAIN, SCRAM, OAUTHBEARER, re-auth, redaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import traceback
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from kclient._secret import Secret
from kclient.config import CommonConfig
from kclient.errors import AuthenticationError
from kclient.net.auth import SaslSettings
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.sasl.oauthbearer import OAuthBearerToken
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from protocol.messages.sasl_authenticate import SaslAuthenticateResponse
from protocol.messages.sasl_handshake import SaslHandshakeResponse

from .fake_broker import FakeBroker, running

pytestmark = pytest.mark.anyio
SECRET = "S3cr3t-XYZ"


def settings(sasl: SaslSettings) -> ConnectionSettings:
    return ConnectionSettings(request_timeout_ms=1000, connect_timeout_ms=1000, sasl=sasl)


def handshake(mechanisms: list[str]) -> Any:
    def handler(version: int, request: Any) -> SaslHandshakeResponse:
        code = 0 if request.mechanism in mechanisms else 33
        return SaslHandshakeResponse(error_code=code, mechanisms=mechanisms)

    return handler


class ScramServer:
    """Server side of SCRAM-SHA-256 with knobs to misbehave."""

    def __init__(
        self,
        password: str,
        *,
        iterations: int = 4096,
        nonce_prefix: str | None = None,
        bad_signature: bool = False,
    ) -> None:
        self.password, self.iterations = password, iterations
        self.nonce_prefix, self.bad_signature = nonce_prefix, bad_signature
        self.salt = b"pepper"
        self.state: dict[str, bytes] = {}

    def __call__(self, version: int, request: Any) -> SaslAuthenticateResponse:
        message: bytes = request.auth_bytes
        if "first" not in self.state:
            bare = message[3:]
            self.state["first"] = bare
            cnonce = dict(p.split("=", 1) for p in bare.decode().split(","))["r"]
            nonce = (self.nonce_prefix if self.nonce_prefix is not None else cnonce) + "srv"
            server_first = f"r={nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
            self.state["server_first"] = server_first.encode()
            return SaslAuthenticateResponse(auth_bytes=server_first.encode())
        without_proof, proof_b64 = message.rsplit(b",p=", 1)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), self.salt, self.iterations)
        auth = self.state["first"] + b"," + self.state["server_first"] + b"," + without_proof
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored, auth, "sha256").digest()
        expected_proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        if base64.b64decode(proof_b64) != expected_proof:
            return SaslAuthenticateResponse(
                error_code=58, error_message="Authentication failed during authentication"
            )
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        server_sig = hmac.new(server_key, auth, "sha256").digest()
        if self.bad_signature:
            server_sig = bytes(32)
        return SaslAuthenticateResponse(auth_bytes=b"v=" + base64.b64encode(server_sig))


def metadata(version: int, request: Any) -> MetadataResponse:
    return MetadataResponse(cluster_id="ok")


def plain_server(version: int, request: Any) -> SaslAuthenticateResponse:
    if request.auth_bytes == b"\0alice\0" + SECRET.encode():
        return SaslAuthenticateResponse(session_lifetime_ms=0)
    return SaslAuthenticateResponse(error_code=58, error_message="Invalid username or password")


def scram(user: str = "alice", password: str = SECRET) -> SaslSettings:
    return SaslSettings("SCRAM-SHA-256", user, Secret(password))


async def test_plain_success_then_requests_flow() -> None:
    broker = FakeBroker({17: handshake(["PLAIN"]), 36: plain_server, 3: metadata})
    async with (
        running(broker),
        connect(broker.address, settings(SaslSettings("PLAIN", "alice", Secret(SECRET)))) as conn,
    ):
        response = await conn.request(MetadataRequest(topics=[]))
        assert isinstance(response, MetadataResponse)


async def test_plain_wrong_password_is_non_retriable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kclient")
    broker = FakeBroker({17: handshake(["PLAIN"]), 36: plain_server})
    async with running(broker):
        with pytest.raises(AuthenticationError) as info:
            async with connect(
                broker.address, settings(SaslSettings("PLAIN", "alice", Secret("nope")))
            ):
                pass
    assert not info.value.retriable
    assert "Invalid username or password" in str(info.value)
    assert "nope" not in caplog.text


async def test_unsupported_mechanism_lists_enabled_ones() -> None:
    broker = FakeBroker({17: handshake(["SCRAM-SHA-512"])})
    async with running(broker):
        with pytest.raises(AuthenticationError, match="enables: SCRAM-SHA-512"):
            async with connect(broker.address, settings(SaslSettings("PLAIN", "a", Secret("b")))):
                pass


async def test_scram_success() -> None:
    broker = FakeBroker({17: handshake(["SCRAM-SHA-256"]), 36: ScramServer(SECRET), 3: metadata})
    async with running(broker), connect(broker.address, settings(scram())) as conn:
        await conn.request(MetadataRequest(topics=[]))


@pytest.mark.parametrize(
    ("server", "match"),
    [
        (lambda: ScramServer("other"), "Authentication failed"),
        (lambda: ScramServer(SECRET, nonce_prefix="evil"), "nonce"),
        (lambda: ScramServer(SECRET, iterations=1000), "iteration count"),
        (lambda: ScramServer(SECRET, iterations=5_000_000), "iteration count"),
        (lambda: ScramServer(SECRET, bad_signature=True), "server signature"),
    ],
    ids=[
        "wrong-password",
        "bad-nonce",
        "too-few-iterations",
        "too-many-iterations",
        "bad-signature",
    ],
)
async def test_scram_failures(
    server: Callable[[], ScramServer], match: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = FakeBroker({17: handshake(["SCRAM-SHA-256"]), 36: server()})
    async with running(broker):
        with pytest.raises(AuthenticationError, match=match) as info:
            async with connect(broker.address, settings(scram())):
                pass
    rendered = "".join(traceback.format_exception(info.value)) + caplog.text + repr(info.value)
    assert SECRET not in rendered


@pytest.mark.parametrize("async_provider", [False, True])
async def test_oauthbearer_with_sync_or_async_provider(async_provider: bool) -> None:
    seen: list[bytes] = []

    def auth(version: int, request: Any) -> SaslAuthenticateResponse:
        seen.append(request.auth_bytes)
        return SaslAuthenticateResponse(session_lifetime_ms=0)

    def sync_provider() -> str:
        return "tok-1"

    async def async_provider_fn() -> OAuthBearerToken:
        await anyio.sleep(0)
        return OAuthBearerToken(Secret("tok-1"))

    provider = async_provider_fn if async_provider else sync_provider
    broker = FakeBroker({17: handshake(["OAUTHBEARER"]), 36: auth, 3: metadata})
    async with (
        running(broker),
        connect(
            broker.address, settings(SaslSettings("OAUTHBEARER", token_provider=provider))
        ) as conn,
    ):
        await conn.request(MetadataRequest(topics=[]))
    assert seen == [b"n,,\x01auth=Bearer tok-1\x01\x01"]


async def test_oauthbearer_rejected_token() -> None:
    def auth(version: int, request: Any) -> SaslAuthenticateResponse:
        if request.auth_bytes == b"\x01":
            return SaslAuthenticateResponse(error_code=58, error_message="invalid_token")
        return SaslAuthenticateResponse(auth_bytes=b'{"status":"invalid_token"}')

    broker = FakeBroker({17: handshake(["OAUTHBEARER"]), 36: auth})
    async with running(broker):
        with pytest.raises(AuthenticationError, match="invalid_token"):
            async with connect(
                broker.address, settings(SaslSettings("OAUTHBEARER", token_provider=lambda: "bad"))
            ):
                pass


async def test_reauthentication_before_session_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    seen: list[bytes] = []

    def auth(version: int, request: Any) -> SaslAuthenticateResponse:
        seen.append(request.auth_bytes)
        return SaslAuthenticateResponse(session_lifetime_ms=1000)

    # the re-auth delay has a 1 s floor; shorten it so the test stays fast
    monkeypatch.setattr("kclient.net.connection.reauth_delay_ms", lambda lifetime, rand: 20.0)
    broker = FakeBroker({17: handshake(["OAUTHBEARER"]), 36: auth, 3: metadata})
    provider = lambda: next(tokens)  # noqa: E731
    async with (
        running(broker),
        connect(
            broker.address, settings(SaslSettings("OAUTHBEARER", token_provider=provider))
        ) as conn,
    ):
        await conn.request(MetadataRequest(topics=[]))
        await anyio.sleep(0.05)
        await conn.request(MetadataRequest(topics=[]))
    assert [s.split(b"Bearer ")[1][:5] for s in seen] == [b"tok-1", b"tok-2"]
    assert [k for k, _, _ in broker.requests] == [18, 17, 36, 3, 17, 36, 3]


def test_secrets_hidden_in_config_repr_and_errors() -> None:
    config = CommonConfig(
        bootstrap_servers="h:1",
        security_protocol="SASL_SSL",
        sasl_username="alice",
        sasl_password=SECRET,
        ssl_key_password="KeyPass-123",
    )
    text = repr(config) + str(config) + repr(SaslSettings.from_config(config))
    assert SECRET not in text and "KeyPass-123" not in text


async def test_rejected_credentials_do_not_cause_a_reconnect_storm() -> None:
    # S3: an application that keeps retrying after an authentication failure must be
    # paced by the pool's reconnect backoff, not reconnect in a hot loop.
    from kclient.net.pool import ConnectionPool

    broker = FakeBroker({17: handshake(["PLAIN"]), 36: plain_server})
    failures = 0
    async with running(broker), anyio.create_task_group() as tg:
        config = CommonConfig(
            bootstrap_servers=broker.address,
            security_protocol="SASL_PLAINTEXT",
            sasl_username="alice",
            sasl_password="wrong",
            reconnect_backoff_ms=200,
            reconnect_backoff_max_ms=1000,
        )
        pool = ConnectionPool(config, tg)
        with anyio.move_on_after(1.5):
            while True:
                with pytest.raises(AuthenticationError):
                    await pool.request(-1, MetadataRequest(topics=[]))
                failures += 1
        await pool.aclose()
    # 0 ms, +200, +400, +800 (with jitter): a handful of attempts, never hundreds
    assert 2 <= broker.connections <= 6
    # Every connection but the last ended in an AuthenticationError; the last one may
    # have been accepted by the broker just before the deadline cancelled the attempt.
    assert broker.connections - 1 <= failures <= broker.connections
