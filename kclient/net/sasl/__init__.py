"""Sans-IO SASL mechanisms.

A mechanism turns server bytes into client bytes and never touches the network:
``start()`` gives the first client message; ``step(server_bytes)`` gives the next
one, or None when the exchange is complete on the client side (after the final
server message was verified). Any failure raises
:class:`~kclient.errors.AuthenticationError` whose message names the mechanism
and at most the user name, never a password, token or payload bytes.

The driver (``kclient.net.auth``) wraps each client message in a
SaslAuthenticate request and feeds each response's ``auth_bytes`` back.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SaslMechanism"]


class SaslMechanism(Protocol):
    name: str

    def start(self) -> bytes:
        """The client's first message."""
        ...

    def step(self, server_bytes: bytes) -> bytes | None:
        """The next client message, or None when done."""
        ...
