"""kclient: a pure-Python Apache Kafka client on anyio (asyncio and trio).

The wire codec lives in the sans-IO ``protocol`` package; this package adds the network
client (producer, consumer, admin, sync facades) and ``kclient.testing``.
"""

# -- network layer: config, errors, secrets (kclient.config, kclient.errors) --
from kclient._secret import Secret

# -- admin client (kclient.admin) --
from kclient.admin import (
    AlterConfigOp,
    AsyncAdmin,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kclient.config import AdminConfig, CommonConfig, ConsumerConfig, ProducerConfig

# -- consumer (kclient.consumer) --
from kclient.consumer.consumer import AsyncConsumer
from kclient.consumer.listener import ConsumerRebalanceListener
from kclient.eos import AsyncGroupTransactSession
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

# -- producer (kclient.producer) --
from kclient.producer.producer import AsyncProducer, ProducerRecord
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import ConsumerRecord, OffsetAndMetadata, RecordMetadata, TopicPartition

# -- sync facades (kclient.sync): blocking twins of the async clients --
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
