"""Reliability scenarios N1, N2, N3, N5 (reliability guide 2d) against local fake servers."""

from __future__ import annotations

import random
import time
from typing import Any

import anyio
import anyio.abc
import pytest

from kclient.cluster.refresher import MetadataManager
from kclient.config import CommonConfig
from kclient.errors import KafkaTimeoutError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.pool import ConnectionPool
from protocol.messages.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

from .fake_broker import FakeBroker, running

pytestmark = pytest.mark.anyio


def cluster_metadata(port_of: Any, topics: tuple[str, ...] = ("t",)) -> Any:
    def handler(version: int, request: Any) -> MetadataResponse:
        names = [t.name for t in request.topics or []] or list(topics)
        return MetadataResponse(
            brokers=[MetadataResponseBroker(node_id=1, host="127.0.0.1", port=port_of())],
            cluster_id="fake",
            controller_id=1,
            topics=[
                MetadataResponseTopic(
                    name=n,
                    partitions=[
                        MetadataResponsePartition(
                            partition_index=0, leader_id=1, replica_nodes=[1], isr_nodes=[1]
                        )
                    ],
                )
                for n in names
            ],
        )

    return handler


def config(bootstrap: str, **kw: Any) -> CommonConfig:
    base: dict[str, Any] = dict(
        bootstrap_servers=bootstrap,
        request_timeout_ms=500,
        socket_connection_setup_timeout_ms=300,
        reconnect_backoff_ms=20,
        reconnect_backoff_max_ms=100,
        retry_backoff_ms=20,
        retry_backoff_max_ms=100,
    )
    base.update(kw)
    return CommonConfig(**base)


async def free_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return int(port)


async def test_n1_unreachable_bootstrap_backs_off_and_times_out() -> None:
    cfg = config(f"127.0.0.1:{await free_port()}")
    async with anyio.create_task_group() as tg:
        pool = ConnectionPool(cfg, tg, rand=random.Random(1).random)
        manager = MetadataManager(cfg, pool)
        await tg.start(manager.run)
        cpu0, wall0 = time.process_time(), time.monotonic()
        with pytest.raises(KafkaTimeoutError, match="no usable metadata") as info:
            await manager.wait_for_topics(["t"], timeout_ms=1000)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        assert "cannot connect" in str(info.value)  # the cause travels with the timeout
        # backoff 20 ms doubling to a 100 ms cap: about 12 attempts in 1 s, never a hot loop
        assert 2 <= pool.connect_attempts <= 25
        assert cpu < max(0.5 * wall, 0.3)  # waiting, not spinning (generous for slow CI)
        tg.cancel_scope.cancel()


async def test_n1_recovers_when_broker_comes_back() -> None:
    port = await free_port()
    cfg = config(f"127.0.0.1:{port}")
    broker = FakeBroker({3: cluster_metadata(lambda: port)})
    async with anyio.create_task_group() as tg:
        pool = ConnectionPool(cfg, tg)
        manager = MetadataManager(cfg, pool)
        await tg.start(manager.run)
        await anyio.sleep(0.1)  # a few failed attempts
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        async with listener, anyio.create_task_group() as server:
            server.start_soon(listener.serve, broker._serve)
            snap = await manager.wait_for_topics(["t"], timeout_ms=2000)
            assert snap.partitions_for("t") == (0,)
            server.cancel_scope.cancel()
        tg.cancel_scope.cancel()


async def test_n2_blackholed_broker_request_timeout_then_fresh_connection() -> None:
    blackhole = {"on": True}

    def metadata(version: int, request: Any) -> Any:
        return None if blackhole["on"] else MetadataResponse(cluster_id="back")

    broker = FakeBroker({3: metadata})
    async with running(broker):
        cfg = config(broker.address)
        async with anyio.create_task_group() as tg:
            pool = ConnectionPool(cfg, tg)
            with pytest.raises(KafkaTimeoutError):
                await pool.request(-1, MetadataRequest(topics=[]), timeout_ms=100)
            blackhole["on"] = False
            response = await pool.request(-1, MetadataRequest(topics=[]))
            assert isinstance(response, MetadataResponse) and response.cluster_id == "back"
            assert broker.connections == 2
            await pool.aclose()


async def one_byte_proxy(target_port: int, tg: anyio.abc.TaskGroup) -> int:
    """Forward to target, delivering broker->client bytes one at a time with random pauses."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    rng = random.Random(7)

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", target_port) as upstream:

            async def up() -> None:
                async for chunk in client:
                    await upstream.send(chunk)

            async def down() -> None:
                async for chunk in upstream:
                    for i in range(len(chunk)):
                        await client.send(chunk[i : i + 1])
                        if rng.random() < 0.05:
                            await anyio.sleep(rng.random() * 0.003)

            async with anyio.create_task_group() as pair:
                pair.start_soon(up)
                pair.start_soon(down)

    async def serve() -> None:
        async with listener:
            await listener.serve(handle)

    tg.start_soon(serve)
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))


async def test_n3_one_byte_fragments_give_identical_results() -> None:
    broker = FakeBroker({3: cluster_metadata(lambda: 1, topics=("a", "b", "c"))})
    settings = ConnectionSettings(request_timeout_ms=5000, connect_timeout_ms=5000)
    async with running(broker), anyio.create_task_group() as tg:
        proxy_port = await one_byte_proxy(broker.port, tg)
        async with connect(broker.address, settings) as direct:
            expected = await direct.request(MetadataRequest(topics=None))
        async with connect(f"127.0.0.1:{proxy_port}", settings) as fragmented:
            results = []
            async with anyio.create_task_group() as calls:

                async def call() -> None:
                    results.append(await fragmented.request(MetadataRequest(topics=None)))

                for _ in range(3):
                    calls.start_soon(call)
        assert results == [expected] * 3
        tg.cancel_scope.cancel()


async def test_n5_broker_closes_idle_connection_next_request_reconnects() -> None:
    broker: FakeBroker = FakeBroker()
    broker.handlers[3] = cluster_metadata(lambda: broker.port)
    async with running(broker):
        cfg = config(broker.address)
        async with anyio.create_task_group() as tg:
            pool = ConnectionPool(cfg, tg)
            await pool.request(-1, MetadataRequest(topics=[]))
            await broker.close_all()  # the broker's connections.max.idle.ms fired
            await anyio.sleep(0.05)
            response = await pool.request(-1, MetadataRequest(topics=[]))
            assert isinstance(response, MetadataResponse)
            assert broker.connections == 2
            await pool.aclose()


async def test_n5_client_closes_idle_connections() -> None:
    broker: FakeBroker = FakeBroker()
    broker.handlers[3] = cluster_metadata(lambda: broker.port)
    async with running(broker):
        cfg = config(broker.address, connections_max_idle_ms=10)
        async with anyio.create_task_group() as tg:
            pool = ConnectionPool(cfg, tg)
            conn = await pool.get(-1)
            await anyio.sleep(0.05)
            from kclient._clock import now_ms

            assert await pool.close_idle(now_ms()) == 1
            assert conn.closed
            await pool.aclose()


async def test_n5_rebootstrap_when_known_broker_is_gone() -> None:
    """Metadata names node 1 at a port where nothing listens; bootstrap still answers."""
    dead_port = await free_port()
    broker = FakeBroker({3: cluster_metadata(lambda: dead_port)})
    async with running(broker):
        cfg = config(broker.address)
        async with anyio.create_task_group() as tg:
            pool = ConnectionPool(cfg, tg)
            manager = MetadataManager(cfg, pool)
            await tg.start(manager.run)
            await manager.wait_for_topics(["t"], timeout_ms=2000)
            snap = await manager.refresh(timeout_ms=2000)  # node 1 unreachable -> bootstrap
            assert snap.brokers[1].port == dead_port
            tg.cancel_scope.cancel()
