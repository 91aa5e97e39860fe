"""Typed, frozen, validated configuration for every client.

Keys are the Java client's names in snake_case (``bootstrap.servers`` ->
``bootstrap_servers``) and defaults are the Java client's. A config is
validated as a whole when it is built: an unknown key, a value of the wrong
type or out of range, or a contradiction between keys raises
:class:`~kclient.errors.ConfigError` naming the key to fix.

Contradictions are only resolved silently when the key that gives way was left
unset, as in the Java client: ``ProducerConfig(acks=1)`` quietly disables
idempotence (it defaults to on), while ``ProducerConfig(acks=1,
enable_idempotence=True)`` is an error.

``CommonConfig.from_properties({"bootstrap.servers": "h:9092", ...})`` accepts
Java/librdkafka style dotted keys with string values.

Credentials (``sasl_password``, ``ssl_key_password``) are stored as
:class:`~kclient._secret.Secret`: they show as ``***`` in ``repr`` and errors.

Deviations from Java: ``sasl_mechanism`` defaults to PLAIN (GSSAPI is not
implemented); TLS material is PEM (``ssl_ca_location`` etc., the librdkafka
names) or a ready ``ssl_context``; ``client_id`` defaults to "kclient".
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from kclient._config_base import (
    check_bounds,
    convert_property,
    field_hints,
    setting,
    suggest,
    track_explicit,
)
from kclient._secret import Secret, as_secret
from kclient.errors import ConfigError

__all__ = ["AdminConfig", "CommonConfig", "ConsumerConfig", "ProducerConfig", "parse_address"]

log = logging.getLogger("kclient.config")

_INT32_MAX = 2**31 - 1
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

Self = TypeVar("Self", bound="CommonConfig")

# Dotted keys whose snake_case form is not a field name.
_PROPERTY_ALIASES: dict[str, str] = {
    "metadata.broker.list": "bootstrap_servers",
    "sasl.mechanisms": "sasl_mechanism",
    "queue.buffering.max.ms": "linger_ms",
    "ssl.endpoint.identification.algorithm": "ssl_check_hostname",
    "ssl.key.location": "ssl_key_location",
}


def parse_address(address: str) -> tuple[str, int]:
    """Split "host:port" (or "[v6addr]:port"); raise ValueError when malformed."""
    text = address.strip()
    if "://" in text:  # tolerate "PLAINTEXT://host:port" from broker-style configs
        text = text.split("://", 1)[1]
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{address!r}: port must be 1-65535")
    return host, port


@track_explicit
@dataclass(frozen=True, kw_only=True)
class CommonConfig:
    """Settings shared by the producer, the consumer and the admin client."""

    bootstrap_servers: str | tuple[str, ...] = ()
    """Brokers to bootstrap from: "host:port,host:port" or a tuple. Required."""
    client_id: str = "kclient"
    """Sent with every request; shows up in broker logs and quotas."""
    request_timeout_ms: int = setting(30000, ge=0)
    """How long to wait for a response before failing the request and closing the connection."""
    socket_connection_setup_timeout_ms: int = setting(10000, ge=0)
    """Time allowed to open a connection (TCP, TLS, ApiVersions and SASL)."""
    socket_connection_setup_timeout_max_ms: int = setting(30000, ge=0)
    """Cap of the connection setup timeout as it grows with repeated failures."""
    reconnect_backoff_ms: int = setting(50, ge=0)
    """Base wait before reconnecting to a broker; doubles with each failure (with jitter)."""
    reconnect_backoff_max_ms: int = setting(1000, ge=0)
    """Cap of the reconnect backoff."""
    retry_backoff_ms: int = setting(100, ge=0)
    """Base wait before retrying a failed request; doubles with each failure (with jitter)."""
    retry_backoff_max_ms: int = setting(1000, ge=0)
    """Cap of the retry backoff."""
    connections_max_idle_ms: int = setting(540000, ge=-1)
    """Close connections idle for this long (-1: never)."""
    metadata_max_age_ms: int = setting(300000, ge=0)
    """Refresh cluster metadata at least this often."""
    metadata_recovery_strategy: str = setting("rebootstrap", choices=("none", "rebootstrap"))
    """What to do when no known broker is reachable: go back to bootstrap_servers, or not."""
    metadata_recovery_rebootstrap_trigger_ms: int = setting(300000, ge=0)
    """Re-bootstrap after metadata could not be refreshed for this long."""
    max_in_flight_requests_per_connection: int = setting(5, ge=1)
    """Requests sent on one connection before waiting for responses."""
    receive_message_max_bytes: int = setting(100 * 1024 * 1024, ge=1000, le=_INT32_MAX)
    """Largest response frame accepted; a larger size prefix closes the connection."""
    security_protocol: str = setting("PLAINTEXT", choices=SECURITY_PROTOCOLS)
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    ssl_context: ssl.SSLContext | None = None
    """A ready SSLContext; overrides every other ssl_* setting."""
    ssl_ca_location: str | None = None
    """PEM file or directory of CA certificates to trust (default: the system store)."""
    ssl_certificate_location: str | None = None
    """PEM client certificate for mutual TLS."""
    ssl_key_location: str | None = None
    """PEM private key of the client certificate."""
    ssl_key_password: Secret | str | None = None
    """Password of ssl_key_location, if encrypted."""
    ssl_check_hostname: bool = True
    """Check that the broker certificate matches its host name. Turning it off logs a warning."""
    enable_ssl_certificate_verification: bool = True
    """Verify the broker certificate chain. Turning it off logs a warning."""
    sasl_mechanism: str = setting("PLAIN", choices=SASL_MECHANISMS)
    """PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER."""
    sasl_username: str | None = None
    """User name for PLAIN and SCRAM."""
    sasl_password: Secret | str | None = None
    """Password for PLAIN and SCRAM."""
    sasl_oauthbearer_token_provider: Callable[[], Any] | None = None
    """Callable (sync or async) returning the OAuth token (str, Secret or OAuthBearerToken)."""

    _explicit: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    _DEFAULT_PORT: ClassVar[int] = 9092

    # -- construction -------------------------------------------------------------

    def __post_init__(self) -> None:
        self._normalize()
        check_bounds(self)  # types first, so the cross-key rules below can trust them
        self._resolve()
        self.validate()

    def is_set(self, key: str) -> bool:
        """Whether ``key`` was given explicitly (rather than left at its default)."""
        return key in self._explicit

    def _set(self, key: str, value: object) -> None:
        object.__setattr__(self, key, value)

    def _normalize(self) -> None:
        """Bring accepted input forms to the stored form (before type checks)."""
        if isinstance(self.bootstrap_servers, str):
            parts = tuple(p.strip() for p in self.bootstrap_servers.split(",") if p.strip())
            self._set("bootstrap_servers", parts)
        elif isinstance(self.bootstrap_servers, list):
            self._set("bootstrap_servers", tuple(self.bootstrap_servers))
        for key in ("sasl_password", "ssl_key_password"):
            value = getattr(self, key)
            if isinstance(value, str):
                self._set(key, as_secret(value))

    def _resolve(self) -> None:
        """Settle contradictions in favour of explicitly set keys."""
        for base, cap in (
            ("reconnect_backoff_ms", "reconnect_backoff_max_ms"),
            ("retry_backoff_ms", "retry_backoff_max_ms"),
            ("socket_connection_setup_timeout_ms", "socket_connection_setup_timeout_max_ms"),
        ):
            low, high = getattr(self, base), getattr(self, cap)
            if isinstance(low, int) and isinstance(high, int) and low > high:
                if self.is_set(cap):
                    raise ConfigError(cap, f"must be >= {base} ({low}), got {high}")
                self._set(cap, low)
        if self.ssl_check_hostname and self.enable_ssl_certificate_verification is False:
            if self.is_set("ssl_check_hostname"):
                raise ConfigError(
                    "ssl_check_hostname", "cannot check the host name without verifying the chain"
                )
            self._set("ssl_check_hostname", False)

    # -- validation ---------------------------------------------------------------

    def validate(self) -> None:
        """Check every key and every cross-key rule; raise ConfigError naming the key."""
        check_bounds(self)
        self._validate_bootstrap()
        self._validate_tls()
        self._validate_sasl()

    def _validate_bootstrap(self) -> None:
        if not self.bootstrap_servers:
            raise ConfigError("bootstrap_servers", "required: give at least one host:port")
        for address in self.bootstrap_servers:
            try:
                parse_address(address)
            except ValueError as exc:
                raise ConfigError("bootstrap_servers", str(exc)) from None

    def _validate_tls(self) -> None:
        files = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
        if self.ssl_context is not None:
            for key in files:
                if getattr(self, key) is not None:
                    raise ConfigError(key, "set either ssl_context or the ssl_* file settings")
        if self.ssl_key_location and not self.ssl_certificate_location:
            raise ConfigError("ssl_certificate_location", "required when ssl_key_location is set")

    def _validate_sasl(self) -> None:
        if not self.security_protocol.startswith("SASL_"):
            return
        if self.sasl_mechanism == "OAUTHBEARER":
            if self.sasl_oauthbearer_token_provider is None:
                raise ConfigError(
                    "sasl_oauthbearer_token_provider", "required for sasl_mechanism OAUTHBEARER"
                )
            return
        if not self.sasl_username:
            raise ConfigError("sasl_username", f"required for sasl_mechanism {self.sasl_mechanism}")
        if self.sasl_password is None:
            raise ConfigError("sasl_password", f"required for sasl_mechanism {self.sasl_mechanism}")

    # -- helpers ------------------------------------------------------------------

    @property
    def bootstrap_addresses(self) -> tuple[tuple[str, int], ...]:
        """bootstrap_servers parsed into (host, port) pairs."""
        return tuple(parse_address(a) for a in self.bootstrap_servers)

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def evolve(self: Self, **changes: Any) -> Self:
        """A copy with ``changes``; keys set explicitly before stay explicit, others stay unset.

        (``dataclasses.replace`` would mark every key as explicitly set.)
        """
        kept = {k: getattr(self, k) for k in self._explicit}
        return type(self)(**{**kept, **changes})

    @classmethod
    def from_properties(cls: type[Self], properties: Mapping[str, object]) -> Self:
        """Build from Java/librdkafka dotted keys (``{"bootstrap.servers": "h:9092"}``)."""
        hints = field_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs: dict[str, Any] = {}
        for prop, raw in properties.items():
            key = _PROPERTY_ALIASES.get(prop, prop.replace(".", "_").replace("-", "_").lower())
            if key not in names:
                raise ConfigError(prop, f"unknown configuration property{suggest(key, names)}")
            if prop == "ssl.endpoint.identification.algorithm":
                kwargs[key] = str(raw).strip().lower() not in ("", "none")
                continue
            kwargs[key] = convert_property(key, prop, raw, hints[key])
        return cls(**kwargs)


def _acks_all(c: ProducerConfig) -> bool:
    return c.acks == -1


def _in_flight_ok(c: ProducerConfig) -> bool:
    return c.max_in_flight_requests_per_connection <= 5


def _retries_ok(c: ProducerConfig) -> bool:
    return c.retries > 0


# (key, rule, why): what the idempotent producer needs from other keys.
_IDEMPOTENCE_NEEDS: tuple[tuple[str, Callable[[ProducerConfig], bool], str], ...] = (
    ("acks", _acks_all, "must be 'all' for the idempotent producer"),
    (
        "max_in_flight_requests_per_connection",
        _in_flight_ok,
        "must be <= 5 for the idempotent producer",
    ),
    ("retries", _retries_ok, "must be > 0 for the idempotent producer"),
)

_ACKS_FORMS: dict[object, int] = {"all": -1, "-1": -1, "0": 0, "1": 1, -1: -1, 0: 0, 1: 1}


@track_explicit
@dataclass(frozen=True, kw_only=True)
class ProducerConfig(CommonConfig):
    """Producer settings (the producer adds its own keys here)."""

    acks: int | str = "all"
    """Acknowledgements to wait for: 'all' (-1), 1 or 0. Stored as the wire value."""
    enable_idempotence: bool = True
    """Exactly-once per partition; turned off silently only if left unset and acks/retries/
    max_in_flight contradict it."""
    retries: int = setting(_INT32_MAX, ge=0)
    """How often to retry a failed send (delivery_timeout_ms bounds the total time)."""
    batch_size: int = setting(262144, ge=0)
    """Bytes per partition batch, at most max_request_size (256 KiB, not Java's 16 KiB: four
    full batches fill one default request; linger_ms, not this, bounds latency)."""
    linger_ms: int = setting(5, ge=0)
    """How long to wait for more records before sending a batch."""
    delivery_timeout_ms: int = setting(120000, ge=0)
    """Upper bound on the time to report success or failure of a send."""
    buffer_memory: int = setting(33554432, ge=0)
    """Bytes of records the producer buffers before send() blocks."""
    max_block_ms: int = setting(60000, ge=0)
    """How long send() may block for buffer space or metadata."""
    max_request_size: int = setting(1048576, ge=1)
    """Largest produce request."""
    compression_type: str = setting("none", choices=("none", "gzip", "snappy", "lz4", "zstd"))
    """Codec for record batches."""
    transactional_id: str | None = None
    """Enables transactions (requires idempotence)."""
    transaction_timeout_ms: int = setting(60000, ge=1)
    """Broker aborts a transaction left open this long."""
    partitioner_ignore_keys: bool = False
    """Spread keyed records like keyless ones."""
    metadata_max_idle_ms: int = setting(300000, ge=5000)
    """Forget metadata of topics not produced to for this long."""
    allow_auto_create_topics: bool = True
    """Let the broker create a topic this producer sends to that does not exist yet."""

    def _normalize(self) -> None:
        super()._normalize()
        acks = self.acks.strip().lower() if isinstance(self.acks, str) else self.acks
        if not isinstance(acks, bool) and acks in _ACKS_FORMS:
            self._set("acks", _ACKS_FORMS[acks])
        elif not isinstance(self.acks, bool) and isinstance(self.acks, (int, str)):
            raise ConfigError("acks", f"must be 'all', -1, 0 or 1, got {self.acks!r}")

    def _resolve(self) -> None:
        super()._resolve()
        if self.enable_idempotence and not self.is_set("enable_idempotence"):
            for key, ok, _ in _IDEMPOTENCE_NEEDS:
                if self.is_set(key) and not ok(self):
                    if self.transactional_id is None:
                        log.info("idempotence disabled because %s=%r", key, getattr(self, key))
                        self._set("enable_idempotence", False)
                        break
        floor = self.linger_ms + self.request_timeout_ms
        if isinstance(floor, int) and self.delivery_timeout_ms < floor:
            if self.is_set("delivery_timeout_ms"):
                raise ConfigError(
                    "delivery_timeout_ms",
                    f"must be >= linger_ms + request_timeout_ms ({floor}), "
                    f"got {self.delivery_timeout_ms}",
                )
            self._set("delivery_timeout_ms", floor)

    def validate(self) -> None:
        super().validate()
        if self.acks not in (-1, 0, 1):
            raise ConfigError("acks", f"must be 'all', -1, 0 or 1, got {self.acks!r}")
        if self.enable_idempotence:
            for key, ok, why in _IDEMPOTENCE_NEEDS:
                if not ok(self):
                    raise ConfigError(key, f"{why} (or set enable_idempotence=False)")
        elif self.transactional_id is not None:
            raise ConfigError("enable_idempotence", "transactions need enable_idempotence=True")


@track_explicit
@dataclass(frozen=True, kw_only=True)
class ConsumerConfig(CommonConfig):
    """Consumer settings (the consumer adds its own keys here)."""

    group_id: str | None = None
    """Consumer group; None for a consumer that only assigns partitions manually."""
    group_instance_id: str | None = None
    """Static membership id (KIP-345)."""
    group_protocol: str = setting("classic", choices=("classic", "consumer"))
    """Rebalance protocol."""
    session_timeout_ms: int = setting(10000, ge=1)
    """The group drops a member not heard from for this long (aiokafka's default; see
    docs/design-notes/consumer-defaults.md for why not Java's 45 s)."""
    heartbeat_interval_ms: int = setting(3000, ge=1)
    """Time between heartbeats; must be below session_timeout_ms."""
    max_poll_interval_ms: int = setting(300000, ge=1)
    """Longest allowed gap between polls before the member leaves the group."""
    max_poll_records: int = setting(500, ge=1)
    """Most records returned by one poll."""
    auto_offset_reset: str = setting("latest", choices=("earliest", "latest", "none"))
    """Where to start when there is no committed offset."""
    enable_auto_commit: bool = True
    """Commit positions in the background (needs group_id; off silently without one)."""
    auto_commit_interval_ms: int = setting(5000, ge=0)
    """How often to auto-commit."""
    fetch_min_bytes: int = setting(1, ge=0)
    """Bytes the broker waits to accumulate before answering a fetch."""
    fetch_max_bytes: int = setting(52428800, ge=0)
    """Most bytes per fetch response."""
    fetch_max_wait_ms: int = setting(500, ge=0)
    """Longest the broker waits for fetch_min_bytes."""
    max_partition_fetch_bytes: int = setting(1048576, ge=0)
    """Most bytes per partition per fetch."""
    isolation_level: str = setting(
        "read_uncommitted", choices=("read_uncommitted", "read_committed")
    )
    """Whether to hide records of open and aborted transactions."""
    partition_assignment_strategy: tuple[str, ...] = ("range", "cooperative-sticky")
    """Assignors in order of preference."""
    check_crcs: bool = True
    """Verify record batch CRCs."""
    allow_auto_create_topics: bool = True
    """Let the broker create subscribed topics that do not exist."""
    exclude_internal_topics: bool = True
    """Keep internal topics out of pattern subscriptions."""
    client_rack: str = ""
    """Rack of this consumer, for fetching from the closest replica."""
    default_api_timeout_ms: int = setting(60000, ge=0)
    """Timeout of blocking calls that take no explicit timeout."""

    def _normalize(self) -> None:
        super()._normalize()
        if isinstance(self.partition_assignment_strategy, str):
            parts = tuple(s.strip() for s in self.partition_assignment_strategy.split(","))
            self._set("partition_assignment_strategy", tuple(p for p in parts if p))
        elif isinstance(self.partition_assignment_strategy, list):
            self._set("partition_assignment_strategy", tuple(self.partition_assignment_strategy))

    def _resolve(self) -> None:
        super()._resolve()
        if self.group_id is None and self.enable_auto_commit:
            if self.is_set("enable_auto_commit"):
                raise ConfigError("enable_auto_commit", "needs a group_id")
            self._set("enable_auto_commit", False)
        session, heartbeat = self.session_timeout_ms, self.heartbeat_interval_ms
        if isinstance(session, int) and isinstance(heartbeat, int) and heartbeat >= session:
            if self.is_set("heartbeat_interval_ms"):
                raise ConfigError(
                    "heartbeat_interval_ms",
                    f"must be below session_timeout_ms ({session}), got {heartbeat}",
                )
            self._set("heartbeat_interval_ms", max(1, session // 3))

    def validate(self) -> None:
        super().validate()
        if self.group_instance_id is not None and self.group_id is None:
            raise ConfigError("group_instance_id", "static membership needs a group_id")
        if not self.partition_assignment_strategy:
            raise ConfigError("partition_assignment_strategy", "give at least one assignor")


@track_explicit
@dataclass(frozen=True, kw_only=True)
class AdminConfig(CommonConfig):
    """Admin client settings."""

    connections_max_idle_ms: int = setting(300000, ge=-1)
    """Close connections idle for this long (-1: never)."""
    default_api_timeout_ms: int = setting(60000, ge=0)
    """Timeout of admin calls that take no explicit timeout."""
    retries: int = setting(_INT32_MAX, ge=0)
    """How often to retry a failed admin request (default_api_timeout_ms bounds the time)."""
