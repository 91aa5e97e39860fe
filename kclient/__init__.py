"""kclient: a pure-Python Apache Kafka client on anyio (asyncio and trio).

The wire codec lives in the sans-IO ``protocol`` package; this package adds the network
client (producer, consumer, admin, sync facades) and ``kclient.testing``.
"""

# -- network layer: config, errors, secrets (kclient.config, kclient.errors) --
from kclient._secret import Secret
from kclient.config import AdminConfig, CommonConfig, ConsumerConfig, ProducerConfig
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

__all__ = [
    "AdminConfig",
    "AuthenticationError",
    "BrokerResponseError",
    "CommonConfig",
    "ConfigError",
    "ConsumerConfig",
    "IllegalStateError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "NoBrokersAvailableError",
    "ProducerConfig",
    "SSLVerificationError",
    "Secret",
    "UnsupportedVersionForApiError",
]
