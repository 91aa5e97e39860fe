"""Every docs/examples/*.py script (embedded in the docs pages) runs here, as a user would run
it: a subprocess given the bootstrap address and a fresh topic, against the MockCluster and
against the session's Tansu broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import pytest

from kclient.testing import MockCluster

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
TIMEOUT = 90
# the kclient of this checkout, whether or not it is installed
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}


def check_output(name: str, returncode: int, stdout: str, stderr: str) -> None:
    assert returncode == 0, f"{name} failed ({returncode}):\n{stdout}\n{stderr}"
    assert "produced 10 records" in stdout, stdout
    assert "consumed 10 records" in stdout, stdout


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart_asyncio.py", "quickstart_trio.py", "quickstart_sync.py"} <= names


@pytest.mark.anyio
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
async def test_example_against_mock_cluster(example: Path) -> None:
    topic = f"docs-{uuid.uuid4().hex[:10]}"
    async with MockCluster(brokers=1) as cluster:
        with anyio.fail_after(TIMEOUT):
            done = await anyio.run_process(
                [sys.executable, str(example), cluster.bootstrap_servers, topic],
                check=False,
                env=ENV,
            )
        assert cluster.errors == []
    check_output(example.name, done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.mark.integration
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_against_tansu(example: Path, tansu_bootstrap: str) -> None:
    topic = f"docs-{uuid.uuid4().hex[:10]}"
    done = subprocess.run(
        [sys.executable, str(example), tansu_bootstrap, topic],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=ENV,
    )
    check_output(example.name, done.returncode, done.stdout, done.stderr)
