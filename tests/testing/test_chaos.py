"""ChaosProxy against a fake framed echo upstream (no Kafka codec needed)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from hypothesis import given
from hypothesis import strategies as st

from kclient.testing.chaos import ChaosProxy, CutKind, FrameHead, FrameScanner

pytestmark = pytest.mark.anyio


def request_frame(correlation_id: int, payload: bytes = b"x" * 20) -> bytes:
    body = struct.pack(">hhi", 3, 9, correlation_id) + payload
    return struct.pack(">i", len(body)) + body


class EchoUpstream:
    """Answers each request frame with a response frame: correlation id + payload."""

    def __init__(self) -> None:
        self.received: list[int] = []  # correlation ids of complete requests
        self.port = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        buf = bytearray()
        async with stream:
            while True:
                try:
                    buf += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                while len(buf) >= 4:
                    (size,) = struct.unpack(">i", buf[:4])
                    if len(buf) < 4 + size:
                        break
                    frame, buf = bytes(buf[4 : 4 + size]), buf[4 + size :]
                    (corr,) = struct.unpack(">i", frame[4:8])
                    self.received.append(corr)
                    body = struct.pack(">i", corr) + frame[8:]
                    try:
                        await stream.send(struct.pack(">i", len(body)) + body)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return


@asynccontextmanager
async def echo_upstream() -> AsyncIterator[EchoUpstream]:
    upstream = EchoUpstream()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    upstream.port = int(listener.extra(SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, upstream.handle)
        yield upstream
        tg.cancel_scope.cancel()


async def exchange(address: str, count: int, first_corr: int = 0) -> list[bytes]:
    """Send ``count`` requests one at a time; return the responses received before EOF."""
    host, port = address.rsplit(":", 1)
    responses: list[bytes] = []
    buf = bytearray()
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(host, int(port)) as stream:
            for i in range(count):
                try:
                    await stream.send(request_frame(first_corr + i))
                    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
                        buf += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return responses
                size = struct.unpack(">i", buf[:4])[0]
                responses.append(bytes(buf[: 4 + size]))
                del buf[: 4 + size]
    return responses


def corr_ids(frames: list[bytes]) -> list[int]:
    return [struct.unpack(">i", f[4:8])[0] for f in frames]


async def test_transparent_when_no_fault() -> None:
    async with echo_upstream() as up, ChaosProxy(f"127.0.0.1:{up.port}") as proxy:
        frames = await exchange(proxy.address, 5)
        assert corr_ids(frames) == [0, 1, 2, 3, 4]
        assert proxy.stats.requests == 5
        assert proxy.stats.cuts == 0


async def test_cut_every_requests_alternates_mid_request_and_mid_response() -> None:
    async with (
        echo_upstream() as up,
        ChaosProxy(f"127.0.0.1:{up.port}", cut_every_requests=3) as proxy,
    ):
        # First cut: mid-request. The broker never sees request 2.
        frames = await exchange(proxy.address, 3)
        assert corr_ids(frames) == [0, 1]
        await wait_until(lambda: len(up.received) == 2)
        assert up.received == [0, 1]
        # Second cut: mid-response. The broker applied request 12, the client lost the answer.
        frames = await exchange(proxy.address, 3, first_corr=10)
        assert corr_ids(frames) == [10, 11]
        await wait_until(lambda: len(up.received) == 5)
        assert up.received[2:] == [10, 11, 12]
        assert proxy.stats.cut_kinds == [CutKind.MID_REQUEST, CutKind.MID_RESPONSE]


async def test_cut_every_bytes() -> None:
    frame_len = len(request_frame(0))
    async with (
        echo_upstream() as up,
        ChaosProxy(f"127.0.0.1:{up.port}", cut_every_bytes=frame_len * 3 + 5) as proxy,
    ):
        frames = await exchange(proxy.address, 4)
        # requests (4 frames) pass first only if sent before responses; either way the
        # connection dies before all 4 responses arrive.
        assert len(frames) < 4
        assert proxy.stats.cut_kinds == [CutKind.BYTES]


async def test_max_cuts_bounds_the_faults() -> None:
    async with (
        echo_upstream() as up,
        ChaosProxy(f"127.0.0.1:{up.port}", cut_every_requests=1, max_cuts=2) as proxy,
    ):
        assert len(await exchange(proxy.address, 2)) == 0  # mid-request cut
        assert len(await exchange(proxy.address, 2)) == 0  # mid-response cut
        assert corr_ids(await exchange(proxy.address, 3)) == [0, 1, 2]  # budget spent
        assert proxy.stats.cuts == 2


async def test_active_for_bounds_the_faults_in_time() -> None:
    async with (
        echo_upstream() as up,
        ChaosProxy(f"127.0.0.1:{up.port}", cut_every_requests=1, active_for=0.0) as proxy,
    ):
        assert corr_ids(await exchange(proxy.address, 3)) == [0, 1, 2]
        assert proxy.stats.cuts == 0


async def test_trickled_responses_are_byte_identical() -> None:
    async with echo_upstream() as up:
        async with ChaosProxy(f"127.0.0.1:{up.port}") as plain:
            expected = await exchange(plain.address, 3)
        async with ChaosProxy(
            f"127.0.0.1:{up.port}", trickle_responses=True, trickle_max_pause=0.001, seed=7
        ) as proxy:
            assert await exchange(proxy.address, 3) == expected


async def test_latency_still_delivers() -> None:
    async with echo_upstream() as up, ChaosProxy(f"127.0.0.1:{up.port}", latency=0.01) as proxy:
        assert corr_ids(await exchange(proxy.address, 2)) == [0, 1]


async def test_blackhole_swallows_then_heals() -> None:
    async with echo_upstream() as up, ChaosProxy(f"127.0.0.1:{up.port}", blackhole=True) as proxy:
        host, port = proxy.address.rsplit(":", 1)
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(request_frame(1))
            with anyio.move_on_after(0.2) as scope:
                await stream.receive()
            assert scope.cancelled_caught
        assert up.received == []
        proxy.set_blackhole(False)
        assert corr_ids(await exchange(proxy.address, 1)) == [0]


async def test_cut_all_closes_live_connections() -> None:
    async with echo_upstream() as up, ChaosProxy(f"127.0.0.1:{up.port}") as proxy:
        host, port = proxy.address.rsplit(":", 1)
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(request_frame(1))
            await stream.receive()
            proxy.cut_all()
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stream.receive()


async def test_upstream_down_closes_client() -> None:
    async with ChaosProxy("127.0.0.1:1") as proxy:
        assert await exchange(proxy.address, 1) == []


@pytest.mark.parametrize("upstream", ["10.0.0.1:9092", "example.com:9092", "127.0.0.1", "::1"])
def test_refuses_non_loopback_or_malformed(upstream: str) -> None:
    with pytest.raises(ValueError):
        ChaosProxy(upstream)


def test_accepts_loopback_forms() -> None:
    assert ChaosProxy("localhost:9092").upstream_host == "127.0.0.1"
    assert ChaosProxy("[::1]:9092").upstream_host == "::1"


@given(st.lists(st.integers(0, 300), max_size=8), st.data())
def test_frame_scanner_is_chunking_independent(sizes: list[int], data: st.DataObject) -> None:
    stream = b"".join(request_frame(i, b"p" * n) for i, n in enumerate(sizes))
    whole = FrameScanner(requests=True).feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    scanner = FrameScanner(requests=True)
    pieces: list[FrameHead] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        pieces += scanner.feed(stream[previous:cut])
        previous = cut
    assert pieces == whole
    assert [h.correlation_id for h in whole] == list(range(len(sizes)))


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)
