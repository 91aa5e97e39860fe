"""kclient: a pure-Python Apache Kafka client on anyio (asyncio and trio).

The wire codec lives in the sans-IO ``protocol`` package; this package adds the network
client (producer, consumer, admin, sync facades) and ``kclient.testing``.

The clients, configs and admin types below are imported on first use (PEP 562
``__getattr__``), so ``import kclient`` costs little and a script pays only for what it
touches; ``from kclient import Producer`` works as before. Type checkers see every name
through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

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
from protocol._lazy import load_attribute

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

# public name -> the submodule that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Admin": "sync",
    "AdminConfig": "config",
    "AlterConfigOp": "admin",
    "AsyncAdmin": "admin",
    "AsyncConsumer": "consumer.consumer",
    "AsyncGroupTransactSession": "eos",
    "AsyncProducer": "producer.producer",
    "CommonConfig": "config",
    "ConfigResource": "admin",
    "Consumer": "sync",
    "ConsumerConfig": "config",
    "ConsumerGroupMetadata": "producer.txn_types",
    "ConsumerRebalanceListener": "consumer.listener",
    "GroupTransactSession": "sync",
    "NewPartitions": "admin",
    "NewTopic": "admin",
    "OffsetSpec": "admin",
    "Producer": "sync",
    "ProducerConfig": "config",
    "ProducerRecord": "producer.producer",
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
    value = load_attribute(__name__, _LAZY, _SUBPACKAGES, name)
    if name in _LAZY:
        globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})
