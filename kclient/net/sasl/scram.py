"""SASL SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677), client side.

Messages (comma-separated ``key=value`` attributes)::

    client-first   n,,n=<user>,r=<client nonce>
    server-first   r=<client nonce + server nonce>,s=<base64 salt>,i=<iterations>
    client-final   c=biws,r=<full nonce>,p=<base64 ClientKey XOR ClientSignature>
    server-final   v=<base64 ServerSignature>   or   e=<error>

Checks, all before anything is trusted (Java ScramSaslClient, franz-go):

* the server nonce must extend our nonce (defends against a replayed or
  injected server-first);
* iterations must be within [4096, 1,000,000], checked *before* PBKDF2 so a
  hostile server cannot make us burn CPU;
* the server signature in server-final must match, otherwise the broker did
  not know our password (a man in the middle "accepting" anything).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from kclient._secret import Secret
from kclient.errors import AuthenticationError

__all__ = ["MAX_ITERATIONS", "MIN_ITERATIONS", "ScramMechanism"]

MIN_ITERATIONS = 4096
MAX_ITERATIONS = 1_000_000
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_GS2_HEADER = b"n,,"


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes, mechanism: str) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError(f"{mechanism}: server message is not UTF-8") from None
    attrs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise AuthenticationError(f"{mechanism}: malformed server message")
        attrs.setdefault(key, value)
    return attrs


class ScramMechanism:
    """One SCRAM exchange. ``nonce_factory`` exists for the RFC test vectors."""

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: Secret,
        *,
        nonce_factory: Callable[[], str] | None = None,
    ) -> None:
        if mechanism not in _HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism}")
        self.name = mechanism
        self._hash = _HASHES[mechanism]
        self._username = username
        self._password = password
        self._nonce = (nonce_factory or (lambda: secrets.token_urlsafe(24)))()
        self._client_first_bare = f"n={_saslname(username)},r={self._nonce}".encode()
        self._server_signature: bytes | None = None
        self._state = "initial"

    def __repr__(self) -> str:
        return f"ScramMechanism({self.name}, username={self._username!r}, password=***)"

    def _fail(self, why: str) -> AuthenticationError:
        self._state = "failed"
        return AuthenticationError(f"{self.name} authentication of user {self._username!r}: {why}")

    def start(self) -> bytes:
        if self._state != "initial":
            raise self._fail("exchange already started")
        self._state = "sent-first"
        return _GS2_HEADER + self._client_first_bare

    def step(self, server_bytes: bytes) -> bytes | None:
        if self._state == "sent-first":
            return self._client_final(server_bytes)
        if self._state == "sent-final":
            self._verify_server_final(server_bytes)
            return None
        raise self._fail(f"unexpected server message in state {self._state}")

    def _client_final(self, server_first: bytes) -> bytes:
        attrs = _attributes(server_first, self.name)
        if "m" in attrs:
            raise self._fail("server requires an unsupported extension")
        nonce, salt_b64, iterations_text = attrs.get("r"), attrs.get("s"), attrs.get("i")
        if nonce is None or salt_b64 is None or iterations_text is None:
            raise self._fail("server-first message lacks nonce, salt or iteration count")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise self._fail("server nonce does not extend the client nonce")
        if not iterations_text.isdigit():
            raise self._fail("iteration count is not a number")
        iterations = int(iterations_text)
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise self._fail(
                f"iteration count {iterations} outside {MIN_ITERATIONS}..{MAX_ITERATIONS}"
            )
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except ValueError:
            raise self._fail("salt is not valid base64") from None
        salted = hashlib.pbkdf2_hmac(
            self._hash, self._password.get_secret_value().encode(), salt, iterations
        )
        without_proof = b"c=" + base64.b64encode(_GS2_HEADER) + b",r=" + nonce.encode()
        auth_message = self._client_first_bare + b"," + server_first + b"," + without_proof
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        self._state = "sent-final"
        return without_proof + b",p=" + base64.b64encode(proof)

    def _verify_server_final(self, server_final: bytes) -> None:
        attrs = _attributes(server_final, self.name)
        if "e" in attrs:
            raise self._fail(f"server rejected the proof ({attrs['e']})")
        expected = self._server_signature
        try:
            received = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError:
            received = b""
        if expected is None or not received or not hmac.compare_digest(expected, received):
            raise self._fail("server signature does not verify; the broker may be an impostor")
        self._state = "done"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()
