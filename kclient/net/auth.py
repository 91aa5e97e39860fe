"""SASL authentication driver: SaslHandshake v1 + SaslAuthenticate round trips.

The mechanisms in ``kclient.net.sasl`` are sans-IO; this module only moves
their bytes. It runs on a connection right after ApiVersions and again for
KIP-368 re-authentication. Failures are :class:`AuthenticationError`
(non-retriable); messages name the mechanism and user, never the secret, and
SASL payload bytes are never logged.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kclient._secret import Secret, SecretBytes
from kclient.config import CommonConfig
from kclient.errors import AuthenticationError, KafkaError
from kclient.net.sasl import SaslMechanism
from kclient.net.sasl.oauthbearer import OAuthBearerMechanism, as_token
from kclient.net.sasl.plain import PlainMechanism
from kclient.net.sasl.scram import ScramMechanism
from kclient.net.versions import ApiVersionTable
from protocol.api import Request, Response
from protocol.messages.sasl_authenticate import SaslAuthenticateRequest, SaslAuthenticateResponse
from protocol.messages.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse

__all__ = ["SaslSettings", "authenticate", "reauth_delay_ms"]

log = logging.getLogger("kclient.net.auth")

MAX_SASL_ROUNDS = 10  # PLAIN needs 1, SCRAM 2, OAUTHBEARER 1-2; more means a confused peer
_MIN_REAUTH_DELAY_MS = 1000.0  # a hostile tiny lifetime must not cause re-auth before every request
_MAX_REAUTH_DELAY_MS = float(2**31 - 1)


@dataclass(frozen=True)
class SaslSettings:
    mechanism: str
    username: str | None = None
    password: Secret | None = None
    token_provider: Callable[[], Any] | None = None
    warn_plaintext: bool = False

    def __repr__(self) -> str:
        return f"SaslSettings(mechanism={self.mechanism!r}, username={self.username!r})"

    @classmethod
    def from_config(cls, config: CommonConfig) -> SaslSettings | None:
        if not config.uses_sasl:
            return None
        password = config.sasl_password
        return cls(
            mechanism=config.sasl_mechanism,
            username=config.sasl_username,
            password=password if isinstance(password, Secret) or password is None else None,
            token_provider=config.sasl_oauthbearer_token_provider,
            warn_plaintext=config.security_protocol == "SASL_PLAINTEXT",
        )


class _Exchanger(Protocol):
    """What authenticate() needs from a connection."""

    versions: ApiVersionTable | None

    async def exchange(self, request: Request, version: int) -> Response: ...


async def build_mechanism(settings: SaslSettings) -> SaslMechanism:
    """The mechanism object; awaits the OAuth token provider if it is async."""
    if settings.mechanism == "OAUTHBEARER":
        if settings.token_provider is None:
            raise AuthenticationError("OAUTHBEARER: no token provider configured")
        try:
            value = settings.token_provider()
            if inspect.isawaitable(value):
                value = await value
        except KafkaError:
            raise
        except Exception as exc:
            raise AuthenticationError(
                f"OAUTHBEARER: token provider failed ({type(exc).__name__})"
            ) from None
        return OAuthBearerMechanism(as_token(value))
    if settings.username is None or settings.password is None:
        raise AuthenticationError(f"{settings.mechanism}: user name and password are required")
    if settings.mechanism == "PLAIN":
        if settings.warn_plaintext:
            log.warning("SASL PLAIN over SASL_PLAINTEXT sends the password unencrypted")
        return PlainMechanism(settings.username, settings.password)
    return ScramMechanism(settings.mechanism, settings.username, settings.password)


async def authenticate(conn: _Exchanger, settings: SaslSettings) -> int:
    """Run one SASL exchange on ``conn``; return the session lifetime in ms (0: none)."""
    if conn.versions is None:
        raise AuthenticationError("SASL before ApiVersions")
    handshake_version = conn.versions.version_for(SaslHandshakeRequest, min_version=1)
    auth_version = conn.versions.version_for(SaslAuthenticateRequest)
    handshake = await conn.exchange(
        SaslHandshakeRequest(mechanism=settings.mechanism), handshake_version
    )
    assert isinstance(handshake, SaslHandshakeResponse)
    if handshake.error_code != 0:
        raise AuthenticationError(
            f"the broker does not enable SASL mechanism {settings.mechanism} "
            f"(it enables: {', '.join(handshake.mechanisms) or 'none'})"
        )
    mechanism = await build_mechanism(settings)
    # The client messages carry the password or token: keep them wrapped, so that a
    # traceback formatted with its frames' locals (error trackers do that) cannot show them.
    message = _hidden(mechanism.start())
    lifetime = 0
    for _ in range(MAX_SASL_ROUNDS):
        if message is None:
            log.debug("SASL %s authentication succeeded", settings.mechanism)
            return lifetime
        response = await conn.exchange(
            SaslAuthenticateRequest(auth_bytes=message.value), auth_version
        )
        assert isinstance(response, SaslAuthenticateResponse)
        if response.error_code != 0:
            raise AuthenticationError(_failure_text(settings, response))
        lifetime = response.session_lifetime_ms
        message = _hidden(mechanism.step(response.auth_bytes))
    raise AuthenticationError(f"{settings.mechanism}: too many SASL rounds; giving up")


def _hidden(message: bytes | None) -> SecretBytes | None:
    return None if message is None else SecretBytes(message)


def _failure_text(settings: SaslSettings, response: SaslAuthenticateResponse) -> str:
    who = f" for user {settings.username!r}" if settings.username else ""
    detail = response.error_message or "no detail"
    # the broker's message is about the exchange and never echoes our secret back, but cap
    # its length: it is shown to users and logged
    return (
        f"SASL {settings.mechanism} authentication failed{who}: {detail[:300]} "
        f"(error {response.error_code}); check the credentials and the broker's SASL setup"
    )


def reauth_delay_ms(lifetime_ms: int, rand: float) -> float | None:
    """When to re-authenticate (KIP-368): at 85-95% of the session lifetime, clamped.

    None when the broker announced no lifetime.
    """
    if lifetime_ms <= 0:
        return None
    delay = lifetime_ms * (0.85 + 0.10 * rand)
    return min(max(delay, _MIN_REAUTH_DELAY_MS), _MAX_REAUTH_DELAY_MS)


def default_rand() -> float:
    return random.random()


ExchangeFn = Callable[[Request, int], Awaitable[Response]]
