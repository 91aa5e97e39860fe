"""Typed config: defaults, per-key validation, cross-key rules, from_properties, secrets."""

from __future__ import annotations

import pytest

from kclient._secret import Secret
from kclient.config import AdminConfig, CommonConfig, ConsumerConfig, ProducerConfig
from kclient.errors import ConfigError
from kclient.net.backoff import Backoff, backoff_ms

B = "127.0.0.1:9092"


def key_of(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return exc.value.key


def test_java_defaults() -> None:
    p = ProducerConfig(bootstrap_servers=B)
    assert (p.acks, p.enable_idempotence, p.linger_ms, p.request_timeout_ms) == (-1, True, 5, 30000)
    assert p.delivery_timeout_ms == 120000 and p.max_in_flight_requests_per_connection == 5
    c = ConsumerConfig(bootstrap_servers=B, group_id="g")
    # session_timeout_ms is aiokafka's 10 s, not Java's 45 s (design-notes/consumer-defaults.md)
    assert (c.session_timeout_ms, c.heartbeat_interval_ms, c.auto_offset_reset) == (
        10000,
        3000,
        "latest",
    )
    assert AdminConfig(bootstrap_servers=B).connections_max_idle_ms == 300000
    assert p.bootstrap_addresses == (("127.0.0.1", 9092),)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"bootstrap_servers": B, "acks": 1, "enable_idempotence": True}, "acks"),
        (
            {
                "bootstrap_servers": B,
                "max_in_flight_requests_per_connection": 6,
                "enable_idempotence": True,
            },
            "max_in_flight_requests_per_connection",
        ),
        ({"bootstrap_servers": B, "retries": 0, "enable_idempotence": True}, "retries"),
        ({"bootstrap_servers": B, "delivery_timeout_ms": 1000}, "delivery_timeout_ms"),
        (
            {"bootstrap_servers": B, "transactional_id": "t", "enable_idempotence": False},
            "enable_idempotence",
        ),
        ({"bootstrap_servers": B, "acks": "2"}, "acks"),
        ({"bootstrap_servers": B, "linger_ms": -1}, "linger_ms"),
        ({"bootstrap_servers": B, "linger_ms": "5"}, "linger_ms"),
        ({"bootstrap_servers": B, "compression_type": "brotli"}, "compression_type"),
        ({"bootstrap_servers": B, "lingerms": 5}, "lingerms"),
        ({"bootstrap_servers": ""}, "bootstrap_servers"),
        ({"bootstrap_servers": "nohostport"}, "bootstrap_servers"),
        ({"bootstrap_servers": "h:70000"}, "bootstrap_servers"),
        (
            {"bootstrap_servers": B, "security_protocol": "SASL_SSL", "sasl_username": "u"},
            "sasl_password",
        ),
        (
            {
                "bootstrap_servers": B,
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
            },
            "sasl_oauthbearer_token_provider",
        ),
        (
            {"bootstrap_servers": B, "reconnect_backoff_ms": 500, "reconnect_backoff_max_ms": 100},
            "reconnect_backoff_max_ms",
        ),
    ],
)
def test_producer_rejections_name_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProducerConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.key == key
    assert str(info.value).startswith(key)


def test_unknown_key_suggests_close_match() -> None:
    with pytest.raises(ConfigError, match="did you mean 'linger_ms'"):
        ProducerConfig(bootstrap_servers=B, lingerms=5)  # type: ignore[call-arg]


def test_contradiction_adjusts_only_unset_keys() -> None:
    assert ProducerConfig(bootstrap_servers=B, acks=1).enable_idempotence is False
    assert ProducerConfig(bootstrap_servers=B, acks="0").acks == 0
    p = ProducerConfig(bootstrap_servers=B, request_timeout_ms=200000)
    assert p.delivery_timeout_ms == 200005  # raised to linger + request timeout
    assert (
        ProducerConfig(bootstrap_servers=B, reconnect_backoff_ms=5000).reconnect_backoff_max_ms
        == 5000
    )
    c = ConsumerConfig(bootstrap_servers=B, session_timeout_ms=2000)
    assert c.heartbeat_interval_ms == 666
    assert ConsumerConfig(bootstrap_servers=B).enable_auto_commit is False  # no group


def test_consumer_rules() -> None:
    with pytest.raises(ConfigError) as info:
        ConsumerConfig(
            bootstrap_servers=B, group_id="g", session_timeout_ms=3000, heartbeat_interval_ms=3000
        )
    assert info.value.key == "heartbeat_interval_ms"
    with pytest.raises(ConfigError) as info:
        ConsumerConfig(bootstrap_servers=B, enable_auto_commit=True)
    assert info.value.key == "enable_auto_commit"
    with pytest.raises(ConfigError) as info:
        ConsumerConfig(bootstrap_servers=B, group_instance_id="i")
    assert info.value.key == "group_instance_id"


def test_from_properties_maps_dotted_keys_and_types() -> None:
    c = ConsumerConfig.from_properties(
        {
            "bootstrap.servers": "a:1, b:2",
            "group.id": "g",
            "enable.auto.commit": "false",
            "session.timeout.ms": "10000",
            "partition.assignment.strategy": "range,roundrobin",
            "ssl.endpoint.identification.algorithm": "",
            "security.protocol": "SSL",
        }
    )
    assert c.bootstrap_servers == ("a:1", "b:2")
    assert c.enable_auto_commit is False and c.session_timeout_ms == 10000
    assert c.partition_assignment_strategy == ("range", "roundrobin")
    assert c.ssl_check_hostname is False
    p = ProducerConfig.from_properties({"metadata.broker.list": B, "queue.buffering.max.ms": "10"})
    assert p.linger_ms == 10
    with pytest.raises(ConfigError) as info:
        ProducerConfig.from_properties({"bootstrap.servers": B, "no.such.key": "1"})
    assert info.value.key == "no.such.key"
    with pytest.raises(ConfigError) as info:
        ProducerConfig.from_properties({"bootstrap.servers": B, "linger.ms": "soon"})
    assert info.value.key == "linger_ms"


def test_evolve_keeps_explicitness() -> None:
    p = ProducerConfig(bootstrap_servers=B)
    assert p.evolve(acks=1).enable_idempotence is False
    assert not p.evolve(acks=1).is_set("enable_idempotence")


def test_secret_never_shows() -> None:
    s = Secret("S3cr3t-XYZ")
    assert "S3cr3t" not in repr(s) + str(s) + f"{s}" + repr([s])
    assert s == Secret("S3cr3t-XYZ") and s != Secret("other")
    c = CommonConfig(bootstrap_servers=B, sasl_password="S3cr3t-XYZ")
    assert isinstance(c.sasl_password, Secret) and "S3cr3t" not in repr(c)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_config_is_frozen() -> None:
    import dataclasses

    p = ProducerConfig(bootstrap_servers=B)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.acks = 1  # type: ignore[misc]


def test_backoff_grows_with_jitter_to_cap() -> None:
    assert backoff_ms(0, 50, 1000, 0.5) == 50
    assert backoff_ms(3, 50, 1000, 0.5) == 400
    assert backoff_ms(10, 50, 1000, 0.99) == 1000
    assert backoff_ms(1, 50, 1000, 0.0) == pytest.approx(80)
    assert backoff_ms(1, 50, 1000, 1.0) == pytest.approx(120)
    assert backoff_ms(10_000, 50, 1000, 0.5) == 1000  # no overflow
    b = Backoff(50, 1000)
    assert b.record_failure(now_ms=0, rand=0.5) == 50 and b.remaining_ms(10) == 40
    b.record_success()
    assert b.remaining_ms(0) == 0 and b.failures == 0
