"""kclient: a pure-Python Apache Kafka client on anyio (asyncio and trio).

The wire codec lives in the sans-IO ``protocol`` package; this package adds the network
client (producer, consumer, admin, sync facades) and ``kclient.testing``.

The clients, configs and admin types below are imported on first use (PEP 562
``__getattr__``), so ``import kclient`` costs little and a script pays only for what it
touches; ``from kclient import Producer`` works as before. Type checkers see every name
through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Cheap and needed in ``except`` clauses and signatures everywhere: imported eagerly.
from kclient._secret import Secret
from kclient.errors import (
    AuthenticationError,
    BrokerResponseError,
    BufferFullError,
    CommitFailedError,
    ConfigError,
    CorruptBatchError,
    DeliveryTimeoutError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    KafkaTimeoutError,
    LogTruncationError,
    MaxPollIntervalExceededError,
    NoBrokersAvailableError,
    NoOffsetForPartitionError,
    ProducerClosedError,
    ProducerFencedError,
    SSLVerificationError,
    TransactionAbortableError,
    TransactionAbortedError,
    TransactionError,
    TransactionFatalError,
    TransactionOutcomeUnknownError,
    TransactionStateError,
    UnsupportedVersionForApiError,
)
from kclient.structs import ConsumerRecord, OffsetAndMetadata, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    # listed in __all__, so mypy --strict takes them as re-exported
    from kclient.admin import (
        AlterConfigOp,
        AsyncAdmin,
        ConfigResource,
        NewPartitions,
        NewTopic,
        OffsetSpec,
    )
    from kclient.config import AdminConfig, CommonConfig, ConsumerConfig, ProducerConfig
    from kclient.consumer.consumer import AsyncConsumer
    from kclient.consumer.listener import ConsumerRebalanceListener
    from kclient.eos import AsyncGroupTransactSession
    from kclient.producer.producer import AsyncProducer, ProducerRecord
    from kclient.producer.txn_types import ConsumerGroupMetadata
    from kclient.sync import Admin, Consumer, GroupTransactSession, Producer

__all__ = [
    "Admin",
    "AdminConfig",
    "AlterConfigOp",
    "AsyncAdmin",
    "AsyncConsumer",
    "AsyncGroupTransactSession",
    "AsyncProducer",
    "AuthenticationError",
    "BrokerResponseError",
    "BufferFullError",
    "CommitFailedError",
    "CommonConfig",
    "ConfigError",
    "ConfigResource",
    "Consumer",
    "ConsumerConfig",
    "ConsumerGroupMetadata",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "CorruptBatchError",
    "DeliveryTimeoutError",
    "GroupTransactSession",
    "IllegalStateError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "LogTruncationError",
    "MaxPollIntervalExceededError",
    "NewPartitions",
    "NewTopic",
    "NoBrokersAvailableError",
    "NoOffsetForPartitionError",
    "OffsetAndMetadata",
    "OffsetSpec",
    "Producer",
    "ProducerClosedError",
    "ProducerConfig",
    "ProducerFencedError",
    "ProducerRecord",
    "RecordMetadata",
    "SSLVerificationError",
    "Secret",
    "TopicPartition",
    "TransactionAbortableError",
    "TransactionAbortedError",
    "TransactionError",
    "TransactionFatalError",
    "TransactionOutcomeUnknownError",
    "TransactionStateError",
    "UnsupportedVersionForApiError",
]

# public name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Admin": "kclient.sync",
    "AdminConfig": "kclient.config",
    "AlterConfigOp": "kclient.admin",
    "AsyncAdmin": "kclient.admin",
    "AsyncConsumer": "kclient.consumer.consumer",
    "AsyncGroupTransactSession": "kclient.eos",
    "AsyncProducer": "kclient.producer.producer",
    "CommonConfig": "kclient.config",
    "ConfigResource": "kclient.admin",
    "Consumer": "kclient.sync",
    "ConsumerConfig": "kclient.config",
    "ConsumerGroupMetadata": "kclient.producer.txn_types",
    "ConsumerRebalanceListener": "kclient.consumer.listener",
    "GroupTransactSession": "kclient.sync",
    "NewPartitions": "kclient.admin",
    "NewTopic": "kclient.admin",
    "OffsetSpec": "kclient.admin",
    "Producer": "kclient.sync",
    "ProducerConfig": "kclient.config",
    "ProducerRecord": "kclient.producer.producer",
}

# Subpackages that an eager ``import kclient`` used to bind as attributes, so code that
# reaches ``kclient.sync.Producer`` after a bare ``import kclient`` keeps working.
_SUBPACKAGES = frozenset(
    {
        "admin",
        "cluster",
        "config",
        "consumer",
        "eos",
        "errors",
        "net",
        "producer",
        "structs",
        "sync",
    }
)


def __getattr__(name: str) -> object:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})
