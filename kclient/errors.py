"""Client-side errors, grouped by what the caller should do about them.

Every error derives from :class:`protocol.KafkaError` and has a ``retriable``
class attribute. The tree, by remedy::

    KafkaError
    ├── BrokerResponseError             the broker answered with an error code
    │                                   (one generated class per code, re-exported here)
    ├── KafkaProtocolError              bytes that do not decode (corrupt data, wrong peer)
    ├── KafkaConnectionError       R    reconnecting may help (refused, reset, closed)
    │   └── NoBrokersAvailableError R   no bootstrap or known broker could be reached
    ├── KafkaTimeoutError          R    the operation did not finish within its timeout
    │   ├── BufferFullError        R    send() found no room in the buffer within max_block_ms
    │   └── DeliveryTimeoutError   R    a record was not acknowledged within delivery_timeout_ms
    ├── AuthenticationError             fix credentials or mechanism; never retried
    │   └── SSLVerificationError        fix the CA, the certificate or the host name
    ├── ConfigError                     fix the named configuration key
    ├── UnsupportedVersionForApiError   the broker lacks an API version the call needs
    └── IllegalStateError               the call is not allowed now (closed client, ...)
        └── ProducerClosedError         close(timeout=) ran out before the record was delivered

(R = ``retriable``.) Foreign exceptions (``OSError``, ``ssl.SSLError``,
anyio's stream errors) are translated into these only at the transport
boundary (``kclient.net.transport.map_exceptions``).

Messages never contain credentials: they name mechanisms and user names at most.
"""

from __future__ import annotations

import importlib
from typing import Any

from protocol._errors_base import (
    BrokerResponseError,
    CorruptRecordError,
    FramingError,
    KafkaError,
    KafkaProtocolError,
)

__all__ = [
    "AuthenticationError",
    "BrokerResponseError",
    "BufferFullError",
    "ConfigError",
    "CorruptRecordError",
    "DeliveryTimeoutError",
    "FramingError",
    "IllegalStateError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "NoBrokersAvailableError",
    "ProducerClosedError",
    "SSLVerificationError",
    "UnsupportedVersionForApiError",
]


class KafkaConnectionError(KafkaError):
    """A connection to a broker failed or was lost.

    ``address`` is "host:port" when known; ``origin`` says where the address came
    from ("bootstrap" or "metadata"); ``request_sent`` is False when the request
    is known not to have reached the broker (so repeating it cannot duplicate it),
    True when it was fully written, and None when unknown.
    """

    retriable = True

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        origin: str | None = None,
        request_sent: bool | None = None,
    ) -> None:
        self.address = address
        self.origin = origin
        self.request_sent = request_sent
        where = ""
        if address is not None:
            where = f"{address}" + (f" (from {origin})" if origin else "") + ": "
        super().__init__(f"{where}{message}")


class NoBrokersAvailableError(KafkaConnectionError):
    """None of the bootstrap servers or known brokers could be reached."""


class KafkaTimeoutError(KafkaError, TimeoutError):
    """An operation did not complete within its configured timeout."""

    retriable = True


class AuthenticationError(KafkaError):
    """Authentication failed; retrying with the same settings will fail again."""

    retriable = False


class SSLVerificationError(AuthenticationError):
    """The broker's TLS certificate was not trusted or does not match its host name."""


class ConfigError(KafkaError, ValueError):
    """A configuration key is unknown, has an invalid value, or contradicts another key."""

    retriable = False

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class UnsupportedVersionForApiError(KafkaError):
    """The broker supports no version of an API that this client can use."""

    retriable = False

    def __init__(
        self,
        api_name: str,
        ours: tuple[int, int],
        theirs: tuple[int, int] | None,
        *,
        node: str | None = None,
    ) -> None:
        self.api_name = api_name
        self.ours = ours
        self.theirs = theirs
        broker = f"broker {node}" if node is not None else "the broker"
        if theirs is None:
            detail = f"{broker} does not support {api_name} at all"
        else:
            detail = f"{broker} supports {api_name} v{theirs[0]}-v{theirs[1]}"
        super().__init__(
            f"{detail}, but this client needs {api_name} v{ours[0]}-v{ours[1]}; "
            "upgrade the broker or use an operation it supports"
        )


class IllegalStateError(KafkaError):
    """The operation is not valid in the object's current state (e.g. after close())."""

    retriable = False


class BufferFullError(KafkaTimeoutError):
    """``send()`` waited ``max_block_ms`` for room in the producer's buffer and got none.

    Nothing was enqueued. The buffer drains as the brokers acknowledge batches; a
    persistently full buffer means the brokers are slower than the application (or down).
    """


class DeliveryTimeoutError(KafkaTimeoutError):
    """A record was not acknowledged within ``delivery_timeout_ms``.

    ``delivery_state`` says whether it may still be in the log: ``NOT_PERSISTED`` (it
    never left the producer, or the broker rejected every attempt) or
    ``POSSIBLY_PERSISTED`` (an attempt was sent and its outcome is unknown).
    """

    def __init__(self, message: str, delivery_state: Any = None) -> None:
        super().__init__(message)
        self.delivery_state = delivery_state


class ProducerClosedError(IllegalStateError):
    """The producer was closed (or ``close(timeout=)`` ran out) before the record was
    delivered; ``delivery_state`` as for :class:`DeliveryTimeoutError`."""

    def __init__(self, message: str, delivery_state: Any = None) -> None:
        super().__init__(message)
        self.delivery_state = delivery_state


def __getattr__(name: str) -> Any:
    # Broker errors are generated into protocol.errors; expose them here too so
    # users import every error from one place (kclient.errors.NotLeaderOrFollowerError).
    if not name.startswith("__"):
        try:
            generated = importlib.import_module("protocol.errors")
            return getattr(generated, name)
        except (ImportError, AttributeError):
            pass
    raise AttributeError(f"module 'kclient.errors' has no attribute {name!r}")
