"""SASL OAUTHBEARER (RFC 7628) as Kafka uses it (KIP-255, KIP-342 extensions).

Client message::

    n,,<0x01>auth=Bearer <token><0x01>[key=value<0x01>...]<0x01>

On success the broker answers with empty bytes. On failure it sends a JSON
error document as a challenge; RFC 7628 requires the client to answer with a
single 0x01 byte, after which the broker fails the SaslAuthenticate request.
The token comes from the user's provider (sync or async) and is fetched by the
driver before this sans-IO mechanism is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kclient._secret import Secret
from kclient.errors import AuthenticationError

__all__ = ["OAuthBearerMechanism", "OAuthBearerToken"]

_SEP = b"\x01"
_EXTENSION_KEY = re.compile(r"^[A-Za-z]+$")
_EXTENSION_VALUE = re.compile(r"^[\x21-\x7E \t\r\n]*$")


@dataclass(frozen=True)
class OAuthBearerToken:
    """A token and optional SASL extensions, as returned by a token provider."""

    value: Secret
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.value, Secret):
            object.__setattr__(self, "value", Secret(str(self.value)))
        for key, val in self.extensions.items():
            if key == "auth" or not _EXTENSION_KEY.match(key) or not _EXTENSION_VALUE.match(val):
                raise AuthenticationError(f"OAUTHBEARER: invalid SASL extension {key!r}")


def as_token(value: object) -> OAuthBearerToken:
    """Accept what a provider may return: str, Secret or OAuthBearerToken."""
    if isinstance(value, OAuthBearerToken):
        return value
    if isinstance(value, Secret):
        return OAuthBearerToken(value)
    if isinstance(value, str):
        return OAuthBearerToken(Secret(value))
    raise AuthenticationError(
        f"OAUTHBEARER: token provider returned {type(value).__name__}, "
        "expected str, Secret or OAuthBearerToken"
    )


class OAuthBearerMechanism:
    name = "OAUTHBEARER"

    def __init__(self, token: OAuthBearerToken) -> None:
        self._token = token
        self._state = "initial"

    def __repr__(self) -> str:
        return "OAuthBearerMechanism(token=***)"

    def start(self) -> bytes:
        self._state = "sent"
        parts = [b"auth=Bearer " + self._token.value.get_secret_value().encode()]
        parts += [f"{k}={v}".encode() for k, v in sorted(self._token.extensions.items())]
        return b"n,," + _SEP + _SEP.join(parts) + _SEP + _SEP

    def step(self, server_bytes: bytes) -> bytes | None:
        if self._state == "sent" and not server_bytes:
            self._state = "done"
            return None
        if self._state == "sent":
            # an error document: acknowledge it so the broker completes the failure
            self._state = "failed"
            return _SEP
        raise AuthenticationError("OAUTHBEARER: broker rejected the token")
