"""Reliability scenario B6 (reliability guide 2e): bad user input and invalid configuration.

Configuration rules are checked where users meet them, at client construction (async and
sync facades, keyword arguments and ``.properties`` maps): a ConfigError naming the key, and
nothing silently adjusted unless the user left that key unset. The per-key unit tests are
in tests/kclient/unit/test_config.py; the call-site input checks of send() are in
tests/kclient/producer/test_producer_api.py (``test_invalid_input_raises_and_enqueues_nothing``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer
from kclient.config import AdminConfig, CommonConfig, ConsumerConfig, ProducerConfig
from kclient.errors import ConfigError
from kclient.testing.mock import MockCluster
from kclient.testing.mock.codes import Err
from protocol.errors import InvalidTopicError
from protocol.messages import ApiKey

from ..producer._helpers import make_producer

B = "127.0.0.1:9092"

CLIENTS: dict[str, Callable[..., object]] = {
    "AsyncProducer": lambda **kw: AsyncProducer(**kw),
    "AsyncConsumer": lambda **kw: AsyncConsumer(**kw),
    "AsyncAdmin": lambda **kw: AsyncAdmin(**kw),
}
CONFIG_OF = {
    "AsyncProducer": ProducerConfig,
    "AsyncConsumer": ConsumerConfig,
    "AsyncAdmin": AdminConfig,
}


def rejected_key(make: Callable[..., object], **settings: Any) -> str:
    with pytest.raises(ConfigError) as info:
        make(bootstrap_servers=B, **settings)
    assert str(info.value).startswith(info.value.key)  # the message leads with the key
    return info.value.key


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"enable_idempotence": True, "acks": 1}, "acks"),
        ({"enable_idempotence": True, "acks": "1"}, "acks"),
        (
            {"enable_idempotence": True, "max_in_flight_requests_per_connection": 6},
            "max_in_flight_requests_per_connection",
        ),
        ({"enable_idempotence": True, "retries": 0}, "retries"),
        ({"transactional_id": "tx", "acks": 1}, "acks"),  # transactions need idempotence
        ({"delivery_timeout_ms": 1000}, "delivery_timeout_ms"),  # < 5 + 30000
        ({"delivery_timeout_ms": 30004}, "delivery_timeout_ms"),  # one below the floor
        (
            {"linger_ms": 100, "request_timeout_ms": 1000, "delivery_timeout_ms": 1099},
            "delivery_timeout_ms",
        ),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_b6_producer_construction_rejects_contradictions(
    settings: dict[str, Any], key: str
) -> None:
    """B6: idempotence vs acks/max_in_flight/retries, delivery timeout floor, unknown key."""
    assert rejected_key(CLIENTS["AsyncProducer"], **settings) == key


def _timeout_keys(config: type[CommonConfig]) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(config)
        if f.init and (f.name.endswith("_ms") or "timeout" in f.name)
    ]


@pytest.mark.parametrize(
    ("client", "key"),
    [(c, k) for c in CLIENTS for k in _timeout_keys(CONFIG_OF[c])],
)
def test_b6_negative_timeouts_are_rejected_naming_the_key(client: str, key: str) -> None:
    """B6: every timeout/interval key of every client refuses a negative value
    (-1 means "never" only for connections_max_idle_ms, so -2 is used there)."""
    value = -2 if key == "connections_max_idle_ms" else -1
    extra = {"group_id": "g"} if client == "AsyncConsumer" else {}
    assert rejected_key(CLIENTS[client], **extra, **{key: value}) == key


@pytest.mark.parametrize("client", list(CLIENTS))
def test_b6_unknown_key_is_rejected_with_a_suggestion(client: str) -> None:
    """B6: an unknown (misspelt) key names itself and the close match."""
    with pytest.raises(ConfigError, match="did you mean 'request_timeout_ms'") as info:
        CLIENTS[client](bootstrap_servers=B, request_timeout=100)
    assert info.value.key == "request_timeout"


def test_b6_properties_maps_follow_the_same_rules() -> None:
    """B6: the Java/librdkafka spelling gets the same checks and names the property."""
    with pytest.raises(ConfigError) as info:
        ProducerConfig.from_properties(
            {"bootstrap.servers": B, "enable.idempotence": "true", "acks": "1"}
        )
    assert info.value.key == "acks"
    with pytest.raises(ConfigError) as info:
        ProducerConfig.from_properties({"bootstrap.servers": B, "request.timeout.ms": "-5"})
    assert info.value.key == "request_timeout_ms"
    with pytest.raises(ConfigError) as info:
        ConsumerConfig.from_properties({"bootstrap.servers": B, "sesion.timeout.ms": "1"})
    assert info.value.key == "sesion.timeout.ms"


def test_b6_explicit_keys_are_never_adjusted() -> None:
    """B6: contradictions are resolved silently only by changing keys the user left unset;
    everything given explicitly comes back exactly as given."""
    explicit: dict[str, Any] = dict(
        bootstrap_servers=B,
        acks=1,
        enable_idempotence=False,
        retries=0,
        max_in_flight_requests_per_connection=6,
        linger_ms=50,
        request_timeout_ms=1000,
        delivery_timeout_ms=1050,
        reconnect_backoff_ms=10,
        reconnect_backoff_max_ms=10,
    )
    producer = AsyncProducer(**explicit)
    for key, value in explicit.items():
        if key == "bootstrap_servers":
            continue
        assert getattr(producer.config, key) == value, key
    # Left unset, the dependent keys move (and only they do).
    derived = ProducerConfig(bootstrap_servers=B, acks=1, request_timeout_ms=200000)
    assert derived.enable_idempotence is False and not derived.is_set("enable_idempotence")
    assert derived.delivery_timeout_ms == 200005 and derived.acks == 1
    consumer = ConsumerConfig(
        bootstrap_servers=B, group_id="g", session_timeout_ms=10000, heartbeat_interval_ms=9999
    )
    assert (consumer.session_timeout_ms, consumer.heartbeat_interval_ms) == (10000, 9999)


def test_b6_sync_facades_check_at_construction() -> None:
    """B6: the blocking clients raise the same ConfigError before starting anything."""
    from kclient.sync import Admin, Consumer, Producer

    for make in (Producer, Consumer, Admin):
        with pytest.raises(ConfigError) as info:
            make(bootstrap_servers=B, retry_backoff_ms=-1)
        assert info.value.key == "retry_backoff_ms"
    with pytest.raises(ConfigError) as info:
        Producer(bootstrap_servers=B, enable_idempotence=True, retries=0)
    assert info.value.key == "retries"


@pytest.mark.anyio
async def test_b6_broker_invalid_topic_fails_the_send_quickly() -> None:
    """B6: INVALID_TOPIC_EXCEPTION from the broker (metadata or produce) fails the send
    well before max_block_ms / delivery_timeout_ms."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        cluster.create_topic("u")
        settings = dict(max_block_ms=60_000, delivery_timeout_ms=60_000)
        async with make_producer(cluster.bootstrap_servers, **settings) as producer:
            cluster.fail_next(ApiKey.METADATA, error=Err.INVALID_TOPIC_EXCEPTION, count=100)
            with anyio.fail_after(5), pytest.raises(InvalidTopicError):
                await producer.send("t", b"x")
            cluster.clear_faults()
            await producer.partitions_for("u")
            cluster.fail_next(ApiKey.PRODUCE, error=Err.INVALID_TOPIC_EXCEPTION, topic="u")
            future = await producer.send("u", b"y")
            with anyio.fail_after(5), pytest.raises(InvalidTopicError):
                await future
            assert (await producer.send_and_wait("u", b"z")).offset == 0  # still usable


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("topic", "error"),
    [
        (None, TypeError),
        (b"t", TypeError),
        ("", InvalidTopicError),
        ("bad topic!", InvalidTopicError),
        ("x" * 250, InvalidTopicError),
    ],
)
async def test_b6_bad_topic_raises_typed_errors(topic: object, error: type[Exception]) -> None:
    """B6: a None/non-str topic is a TypeError; an invalid name is InvalidTopicError."""
    async with MockCluster() as cluster:
        async with make_producer(cluster.bootstrap_servers) as producer:
            with pytest.raises(error):
                await producer.send(topic, b"v")  # type: ignore[arg-type]
