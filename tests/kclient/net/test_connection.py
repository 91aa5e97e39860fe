"""BrokerConnection against a local fake broker: handshake, pipelining, failures."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from kclient.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    UnsupportedVersionForApiError,
)
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.transport import BrokerAddress
from kclient.net.versions import our_range
from protocol.messages.api_versions import ApiVersion, ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.metadata import MetadataRequest, MetadataResponse

from .fake_broker import CLOSE, FakeBroker, api_versions_ok, response_frame, running

pytestmark = pytest.mark.anyio

FAST = ConnectionSettings(request_timeout_ms=500, connect_timeout_ms=500)


def metadata_reply(version: int, request: Any) -> MetadataResponse:
    return MetadataResponse(cluster_id="fake", controller_id=1)


async def test_handshake_negotiates_min_of_both_ranges() -> None:
    broker = FakeBroker({18: lambda v, r: api_versions_ok(v, r, caps={3: 7}), 3: metadata_reply})
    async with running(broker), connect(broker.address, FAST) as conn:
        assert conn.versions is not None
        assert conn.versions.version_for(MetadataRequest) == 7
        response = await conn.request(MetadataRequest(topics=[]))
        assert isinstance(response, MetadataResponse)
        assert response.cluster_id == "fake"
    api_key, version, request = broker.requests[0]
    assert isinstance(request, ApiVersionsRequest)
    assert (api_key, version) == (18, our_range(18)[1])
    assert request.client_software_name == "kclient"
    assert broker.requests[1][:2] == (3, 7)


async def test_api_versions_falls_back_on_unsupported_version() -> None:
    def api_versions(version: int, request: Any) -> Any:
        if version > 2:
            # a v0-layout error reply advertising ApiVersions v0-2
            body = ApiVersionsResponse(
                error_code=35, api_keys=[ApiVersion(api_key=18, min_version=0, max_version=2)]
            )
            raw = bytearray(response_frame(0, body, 0))
            return bytes(raw)
        return api_versions_ok(version, request)

    broker = FakeBroker({18: api_versions, 3: metadata_reply})
    async with running(broker), connect(broker.address, FAST) as conn:
        await conn.request(MetadataRequest(topics=[]))
    assert [v for k, v, _ in broker.requests if k == 18] == [our_range(18)[1], 2]


async def test_missing_api_names_api_and_versions() -> None:
    broker = FakeBroker({18: lambda v, r: api_versions_ok(v, r, drop=(3,))})
    async with running(broker), connect(broker.address, FAST) as conn:
        with pytest.raises(UnsupportedVersionForApiError) as info:
            await conn.request(MetadataRequest(topics=[]))
    assert "Metadata" in str(info.value) and "does not support" in str(info.value)


async def test_pipelined_responses_reach_their_callers() -> None:
    order: list[int] = []

    async def slow_metadata(version: int, request: Any) -> MetadataResponse:
        order.append(len(order))
        return MetadataResponse(cluster_id=f"c{len(order)}")

    broker = FakeBroker({3: slow_metadata})
    results: dict[int, str] = {}
    async with running(broker), connect(broker.address, FAST) as conn:

        async def one(i: int) -> None:
            response = await conn.request(MetadataRequest(topics=[]))
            assert isinstance(response, MetadataResponse)
            results[i] = str(response.cluster_id)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    assert sorted(results.values()) == sorted(f"c{i}" for i in range(1, 21))


async def test_request_timeout_closes_connection_and_fails_in_flight() -> None:
    broker = FakeBroker({3: lambda v, r: None})  # blackhole after the handshake
    async with running(broker), connect(broker.address, FAST) as conn:
        with pytest.raises(KafkaTimeoutError, match="no response to Metadata"):
            await conn.request(MetadataRequest(topics=[]), timeout_ms=100)
        assert conn.closed
        with pytest.raises(KafkaConnectionError) as info:
            await conn.request(MetadataRequest(topics=[]))
        assert info.value.request_sent is False


async def test_unknown_correlation_id_closes_and_fails_in_flight() -> None:
    def wrong_id(version: int, request: Any) -> bytes:
        return response_frame(12345, MetadataResponse(), version)

    broker = FakeBroker({3: wrong_id})
    async with running(broker), connect(broker.address, FAST) as conn:
        with pytest.raises(KafkaConnectionError) as info:
            await conn.request(MetadataRequest(topics=[]))
        assert info.value.retriable and info.value.request_sent is True
        assert "out of sync" in str(info.value)
        assert conn.closed


async def test_cancelled_caller_does_not_desync_stream() -> None:
    gate = anyio.Event()

    async def first_slow(version: int, request: Any) -> MetadataResponse:
        if request.topics is None:
            await gate.wait()
            return MetadataResponse(cluster_id="slow")
        return MetadataResponse(cluster_id="fast")

    broker = FakeBroker({3: first_slow})
    async with running(broker), connect(broker.address, FAST) as conn:
        with anyio.move_on_after(0.05):
            await conn.request(MetadataRequest(topics=None))
        gate.set()
        response = await conn.request(MetadataRequest(topics=[]))
        assert isinstance(response, MetadataResponse) and response.cluster_id == "fast"
        assert not conn.closed


async def test_broker_close_fails_in_flight_with_retriable_error() -> None:
    broker = FakeBroker({3: lambda v, r: CLOSE})
    async with running(broker), connect(broker.address, FAST) as conn:
        with pytest.raises(KafkaConnectionError) as info:
            await conn.request(MetadataRequest(topics=[]))
        assert info.value.retriable


async def test_connect_refused_names_address() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(KafkaConnectionError) as info:
        async with connect(BrokerAddress("127.0.0.1", port, origin="bootstrap"), FAST):
            pass
    assert f"127.0.0.1:{port} (from bootstrap)" in str(info.value)
    assert info.value.request_sent is False


async def test_blackholed_handshake_hits_connect_timeout(caplog: pytest.LogCaptureFixture) -> None:
    broker = FakeBroker({18: lambda v, r: None})
    caplog.set_level(logging.DEBUG)
    async with running(broker):
        with pytest.raises(KafkaTimeoutError, match="handshake did not finish"):
            # 500 ms: the TCP connect must finish first even when a loaded CI box wakes
            # the loop late (the message names the phase that timed out)
            async with connect(broker.address, ConnectionSettings(connect_timeout_ms=500)):
                pass


async def test_request_before_handshake_is_illegal() -> None:
    from anyio.streams.stapled import StapledObjectStream

    from kclient.net.connection import BrokerConnection

    send, receive = anyio.create_memory_object_stream[bytes](1)
    stream: Any = StapledObjectStream(send, receive)
    conn = BrokerConnection(stream, BrokerAddress("h", 1), FAST)
    with pytest.raises(IllegalStateError):
        await conn.request(MetadataRequest(topics=[]))
    await conn.aclose()
