"""Real TLS and SASL connections from the command line to the mock cluster.

The mock speaks neither, so the tests put loopback gateways in front of it: the TLS
terminator of tests/kclient (certificates made by the ``pki`` fixture) and a SASL/PLAIN
gate (sasl_gateway.py); stacked, they make a SASL_SSL listener.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kclient.testing.mock import MockCluster
from tests.cli._helpers import assert_one_line_error, run_cli
from tests.cli.sasl_gateway import sasl_gateway
from tests.kclient.net.test_tls import pki  # noqa: F401  (fixture)
from tests.kclient.tls_terminator import tls_terminator

pytestmark = pytest.mark.anyio

SECRET = "Sup3r-s3cret-pw"
FAST = ("--timeout", "5")


async def test_tls_with_our_ca(pki: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    async with MockCluster() as cluster:
        cluster.create_topic("over-tls", partitions=2)
        async with tls_terminator(
            cluster.bootstrap_servers, pki / "server.pem", pki / "server.key"
        ) as port:
            b = ("-b", f"localhost:{port}", *FAST)
            listed = await run_cli(
                capsys, "topics", "list", "--ssl-cafile", str(pki / "ca.pem"), *b
            )
            assert listed.code == 0, listed.err
            assert "over-tls" in listed.out.split()
            refused = await run_cli(capsys, "topics", "list", "--security-protocol", "SSL", *b)
            line = assert_one_line_error(refused, "topics")
            assert "certificate" in line.lower()


async def test_tls_no_verify_connects_and_warns_once(
    pki: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("unverified")
        async with tls_terminator(
            cluster.bootstrap_servers, pki / "server.pem", pki / "server.key"
        ) as port:
            result = await run_cli(
                capsys, "topics", "list", "--ssl-no-verify", "-b", f"localhost:{port}", *FAST
            )
    assert result.code == 0, result.err
    assert "unverified" in result.out.split()
    # Each warning once, although every new connection builds a TLS context and logs them.
    warnings = result.err.splitlines()
    assert len(warnings) == len(set(warnings))
    assert all(line.startswith("kclient: warning: ") for line in warnings)
    assert sum("TLS certificate verification is disabled" in line for line in warnings) == 1


async def test_sasl_plain_password_from_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    async with MockCluster() as cluster:
        cluster.create_topic("behind-sasl")
        async with sasl_gateway(cluster.bootstrap_servers, "alice", SECRET) as gate:
            b = ("-b", f"127.0.0.1:{gate.port}", *FAST)
            ok = await run_cli(capsys, "topics", "describe", "behind-sasl",
                               "--sasl-username", "alice",
                               "--sasl-password-file", str(tmp_path / "pw"), *b)  # fmt: skip
            assert ok.code == 0, ok.err
            assert [row.split()[:2] for row in ok.out.splitlines()[1:]] == [["behind-sasl", "0"]]
            assert gate.accepted and set(gate.accepted) == {"alice"}
            # no credentials: the gate closes the connection; the command fails in one line
            anonymous = await run_cli(capsys, "topics", "list", *b, "--timeout", "1")
            assert_one_line_error(anonymous, "topics")


async def test_sasl_bad_password_hidden_even_with_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wr0ng-" + SECRET
    monkeypatch.setenv("KCLIENT_SASL_PASSWORD", wrong)
    async with MockCluster() as cluster:
        async with sasl_gateway(cluster.bootstrap_servers, "alice", SECRET) as gate:
            b = ("-b", f"127.0.0.1:{gate.port}", *FAST, "--sasl-username", "alice")
            plain = await run_cli(capsys, "groups", "list", *b)
            debug = await run_cli(capsys, "groups", "list", "--debug", *b)
    line = assert_one_line_error(plain, "groups")
    assert "Authentication failed" in line
    assert debug.code == 1 and "Traceback" in debug.err
    assert "kclient groups: error: " in debug.err.splitlines()[-1]
    for result in (plain, debug):
        assert wrong not in result.err + result.out
        assert SECRET not in result.err + result.out
    assert gate.rejected and not gate.accepted


async def test_sasl_ssl_through_both_gateways(
    pki: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "client.properties"
    config.write_text(
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="alice" password="{SECRET}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={pki / 'ca.pem'}\n"
    )
    async with MockCluster() as cluster:
        cluster.create_topic("both")
        async with (
            sasl_gateway(cluster.bootstrap_servers, "alice", SECRET) as gate,
            tls_terminator(
                f"127.0.0.1:{gate.port}", pki / "server.pem", pki / "server.key"
            ) as port,
        ):
            b = ("--config", str(config), "-b", f"localhost:{port}", *FAST)
            produced = await run_cli(capsys, "produce", "both", "--file", str(_lines(tmp_path)), *b)
            assert produced.code == 0, produced.err
            consumed = await run_cli(capsys, "consume", "both", "--from-beginning", "-n", "2", *b)
    assert consumed.code == 0, consumed.err
    assert consumed.out.split() == ["one", "two"]
    assert set(gate.accepted) == {"alice"}


def _lines(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("one\ntwo\n")
    return path
