"""ChaosProxy in front of real Kafka listeners: the MockCluster (always) and Tansu (integration)."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from kclient.testing.chaos import ChaosProxy, CutKind
from kclient.testing.mock import MockCluster
from protocol.framing import KafkaConnectionState
from protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse

from .mock.peers import consume_all, produce_all

pytestmark = pytest.mark.anyio


async def test_idempotent_producer_through_request_cuts_is_exactly_once(
    anyio_backend: str,
) -> None:
    """P1 in miniature: cuts alternate mid-request / mid-response; the log is exact."""
    if anyio_backend != "asyncio":
        pytest.skip("peer-client test; the proxy itself is covered on both backends")
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with ChaosProxy(cluster.listen_address(1), cut_every_requests=4, max_cuts=6) as proxy:
            cluster.advertise(1, proxy.address)
            values = [b"r%03d" % i for i in range(60)]
            reports = await anyio.to_thread.run_sync(
                partial(
                    produce_all,
                    proxy.address,
                    "t",
                    values,
                    partition=0,
                    **{"enable.idempotence": True, "linger.ms": 0, "batch.num.messages": 3},
                )
            )
            assert [r[2] for r in reports] == [None] * 60
            assert proxy.stats.cuts >= 2
            assert {CutKind.MID_REQUEST, CutKind.MID_RESPONSE} <= set(proxy.stats.cut_kinds)
            got = await anyio.to_thread.run_sync(partial(consume_all, proxy.address, "t", 60))
        assert got == values  # no loss, no duplicate, in order
        assert cluster.errors == []


_SMALL_METADATA = MetadataRequest(
    topics=[MetadataRequestTopic(name="chaos-absent")], allow_auto_topic_creation=False
)


async def _exchange(address: str, requests: int) -> list[object]:
    host, port = address.rsplit(":", 1)
    state = KafkaConnectionState("chaos-test")
    out: list[object] = []
    async with await anyio.connect_tcp(host, int(port)) as stream:
        for i in range(requests):
            # One named (absent) topic keeps the reply small however many topics the
            # session's Tansu holds, so byte-at-a-time trickling stays fast. Not
            # topics=[]: Tansu answers that with every topic (tansu-quirks.md).
            request = ApiVersionsRequest() if i == 0 else _SMALL_METADATA
            _, frame = state.send_request(request, 3 if i == 0 else 9)
            try:
                await stream.send(frame)
                with anyio.fail_after(10):
                    while (received := state.next_response()) is None:
                        state.receive_data(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return out
            out.append(received.response)
    return out


async def test_trickled_responses_from_tansu_decode_identically(tansu_bootstrap: str) -> None:
    async with ChaosProxy(tansu_bootstrap, trickle_responses=True, trickle_max_pause=0.0005) as p:
        responses = await _exchange(p.address, 3)
    assert isinstance(responses[0], ApiVersionsResponse) and responses[0].error_code == 0
    assert all(isinstance(r, MetadataResponse) for r in responses[1:])
    assert len(responses) == 3


async def test_request_cuts_in_front_of_tansu(tansu_bootstrap: str) -> None:
    async with ChaosProxy(tansu_bootstrap, cut_every_requests=2) as proxy:
        first = await _exchange(proxy.address, 3)  # cut inside request 2: one answer
        second = await _exchange(proxy.address, 3)  # cut inside response 2: one answer
        third = await _exchange(proxy.address, 1)
    assert len(first) == len(second) == 1 and len(third) == 1
    assert proxy.stats.cut_kinds == [CutKind.MID_REQUEST, CutKind.MID_RESPONSE]
