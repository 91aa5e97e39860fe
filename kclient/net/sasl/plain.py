"""SASL PLAIN (RFC 4616): one message ``authzid NUL authcid NUL password``.

The broker answers an empty message on success, or fails the SaslAuthenticate
request with an error code; there is nothing to verify on the client side.
PLAIN over a plaintext connection sends the password in the clear; the caller
warns about that once per connection setup.
"""

from __future__ import annotations

from kclient._secret import Secret
from kclient.errors import AuthenticationError

__all__ = ["PlainMechanism"]


class PlainMechanism:
    name = "PLAIN"

    def __init__(self, username: str, password: Secret) -> None:
        if "\0" in username or "\0" in password.get_secret_value():
            raise AuthenticationError("PLAIN: user name and password must not contain NUL")
        self._username = username
        self._password = password
        self._sent = False

    def start(self) -> bytes:
        self._sent = True
        user = self._username.encode()
        return b"\0" + user + b"\0" + self._password.get_secret_value().encode()

    def step(self, server_bytes: bytes) -> bytes | None:
        if not self._sent:
            raise AuthenticationError("PLAIN: server spoke before the client")
        if server_bytes:
            raise AuthenticationError("PLAIN: unexpected server challenge after the credentials")
        return None

    def __repr__(self) -> str:
        return f"PlainMechanism(username={self._username!r}, password=***)"
