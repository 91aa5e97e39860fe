"""Every docs/examples/*.py script (embedded in the docs pages) runs here, as a user would run
it: a subprocess, given the bootstrap address and a fresh topic where it takes them.

Each script is listed in ``SPECS`` with where it runs and what its output must contain, so a
new example cannot be added without a test. Broker examples run against the MockCluster
and/or the session's Tansu broker (Tansu lacks CreatePartitions and OffsetDelete; the mock
lacks DescribeConfigs/IncrementalAlterConfigs, TLS and SASL). The TLS example runs against the
MockCluster behind a loopback TLS terminator (tests/docs/_tls.py), with and without a client
certificate that the terminator demands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from kclient.testing import MockCluster
from tests.docs._tls import make_client_cert, tls_terminator
from tests.kclient.net.test_tls import pki  # noqa: F401  (fixture: CA + "localhost" server cert)

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples"
TIMEOUT = 90
# the kclient of this checkout, whether or not it is installed
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
ROUND_TRIP = ("produced 10 records", "consumed 10 records")


@dataclass(frozen=True)
class Spec:
    """Where an example runs and what its stdout must contain there."""

    expect: tuple[str, ...]
    mock: bool = False  # run with (MockCluster bootstrap, topic)
    tansu: bool = False  # run with (Tansu bootstrap, topic)
    standalone: bool = False  # run with no arguments (it needs no broker or starts its own)
    expect_mock: tuple[str, ...] = ()  # more lines, against the mock only
    expect_tansu: tuple[str, ...] = ()  # more lines, against Tansu only


SPECS: dict[str, Spec] = {
    "quickstart_asyncio.py": Spec(ROUND_TRIP, mock=True, tansu=True),
    "quickstart_trio.py": Spec(ROUND_TRIP, mock=True, tansu=True),
    "quickstart_sync.py": Spec(ROUND_TRIP, mock=True, tansu=True),
    "admin_topics.py": Spec(
        ("created", "listed: True", "deleted"),
        mock=True,
        tansu=True,
        expect_mock=("partitions: 4",),
        expect_tansu=("cannot add partitions here", "partitions: 3"),
    ),
    "admin_groups.py": Spec(
        (
            "group listed: True",
            "state Empty, 0 member(s)",
            "committed 4, end 10, lag 6",
            "end offset 10",
            "after reset: lag 10",
            "group deleted: True",
        ),
        mock=True,
        tansu=True,
    ),
    "admin_configs.py": Spec(("retention.ms = 100000", "retention.ms now 200000"), tansu=True),
    "errors_handling.py": Spec(
        (
            "ConfigError on key 'acks'",
            "delivered after 2 retriable errors",
            "rejected, not retried: [Error 87] INVALID_RECORD",
            "DeliveryTimeoutError, delivery_state=POSSIBLY_PERSISTED",
            "OffsetOutOfRangeError: [Error 1] OFFSET_OUT_OF_RANGE",
            "in the log: [b'retried', b'warm-up', b'slow']",
        ),
        standalone=True,
    ),
    "security_sasl.py": Spec(
        (
            "plain: PLAIN as alice, password Secret('***')",
            "scram: SCRAM-SHA-512 as bob, password Secret('***')",
            "oauth: OAUTHBEARER with token_provider",
            "oauth: OAUTHBEARER with async_token_provider",
            "ConfigError: sasl_password: required",
        ),
        standalone=True,
    ),
    "migration_producer.py": Spec(
        ("aiokafka wrote offset 0", "kclient wrote offset 1"), mock=True, tansu=True
    ),
    # mock only: kafka-python's group join on Tansu takes half its 45 s session timeout
    "migration_consumer.py": Spec(
        ("kafka-python handled 3 records", "kclient handled 3 records"), mock=True
    ),
    "security_tls.py": Spec(ROUND_TRIP),  # its own tests below
    # The transaction examples show aborted records hidden from read_committed readers,
    # which Tansu 0.6 does not do (tansu-quirks.md): mock only.
    "txn_basic.py": Spec(
        (
            "committed 3 records",
            "aborted 2 records",
            "read_committed sees [b'order-1', b'order-2', b'order-3']",
            "read_uncommitted sees [b'order-1', b'order-2', b'order-3', b'draft-1', b'draft-2']",
            "copied 3 records; the group's committed offset is 3",
        ),
        mock=True,
    ),
    "txn_sync.py": Spec(
        (
            "committed 3 records",
            "aborted: processing failed mid-transaction",
            "read_committed sees [b'kept 0', b'kept 1', b'kept 2', b'kept 3']",
        ),
        mock=True,
    ),
    "eos_copy.py": Spec(
        (
            "produced 100 records to ",
            "copied 100 records in ",
            "-upper: exactly once, in order",
        ),
        mock=True,
    ),
}


def check_output(
    name: str, done: subprocess.CompletedProcess[str], expect: tuple[str, ...]
) -> None:
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    for line in expect:
        assert line in done.stdout, f"{name}: {line!r} missing from:\n{done.stdout}"
    assert "S3cret" not in done.stdout + done.stderr  # no example ever prints a credential


async def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    with anyio.fail_after(TIMEOUT):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLES / name), *args], check=False, env=ENV
        )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def names(where: str) -> list[str]:
    return [n for n, spec in SPECS.items() if getattr(spec, where)]


def test_every_example_has_a_spec() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(SPECS)


def test_every_example_is_on_a_page() -> None:
    pages = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for name in SPECS:
        assert f'--8<-- "docs/examples/{name}"' in pages, f"{name} is on no page"


@pytest.mark.anyio
@pytest.mark.parametrize("name", names("mock"))
async def test_example_against_mock_cluster(name: str) -> None:
    topic = f"docs-{uuid.uuid4().hex[:10]}"
    async with MockCluster(brokers=1) as cluster:
        done = await run_example(name, cluster.bootstrap_servers, topic)
        assert cluster.errors == []
    check_output(name, done, SPECS[name].expect + SPECS[name].expect_mock)


@pytest.mark.anyio
@pytest.mark.parametrize("name", names("standalone"))
async def test_standalone_example(name: str) -> None:
    done = await run_example(name)
    check_output(name, done, SPECS[name].expect)


@pytest.mark.anyio
async def test_errors_page_shows_the_real_output() -> None:
    """docs/errors.md quotes the output of errors_handling.py: every quoted line is real."""
    page = (ROOT / "docs" / "errors.md").read_text()
    quoted = page.split("Its output (checked by the test suite):", 1)[1]
    lines = quoted.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(lines) >= 6
    done = await run_example("errors_handling.py")
    assert done.stdout.splitlines() == lines


@pytest.mark.integration
@pytest.mark.parametrize("name", names("tansu"))
def test_example_against_tansu(name: str, tansu_bootstrap: str) -> None:
    topic = f"docs-{uuid.uuid4().hex[:10]}"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), tansu_bootstrap, topic],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=ENV,
    )
    check_output(name, done, SPECS[name].expect + SPECS[name].expect_tansu)


@pytest.mark.anyio
@pytest.mark.parametrize("mutual", [False, True], ids=["server-auth", "mutual-tls"])
async def test_tls_example_against_mock_cluster(pki: Path, mutual: bool) -> None:  # noqa: F811
    """security_tls.py over real TLS: the CA made in the test, host name "localhost" checked;
    with ``mutual`` the terminator refuses clients without a certificate from that CA."""
    client = make_client_cert(pki) if mutual else None
    args = [str(p) for p in client] if client else []
    topic = f"docs-{uuid.uuid4().hex[:10]}"
    async with MockCluster(brokers=1) as cluster:
        async with tls_terminator(
            cluster.bootstrap_servers, pki, require_client_cert=mutual
        ) as terminator:
            done = await run_example(
                "security_tls.py", f"localhost:{terminator.port}", topic, str(pki / "ca.pem"), *args
            )
        assert cluster.errors == []
    check_output("security_tls.py", done, SPECS["security_tls.py"].expect)
    assert terminator.connections > 0
    # every connection presented our client certificate, which the terminator verified
    assert terminator.client_certs == (terminator.connections if mutual else 0)
