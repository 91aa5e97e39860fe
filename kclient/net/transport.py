"""Opening byte streams to brokers, and the one place foreign exceptions are translated.

:class:`Transport` is what the connection layer needs from the network: given
a host and port (and TLS settings), an anyio ``ByteStream``. :class:`TcpTransport`
is the real one; tests can pass an in-memory one.

:func:`map_exceptions` turns ``OSError``, ``ssl`` errors, anyio stream errors
and timeouts into the client's error tree, with a message naming the address,
where it came from (bootstrap or metadata) and the likely cause.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc

from kclient.errors import KafkaConnectionError, KafkaTimeoutError, SSLVerificationError

__all__ = ["BrokerAddress", "TcpTransport", "Transport", "map_exceptions"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker listens, and how we learned of it.

    ``node_id`` is the broker id from metadata, or a negative placeholder for
    bootstrap servers (-1, -2, ...), as in the Java client.
    """

    host: str
    port: int
    node_id: int = -1
    origin: str = "bootstrap"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Transport(Protocol):
    async def connect(
        self, address: BrokerAddress, ssl_context: ssl.SSLContext | None
    ) -> anyio.abc.ByteStream:
        """Open a stream to ``address`` (TLS when ``ssl_context`` is given)."""
        ...


class TcpTransport:
    """TCP (and TLS) through anyio. SNI and host name checks use the broker's host."""

    async def connect(
        self, address: BrokerAddress, ssl_context: ssl.SSLContext | None
    ) -> anyio.abc.ByteStream:
        with map_exceptions(address, phase="connect"):
            if ssl_context is None:
                return await anyio.connect_tcp(address.host, address.port)
            # tls_standard_compatible=False: Kafka brokers do not send close_notify,
            # and waiting for it would make every close hang or fail.
            return await anyio.connect_tcp(
                address.host,
                address.port,
                ssl_context=ssl_context,
                tls_hostname=address.host,
                tls_standard_compatible=False,
            )


_TLS_TO_PLAIN_HINT = (
    "the listener is probably plaintext; use security_protocol PLAINTEXT or SASL_PLAINTEXT"
)
_PLAIN_TO_TLS_HINT = "if the listener uses TLS, use security_protocol SSL or SASL_SSL"


@contextlib.contextmanager
def map_exceptions(address: BrokerAddress, *, phase: str, tls: bool = False) -> Iterator[None]:
    """Translate foreign exceptions raised inside the block into kclient errors.

    ``phase`` ("connect", "handshake", "read", "write") goes into the message.
    """
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise SSLVerificationError(
            f"{address} (from {address.origin}): the broker's TLS certificate was rejected "
            f"({exc.verify_message}); trust its CA with ssl_ca_location or fix the host name"
        ) from None
    except ssl.SSLError as exc:
        hint = _TLS_TO_PLAIN_HINT if _looks_like_plaintext_peer(exc) else "check the TLS settings"
        raise KafkaConnectionError(
            f"TLS failure during {phase} ({exc.reason or exc}); {hint}",
            address=str(address),
            origin=address.origin,
        ) from None
    except anyio.EndOfStream:
        hint = _TLS_TO_PLAIN_HINT if tls and phase == "connect" else _PLAIN_TO_TLS_HINT
        raise KafkaConnectionError(
            f"connection closed by the broker during {phase}"
            + (f"; {hint}" if phase in ("connect", "handshake") else ""),
            address=str(address),
            origin=address.origin,
        ) from None
    except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        cause = exc.__cause__ or exc
        raise KafkaConnectionError(
            f"connection lost during {phase} ({type(cause).__name__}: {cause})",
            address=str(address),
            origin=address.origin,
        ) from None
    except TimeoutError:
        raise KafkaTimeoutError(
            f"{address} (from {address.origin}): timed out during {phase}"
        ) from None
    except OSError as exc:
        raise KafkaConnectionError(
            f"cannot connect ({exc.strerror or exc}); is a broker listening there?",
            address=str(address),
            origin=address.origin,
            request_sent=False,
        ) from None


def _looks_like_plaintext_peer(exc: ssl.SSLError) -> bool:
    # A plaintext Kafka listener reads our ClientHello as a huge frame size and
    # closes the socket, or answers with bytes that are not a TLS record.
    reason = (exc.reason or "").upper()
    return isinstance(exc, ssl.SSLEOFError) or reason in (
        "WRONG_VERSION_NUMBER",
        "UNEXPECTED_EOF_WHILE_READING",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
    )
