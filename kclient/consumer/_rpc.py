"""Sending one request to one broker at a chosen version, for the consumer's drivers.

``ConnectionPool.request`` always uses the highest negotiated version; the consumer
needs the version too (response layouts differ, e.g. OffsetFetch v8 groups) and
sometimes a cap (Fetch stays at v12: topic names, not topic ids).
"""

from __future__ import annotations

from collections.abc import Callable

from kclient.cluster.refresher import MetadataManager
from kclient.errors import KafkaConnectionError
from kclient.net.pool import ConnectionPool
from protocol.api import Request, Response
from protocol.messages.metadata import MetadataRequest, MetadataResponse

__all__ = ["all_topics", "any_node", "send"]


async def send(
    pool: ConnectionPool,
    node_id: int,
    request: Request | tuple[type[Request], Callable[[int], Request]],
    *,
    max_version: int | None = None,
    timeout_ms: float | None = None,
) -> tuple[Response, int]:
    """(response, version). ``request`` is a message, or (message class, builder taking
    the negotiated version) for messages whose fields depend on the version. A request
    that surely never left is retried once on a fresh connection (same rule as
    ``ConnectionPool.request``)."""
    for attempt in (0, 1):
        conn = await pool.get(node_id)
        assert conn.versions is not None
        cls = request[0] if isinstance(request, tuple) else type(request)
        version = conn.versions.version_for(cls, max_version=max_version)
        message = request[1](version) if isinstance(request, tuple) else request
        try:
            response = await conn.request(message, version=version, timeout_ms=timeout_ms)
        except KafkaConnectionError as exc:
            if exc.request_sent is not False or attempt == 1:
                raise
            continue
        return response, version
    raise AssertionError("unreachable")


def any_node(pool: ConnectionPool, metadata: MetadataManager) -> int:
    """A broker for requests any broker can answer: a connected one if possible."""
    known = sorted(metadata.snapshot.brokers)
    for node in known:
        if pool.is_connected(node):
            return node
    if known:
        return known[0]
    return pool.bootstrap[0].node_id


async def all_topics(
    pool: ConnectionPool, metadata: MetadataManager, timeout_ms: float
) -> tuple[dict[str, tuple[int, ...]], frozenset[str]]:
    """Every topic in the cluster: (name -> partition ids, internal topic names).

    The metadata manager tracks only the topics the client uses; ``topics()`` and
    pattern subscriptions need the whole list, asked for here on demand.
    """
    request = MetadataRequest(topics=None, allow_auto_topic_creation=False)
    response, _ = await send(pool, any_node(pool, metadata), request, timeout_ms=timeout_ms)
    assert isinstance(response, MetadataResponse)
    topics: dict[str, tuple[int, ...]] = {}
    internal: set[str] = set()
    for topic in response.topics:
        if topic.error_code or not topic.name:
            continue
        topics[topic.name] = tuple(sorted(p.partition_index for p in topic.partitions))
        if topic.is_internal:
            internal.add(topic.name)
    return topics, frozenset(internal)
