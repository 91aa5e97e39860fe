"""KIP-219: a throttled response holds back the next request to that broker, and the
wait yields to the request deadline and to close()."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from kclient.errors import KafkaConnectionError, KafkaTimeoutError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.throttle import KIP219_FIRST_VERSION, client_throttle_ms
from protocol.messages import REGISTRY
from protocol.messages.describe_cluster import DescribeClusterResponse
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from protocol.messages.sasl_authenticate import SaslAuthenticateResponse

from ..net.fake_broker import FakeBroker, running

SPECS = Path(__file__).resolve().parents[4] / "shared" / "kafka-message-specs"


def test_only_post_kip219_versions_are_throttled_by_the_client() -> None:
    assert client_throttle_ms(MetadataResponse(throttle_time_ms=500), 5) == 0
    assert client_throttle_ms(MetadataResponse(throttle_time_ms=500), 6) == 500
    assert client_throttle_ms(DescribeClusterResponse(throttle_time_ms=70), 0) == 70
    assert client_throttle_ms(SaslAuthenticateResponse(), 2) == 0
    assert client_throttle_ms(MetadataResponse(throttle_time_ms=-5), 12) == 0


@pytest.mark.skipif(not SPECS.is_dir(), reason="message specs not checked out")
def test_table_matches_the_spec_comments() -> None:
    pattern = re.compile(r"Starting in version (\d+), on quota violation,?\s*(?://\s*)?brokers")
    for key, (_, response_cls) in REGISTRY.items():
        path = SPECS / f"{response_cls.API_NAME}Response.json"
        if not path.exists():
            continue
        found = pattern.search(re.sub(r"\s*//\s*", " ", path.read_text()))
        if found:
            assert KIP219_FIRST_VERSION.get(key) == int(found.group(1)), response_cls.API_NAME


def throttling_broker(throttle_ms: int, times: list[float]) -> FakeBroker:
    def handler(version: int, request: Any) -> MetadataResponse:
        times.append(time.monotonic())
        return MetadataResponse(throttle_time_ms=throttle_ms, cluster_id="c")

    return FakeBroker({3: handler})


@pytest.mark.anyio
async def test_next_request_waits_for_the_throttle_time() -> None:
    times: list[float] = []
    async with running(throttling_broker(300, times)) as broker:
        async with connect(broker.address, ConnectionSettings(request_timeout_ms=3000)) as conn:
            await conn.request(MetadataRequest(topics=[]))
            await conn.request(MetadataRequest(topics=[]))
    assert times[1] - times[0] >= 0.28


@pytest.mark.anyio
async def test_throttle_wait_is_cut_by_the_request_deadline() -> None:
    times: list[float] = []
    async with running(throttling_broker(10_000, times)) as broker:
        async with connect(broker.address, ConnectionSettings(request_timeout_ms=3000)) as conn:
            await conn.request(MetadataRequest(topics=[]))
            started = time.monotonic()
            with pytest.raises(KafkaTimeoutError, match="throttled"):
                await conn.request(MetadataRequest(topics=[]), timeout_ms=200)
            # cut by the 200 ms deadline, not the 10 s throttle (slack for a loaded CI box)
            assert time.monotonic() - started < 5
            assert not conn.closed  # nothing was written: the connection stays usable
    assert len(times) == 1


@pytest.mark.anyio
async def test_throttle_wait_is_cut_by_close() -> None:
    times: list[float] = []
    errors: list[BaseException] = []
    async with running(throttling_broker(10_000, times)) as broker:
        async with connect(broker.address, ConnectionSettings(request_timeout_ms=30000)) as conn:
            await conn.request(MetadataRequest(topics=[]))

            async def waiting() -> None:
                try:
                    await conn.request(MetadataRequest(topics=[]))
                except KafkaConnectionError as exc:
                    errors.append(exc)

            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting)
                await anyio.sleep(0.05)
                await conn.aclose()
    assert time.monotonic() - started < 5  # cut by close(), not the 10 s throttle
    assert len(errors) == 1 and getattr(errors[0], "request_sent", None) is False
