"""The network layer against the real Tansu broker: handshake, metadata, CreateTopics."""

from __future__ import annotations

import uuid

import anyio
import pytest

from kclient.cluster.refresher import MetadataManager
from kclient.config import CommonConfig
from kclient.errors import KafkaConnectionError, KafkaTimeoutError
from kclient.net.connection import ConnectionSettings, connect
from kclient.net.pool import ConnectionPool
from protocol.messages.create_topics import (
    CreatableTopic,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from protocol.messages.metadata import MetadataRequest, MetadataResponse

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_handshake_metadata_and_create_topic(tansu_bootstrap: str) -> None:
    name = f"net-{uuid.uuid4().hex[:8]}"
    async with connect(tansu_bootstrap, ConnectionSettings(request_timeout_ms=10000)) as conn:
        assert conn.versions is not None and conn.versions.supports(3)
        metadata = await conn.request(MetadataRequest(topics=None))
        assert isinstance(metadata, MetadataResponse) and metadata.brokers
        created = await conn.request(
            CreateTopicsRequest(
                topics=[CreatableTopic(name=name, num_partitions=3, replication_factor=1)],
                timeout_ms=10000,
            )
        )
        assert isinstance(created, CreateTopicsResponse)
        assert created.topics[0].error_code in (0, 36)  # 36: already exists

    cfg = CommonConfig(bootstrap_servers=tansu_bootstrap, request_timeout_ms=10000)
    async with anyio.create_task_group() as tg:
        pool = ConnectionPool(cfg, tg)
        manager = MetadataManager(cfg, pool)
        await tg.start(manager.run)
        snap = await manager.wait_for_topics([name], timeout_ms=15000)
        assert snap.partitions_for(name) == (0, 1, 2)
        assert snap.leader_for(name, 0) is not None
        await pool.aclose()
        tg.cancel_scope.cancel()


async def test_tls_client_to_plaintext_port_fails_fast(tansu_bootstrap: str) -> None:
    import ssl

    context = ssl.create_default_context()
    settings = ConnectionSettings(connect_timeout_ms=1000, ssl_context=context)
    with pytest.raises((KafkaConnectionError, KafkaTimeoutError)) as info:
        async with connect(tansu_bootstrap, settings):
            pass
    assert "plaintext" in str(info.value)  # names the likely misconfiguration
