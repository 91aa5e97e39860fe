"""The embedded Tansu broker: launcher behaviour and a peer-client smoke test.

Integration tests use the session ``tansu`` fixture (tests/conftest.py). The unit tests at
the bottom exercise the launcher's error paths with fake binaries and need no broker.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kclient.testing.tansu import (
    ENV_BINARY,
    TansuBroker,
    TansuNotFoundError,
    TansuStartError,
    TansuTLSUnsupportedError,
    find_tansu_binary,
)

REPO = Path(__file__).resolve().parents[1]
QUIRKS = REPO / "docs" / "design-notes" / "tansu-quirks.md"

# ApiVersions v0, correlation id 0x2a, client id "kc", written out byte by byte so this test
# depends neither on the codec nor on the launcher's own probe.
API_VERSIONS_V0 = bytes.fromhex(
    "0000000c"  # size = 12
    "0012"  # api_key 18 (ApiVersions)
    "0000"  # api_version 0
    "0000002a"  # correlation id 42
    "0002" + b"kc".hex()  # client id
)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"connection closed after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


def _api_versions_v0(host: str, port: int) -> dict[int, tuple[int, int]]:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(API_VERSIONS_V0)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        frame = _recv_exact(sock, size)
    correlation_id, error_code, count = struct.unpack_from(">ihi", frame)
    assert correlation_id == 42
    assert error_code == 0
    assert len(frame) == 10 + 6 * count
    rows = [struct.unpack_from(">hhh", frame, 10 + 6 * i) for i in range(count)]
    return {key: (lo, hi) for key, lo, hi in rows}


def _documented_api_versions() -> dict[int, tuple[int, int]]:
    text = QUIRKS.read_text()
    block = text.split("<!-- api-versions:begin -->")[1].split("<!-- api-versions:end -->")[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|[^|]*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", block, re.M)
    return {int(k): (int(lo), int(hi)) for k, lo, hi in rows}


# -- integration ---------------------------------------------------------------------


@pytest.mark.integration
def test_broker_answers_api_versions(tansu: TansuBroker) -> None:
    versions = _api_versions_v0(tansu.host, tansu.port)
    assert versions[18][0] == 0  # ApiVersions v0 must stay supported
    for key in (0, 1, 3, 19):  # Produce, Fetch, Metadata, CreateTopics
        assert key in versions
    assert versions == tansu.api_versions


@pytest.mark.integration
def test_api_version_table_in_docs_is_current(tansu: TansuBroker) -> None:
    advertised = tansu.api_versions
    lines = [f"{k:>3}: {lo}-{hi}" for k, (lo, hi) in sorted(advertised.items())]
    print("Tansu ApiVersions ranges:\n" + "\n".join(lines))
    assert _documented_api_versions() == advertised, (
        f"{QUIRKS.relative_to(REPO)} is out of date with the Tansu binary; "
        "regenerate its table with `python -m kclient demo --versions-table`"
    )


@pytest.mark.integration
def test_bootstrap_and_advertised_address_are_loopback(
    tansu: TansuBroker, tansu_bootstrap: str
) -> None:
    host, _, port = tansu_bootstrap.rpartition(":")
    assert ipaddress.ip_address(host).is_loopback
    assert int(port) == tansu.port

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": tansu_bootstrap})
    metadata = admin.list_topics(timeout=10)
    advertised = [(b.host, b.port) for b in metadata.brokers.values()]
    assert advertised, "metadata lists no brokers"
    for b_host, b_port in advertised:
        assert ipaddress.ip_address(b_host).is_loopback
        assert b_port == tansu.port


@pytest.mark.integration
def test_peer_client_round_trip(tansu_bootstrap: str) -> None:
    """confluent-kafka creates a topic, produces 10 records and reads them back."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": tansu_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=10
    )

    producer = Producer({"bootstrap.servers": tansu_bootstrap, "linger.ms": 0})
    failures: list[object] = []
    for i in range(10):
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"v{i}".encode(),
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
    assert producer.flush(10) == 0
    assert failures == []

    consumer = Consumer(
        {
            "bootstrap.servers": tansu_bootstrap,
            "group.id": f"g-{topic}",
            "enable.auto.commit": False,
        }
    )
    try:
        # assign() rather than subscribe(): a group join takes ~20 s on Tansu (quirks doc)
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append((msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    assert got == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(10)]


@pytest.mark.integration
def test_separate_broker_stops_cleanly(tansu: TansuBroker) -> None:
    broker = TansuBroker()
    with broker:
        assert broker.port != tansu.port
        pid = broker.pid
        log = broker.log_path
        assert pid is not None and log is not None and log.exists()
        assert broker.start() is broker  # idempotent
    assert not broker.running
    assert not _pid_alive(pid)
    assert not log.exists()
    broker.stop()  # idempotent
    with pytest.raises(Exception, match="not running"):
        _ = broker.bootstrap_servers


@pytest.mark.integration
@pytest.mark.xfail(
    raises=TansuTLSUnsupportedError,
    strict=True,
    reason="Tansu 0.6.0 rejects --cert with --key (see docs/design-notes/tansu-quirks.md)",
)
def test_tls_listener(tmp_path: Path, tansu: TansuBroker) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not found; needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    broker = TansuBroker(cert=cert, key=key, start_timeout=10)
    try:
        broker.start()
        assert broker.tls and broker.api_versions
    finally:
        broker.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- unit: launcher error paths (no broker needed) -----------------------------------------


def _fake_binary(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-tansu"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_env_override_must_be_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BINARY, str(tmp_path / "missing"))
    with pytest.raises(TansuNotFoundError, match=ENV_BINARY):
        find_tansu_binary()


def test_env_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_binary(tmp_path, "exit 0")
    monkeypatch.setenv(ENV_BINARY, str(fake))
    assert find_tansu_binary() == str(fake)


def test_early_exit_reports_log_tail(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path, 'echo "boom: cannot bind $3"; exit 3')
    broker = TansuBroker(binary=fake, start_timeout=5)
    with pytest.raises(TansuStartError, match="exited with code 3") as info:
        broker.start()
    assert "boom: cannot bind tcp://127.0.0.1:" in info.value.log_tail
    broker.stop()
    assert broker.log_path is None


def test_unresponsive_broker_is_killed(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path, "echo silent; exec sleep 60")
    broker = TansuBroker(binary=fake, start_timeout=0.5)
    with pytest.raises(TansuStartError, match="did not answer ApiVersions") as info:
        broker.start()
    assert "silent" in info.value.log_tail
    assert not broker.running
    broker.stop()
