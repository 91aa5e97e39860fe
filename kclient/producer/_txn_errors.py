"""Transaction errors, by remedy (to be folded into :mod:`kclient.errors`).

::

    KafkaError
    ├── TransactionAbortableError        abort the transaction, then run it again
    ├── TransactionOutcomeUnknownError   EndTxn's result is unknown; abort or begin
    │                                    (both re-initialise the producer id)
    ├── TransactionFatalError            the transactional producer is unusable; close it
    │   └── ProducerFencedError          another instance with the same transactional.id
    └── IllegalStateError
        └── TransactionStateError        the call is not allowed in the current state
"""

from __future__ import annotations

from kclient.errors import IllegalStateError, KafkaError

__all__ = [
    "ProducerFencedError",
    "TransactionAbortableError",
    "TransactionFatalError",
    "TransactionOutcomeUnknownError",
    "TransactionStateError",
]


class _CodedError(KafkaError):
    retriable = False

    def __init__(self, message: str, error_code: int = 0) -> None:
        self.error_code = error_code
        suffix = f" (error code {error_code})" if error_code else ""
        super().__init__(message + suffix)


class TransactionAbortableError(_CodedError):
    """The current transaction cannot commit: abort it, then start a new one.

    Raised by ``commit_transaction()`` (never success) after a record of the
    transaction failed or expired, or a transactional request was rejected in a
    way that only dooms this transaction (idempotence errors, a rebalance that
    fenced the consumer generation, topic or group authorization).
    """


class TransactionOutcomeUnknownError(_CodedError):
    """EndTxn was sent but its result is unknown (timeout, UNKNOWN_SERVER_ERROR).

    The transaction may or may not be committed. Retrying the commit is refused;
    ``abort_transaction()`` or the next ``begin_transaction()`` re-initialises the
    producer id (an epoch bump), which finishes the old transaction on the broker.
    """


class TransactionFatalError(_CodedError):
    """The transactional producer can no longer be used; every later call raises this."""


class ProducerFencedError(TransactionFatalError):
    """A newer producer with the same ``transactional_id`` (or epoch) took over.

    Raised for PRODUCER_FENCED and INVALID_PRODUCER_EPOCH (TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    and other fatal codes raise the base class). Nothing this instance did after
    the fence can be committed.
    """


class TransactionStateError(IllegalStateError):
    """The transactional call is not valid now (e.g. commit without begin)."""
