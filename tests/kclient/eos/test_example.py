"""docs/examples/eos_copy.py runs as a user would run it (a subprocess) against the
MockCluster, and copies its records exactly once."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import anyio
import pytest

from kclient.testing import MockCluster

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "eos_copy.py"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the script runs its own loop; the harness's backend does not matter


async def test_eos_copy_example_against_the_mock_cluster() -> None:
    topic = f"eos-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    async with MockCluster(brokers=1) as cluster:
        with anyio.fail_after(90):
            done = await anyio.run_process(
                [sys.executable, str(EXAMPLE), cluster.bootstrap_servers, topic],
                env=env,
                check=False,
            )
        assert cluster.errors == []
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert f"produced 100 records to {topic}" in out
    assert "copied 100 records in " in out
    assert f"read back 100 records from {topic}-upper: exactly once, in order" in out
