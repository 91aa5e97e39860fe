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
    ├── IllegalStateError               the call is not allowed now (closed client, ...)
    │   ├── ProducerClosedError         close(timeout=) ran out before the record was delivered
    │   └── TransactionStateError       the transactional call is not allowed in this state
    └── TransactionError                transactions (``transactional_id``), by remedy:
        ├── TransactionAbortableError   abortable: abort the transaction, then run it again
        ├── TransactionOutcomeUnknownError  EndTxn's result is unknown; abort or begin
        │                               (both re-initialise the producer id first)
        ├── TransactionAbortedError     a record's transaction was aborted: not persisted
        └── TransactionFatalError       fatal: the producer is unusable; close it
            └── ProducerFencedError     another instance with the same transactional_id

Every :class:`TransactionError` has ``error_code`` (the broker code behind it, 0 if
none) and the class flags ``abortable`` and ``fatal``. After a fatal error every
later transactional call raises the same class with the same code.

(R = ``retriable``.) Foreign exceptions (``OSError``, ``ssl.SSLError``,
anyio's stream errors) are translated into these only at the transport
boundary (``kclient.net.transport.map_exceptions``).

Messages never contain credentials: they name mechanisms and user names at most.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from protocol._errors_base import (
    BrokerResponseError,
    CorruptRecordError,
    FramingError,
    KafkaError,
    KafkaProtocolError,
)

if TYPE_CHECKING:
    from kclient.structs import TopicPartition

__all__ = [
    "AuthenticationError",
    "BrokerResponseError",
    "BufferFullError",
    "CommitFailedError",
    "ConfigError",
    "ConsumerError",
    "CorruptBatchError",
    "CorruptRecordError",
    "DeliveryTimeoutError",
    "FramingError",
    "GroupRequiredError",
    "IllegalStateError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "LogTruncationError",
    "MaxPollIntervalExceededError",
    "NoBrokersAvailableError",
    "NoOffsetForPartitionError",
    "ProducerClosedError",
    "ProducerFencedError",
    "SSLVerificationError",
    "TransactionAbortableError",
    "TransactionAbortedError",
    "TransactionError",
    "TransactionFatalError",
    "TransactionOutcomeUnknownError",
    "TransactionStateError",
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


class TransactionStateError(IllegalStateError):
    """The transactional call is not valid now (commit without begin, begin twice,
    send outside a transaction on a transactional producer)."""


class TransactionError(KafkaError):
    """Base of the transaction errors; ``abortable``/``fatal`` name the remedy."""

    retriable = False
    abortable = False  # abort_transaction(), then run the transaction again
    fatal = False  # the producer is unusable: close it (and start a new instance)

    def __init__(self, message: str, error_code: int = 0) -> None:
        self.error_code = error_code
        suffix = f" (error code {error_code})" if error_code else ""
        super().__init__(message + suffix)


class TransactionAbortableError(TransactionError):
    """The current transaction cannot commit: abort it, then start a new one.

    Raised by ``commit_transaction()`` (which then never reports success) after a
    record of the transaction failed or expired, an idempotence error hit it
    (UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER), or the coordinator
    rejected it in a way that dooms only this transaction (a rebalance that
    fenced the consumer generation, topic or group authorization).
    """

    abortable = True


class TransactionOutcomeUnknownError(TransactionError):
    """EndTxn(commit) was sent but its result is unknown (timeout, UNKNOWN_SERVER_ERROR,
    connection lost after the write).

    The transaction may or may not be committed. Retrying the commit is refused;
    ``abort_transaction()`` or the next ``begin_transaction()`` re-initialises the
    producer id (an epoch bump), which makes the coordinator finish the old one.
    """

    abortable = True


class TransactionAbortedError(TransactionError):
    """A record's transaction was aborted before the record was sent; it is not in
    the log (``delivery_state`` is NOT_PERSISTED)."""

    def __init__(self, message: str, delivery_state: Any = None) -> None:
        super().__init__(message)
        self.delivery_state = delivery_state


class TransactionFatalError(TransactionError):
    """The transactional producer can no longer be used; every later call raises this
    (a fresh instance with the same ``error_code``). Close the producer."""

    fatal = True


class ProducerFencedError(TransactionFatalError):
    """A newer producer with the same ``transactional_id`` took over (PRODUCER_FENCED,
    INVALID_PRODUCER_EPOCH). Nothing this instance did after the fence can commit.

    This shadows the generated broker error of the same name in this module; the
    broker's class stays available as ``protocol.errors.ProducerFencedError``.
    """


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


# -- consumer ------------------------------------------------------------------------------


class ConsumerError(KafkaError):
    """Root of consumer-side client errors."""


class CommitFailedError(ConsumerError):
    """The commit cannot succeed: the group rebalanced and the partitions may be owned by
    another member now. The consumer rejoins on its own; the application should not retry
    the same commit blindly."""


class MaxPollIntervalExceededError(ConsumerError):
    """The application did not poll within ``max_poll_interval_ms``; the consumer left the
    group and will rejoin on the next poll."""


class CorruptBatchError(CorruptRecordError):
    """A fetched batch failed its CRC or could not be decoded. Raised at the same position
    on every poll until the application seeks past ``offset`` on ``topic_partition``."""

    def __init__(self, tp: TopicPartition, offset: int, cause: BaseException) -> None:
        super().__init__(
            f"corrupt record batch in {tp.topic}-{tp.partition} at offset {offset}: {cause}"
        )
        self.topic_partition = tp
        self.offset = offset


class NoOffsetForPartitionError(ConsumerError):
    """A partition has no committed offset and ``auto_offset_reset="none"``: the
    application must seek before consuming it."""


class GroupRequiredError(IllegalStateError):
    """The consumer operation needs a ``group_id`` (commits, group metadata)."""


class LogTruncationError(KafkaError):
    """The partition's log was truncated below the consumer's position (a leader change
    lost records the consumer had already read) and ``auto_offset_reset`` is ``"none"``.

    ``divergent_offset`` is the first offset known to differ (None if the broker could
    not tell). Raised at the same place on every poll until the application seeks.
    """

    retriable = False

    def __init__(
        self,
        message: str,
        *,
        topic_partition: Any = None,
        position: int = -1,
        divergent_offset: int | None = None,
        divergent_epoch: int = -1,
    ) -> None:
        super().__init__(message)
        self.topic_partition = topic_partition
        self.position = position
        self.divergent_offset = divergent_offset
        self.divergent_epoch = divergent_epoch
