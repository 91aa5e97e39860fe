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
from kclient.errors import (
    AuthenticationError,
    BrokerResponseError,
    ConfigError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    KafkaTimeoutError,
    NoBrokersAvailableError,
    SSLVerificationError,
    UnsupportedVersionForApiError,
)
from kclient.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition

__all__ = [
    "AdminConfig",
    "AlterConfigOp",
    "AsyncAdmin",
    "AsyncConsumer",
    "AuthenticationError",
    "BrokerResponseError",
    "CommonConfig",
    "ConfigError",
    "ConfigResource",
    "ConsumerConfig",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "IllegalStateError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "NewPartitions",
    "NewTopic",
    "NoBrokersAvailableError",
    "OffsetAndMetadata",
    "OffsetSpec",
    "ProducerConfig",
    "SSLVerificationError",
    "Secret",
    "TopicPartition",
    "UnsupportedVersionForApiError",
]
