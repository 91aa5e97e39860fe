"""Sending admin requests to the right broker, with retries (the admin's only I/O).

An admin operation works on keys (topics, groups, partitions, config resources).
:meth:`Router.fan_out` routes every pending key to a node (the controller, the
group's coordinator, the partition's leader, any broker), sends one request per
node concurrently, and lets the operation's pure ``send`` parser decide per key:
a final result, or :class:`Retry` (the routing was stale: NOT_CONTROLLER,
NOT_COORDINATOR, a leader that moved, a connection lost, ...). Keys to retry go
round again after an exponential backoff, until they are done or the deadline
(``timeout_ms`` or ``default_api_timeout_ms``) passes; then each gets a
:class:`KafkaTimeoutError` naming its last error. Keys never fail each other.

A broker that lacks an API an operation needs raises
:class:`UnsupportedVersionForApiError` out of the operation: that is about the
cluster, not about one item, and waiting will not fix it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio

from kclient._clock import now_ms
from kclient.cluster.refresher import MetadataManager
from kclient.config import AdminConfig
from kclient.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    UnsupportedVersionForApiError,
)
from kclient.net.backoff import backoff_ms
from kclient.net.pool import ConnectionPool
from protocol.api import Request, Response
from protocol.errors import error_for_code
from protocol.messages.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse
from protocol.messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse

__all__ = [
    "Retry",
    "Route",
    "Router",
    "broker_error",
    "missing_error",
    "retry_for_code",
    "retry_or_error",
]

log = logging.getLogger("kclient.admin")

K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)
R = TypeVar("R")

# Error codes that mean "ask again, possibly elsewhere" rather than "this item failed".
_REFRESH_CODES = frozenset({5, 6, 9, 41, 74, 75, 78})
# LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REPLICA_NOT_AVAILABLE, NOT_CONTROLLER,
# FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE
_REDISCOVER_CODES = frozenset({15, 16})  # COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
_WAIT_CODES = frozenset({7, 14, 89})
# REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS, THROTTLING_QUOTA_EXCEEDED


@dataclass(frozen=True)
class Retry:
    """Send this key again; ``reroute`` when the node it went to was the wrong one."""

    error: KafkaError
    reroute: bool = True


def retry_for_code(code: int, what: str, message: str | None = None) -> Retry | None:
    """The Retry for a routing-related error code, or None when the code is final (pure)."""
    if code in _REFRESH_CODES or code in _REDISCOVER_CODES:
        return Retry(error_for_code(code)(message or what), reroute=True)
    if code in _WAIT_CODES:
        return Retry(error_for_code(code)(message or what), reroute=False)
    return None


def broker_error(code: int, what: str, message: str | None = None) -> KafkaError | None:
    """The broker error for ``code`` (None for 0), with the item named in the message."""
    if code == 0:
        return None
    detail = f"{what}: {message}" if message else what
    return error_for_code(code)(detail)


def retry_or_error(code: int, what: str, message: str | None = None) -> Retry | KafkaError | None:
    """Retry for routing errors, the broker error for other codes, None for success."""
    return retry_for_code(code, what, message) or broker_error(code, what, message)


def missing_error(what: str) -> KafkaError:
    # the broker answered but left this item out: report it, do not guess
    return error_for_code(-1)(f"{what}: missing from the broker's response")


class Route(Protocol[K_contra]):
    """Where each key of an operation goes."""

    async def prepare(self, keys: Sequence[K_contra], deadline: float) -> None:
        """Load what routing needs (metadata) once per round."""

    async def node_for(self, key: K_contra, deadline: float) -> int | KafkaError:
        """The node for ``key``; a returned error is final for the key, a raised one
        is retried when retriable."""

    def invalidate(self, key: K_contra) -> None:
        """The node given for ``key`` was wrong: look it up again next round."""


SendFn = Callable[[int, Sequence[K]], Awaitable[Mapping[K, "R | KafkaError | Retry"]]]


class Router:
    """I/O for admin requests: negotiation, routing lookups, the retry loop."""

    def __init__(
        self,
        config: AdminConfig,
        pool: ConnectionPool,
        metadata: MetadataManager,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.pool = pool
        self.metadata = metadata
        self._rand = rand
        self._coordinators: dict[str, int] = {}

    # -- one request ----------------------------------------------------------------------

    def deadline(self, timeout_ms: float | None) -> float:
        timeout = self.config.default_api_timeout_ms if timeout_ms is None else timeout_ms
        return now_ms() + timeout

    async def call(
        self,
        node_id: int,
        api: type[Request],
        build: Callable[[int], Request],
        deadline: float,
    ) -> Response:
        """Send ``build(version)`` to ``node_id`` at the negotiated version of ``api``."""
        remaining = deadline - now_ms()
        if remaining <= 0:
            raise KafkaTimeoutError(f"{api.API_NAME}: the operation's timeout expired")
        conn = None
        with anyio.move_on_after(remaining / 1000):  # also bounds connecting
            conn = await self.pool.get(node_id)
        if conn is None:
            raise KafkaTimeoutError(f"{api.API_NAME}: no connection to node {node_id} in time")
        assert conn.versions is not None
        version = conn.versions.version_for(api)
        timeout = min(self.config.request_timeout_ms, max(1.0, deadline - now_ms()))
        return await conn.request(build(version), version=version, timeout_ms=timeout)

    async def call_any(
        self, api: type[Request], build: Callable[[int], Request], deadline: float
    ) -> Response:
        """Send to any broker, retrying elsewhere on connection trouble until the deadline."""
        outcome = await self.fan_out(
            ["any"],
            AnyRoute(self),
            lambda node, _k: self._send_one(node, api, build, deadline),
            deadline,
        )
        result = outcome["any"]
        if isinstance(result, KafkaError):
            raise result
        return result

    async def _send_one(
        self, node: int, api: type[Request], build: Callable[[int], Request], deadline: float
    ) -> Mapping[str, Response | KafkaError | Retry]:
        return {"any": await self.call(node, api, build, deadline)}

    # -- routing lookups ------------------------------------------------------------------

    async def snapshot_brokers(self, deadline: float, *, fresh: bool = False) -> list[int]:
        """Known broker ids, connected ones first; refreshes metadata when needed."""
        if fresh or not self.metadata.snapshot.brokers:
            await self.metadata.refresh(timeout_ms=max(1.0, deadline - now_ms()))
        brokers = sorted(self.metadata.snapshot.brokers)
        return sorted(brokers, key=lambda n: not self.pool.is_connected(n))

    async def any_node(self, deadline: float) -> int:
        brokers = await self.snapshot_brokers(deadline)
        now = now_ms()
        usable = [n for n in brokers if self.pool.backoff_remaining_ms(n, now) <= 0]
        return (usable or brokers)[0]

    async def controller(self, deadline: float) -> int:
        await self.snapshot_brokers(deadline)
        snapshot = self.metadata.snapshot
        if snapshot.controller_id in snapshot.brokers:
            return snapshot.controller_id
        return await self.any_node(deadline)  # KRaft brokers forward to the controller

    async def coordinator(self, group_id: str, deadline: float) -> int:
        node = self._coordinators.get(group_id)
        if node is not None:
            return node
        response = await self.call_any(
            FindCoordinatorRequest, lambda v: _find_coordinator(group_id, v), deadline
        )
        assert isinstance(response, FindCoordinatorResponse)
        node_id, host, port = _coordinator_of(response, group_id)
        self.pool.update_brokers({node_id: (host, port)})
        self._coordinators[group_id] = node_id
        return node_id

    def forget_coordinator(self, group_id: str) -> None:
        self._coordinators.pop(group_id, None)

    async def topic_metadata(
        self, topics: Iterable[str] | None, deadline: float
    ) -> MetadataResponse:
        """Metadata of ``topics`` (None: all) fresh from a broker."""
        names = None if topics is None else sorted(set(topics))
        response = await self.call_any(
            MetadataRequest, lambda v: _metadata_request(names, v), deadline
        )
        assert isinstance(response, MetadataResponse)
        self.pool.update_brokers({b.node_id: (b.host, b.port) for b in response.brokers})
        return response

    # -- the retry loop -------------------------------------------------------------------

    async def fan_out(
        self,
        keys: Iterable[K],
        route: Route[K],
        send: SendFn[K, R],
        deadline: float,
    ) -> dict[K, R | KafkaError]:
        """Route, send and retry until every key has a result or an error."""
        results: dict[K, R | KafkaError] = {}
        pending = list(dict.fromkeys(keys))
        attempt = 0
        while pending:
            retry = await self._round(pending, route, send, deadline, results)
            pending = list(retry)
            if not pending:
                break
            for key, r in retry.items():
                if r.reroute:
                    route.invalidate(key)
            wait = backoff_ms(
                attempt,
                self.config.retry_backoff_ms,
                self.config.retry_backoff_max_ms,
                self._rand(),
            )
            attempt += 1
            if now_ms() + wait >= deadline or attempt > self.config.retries:
                for key, r in retry.items():
                    results[key] = KafkaTimeoutError(
                        f"{key}: not done within the timeout after {attempt} attempt(s); "
                        f"last error: {type(r.error).__name__}: {r.error}"
                    )
                break
            log.debug("retrying %d item(s) in %.0f ms", len(pending), wait)
            await anyio.sleep(wait / 1000)
        return results

    async def _round(
        self,
        pending: Sequence[K],
        route: Route[K],
        send: SendFn[K, R],
        deadline: float,
        results: dict[K, R | KafkaError],
    ) -> dict[K, Retry]:
        retry: dict[K, Retry] = {}
        by_node: dict[int, list[K]] = {}
        try:
            await route.prepare(pending, deadline)
        except KafkaError as exc:
            return self._all_failed(pending, exc, results)
        for key in pending:
            try:
                node = await route.node_for(key, deadline)
            except KafkaError as exc:
                retry.update(self._all_failed([key], exc, results))
                continue
            if isinstance(node, KafkaError):
                results[key] = node
            else:
                by_node.setdefault(node, []).append(key)
        outcomes: dict[K, R | KafkaError | Retry] = {}
        fatal: list[UnsupportedVersionForApiError] = []
        async with anyio.create_task_group() as tg:
            for node, node_keys in by_node.items():
                tg.start_soon(self._send_group, send, node, node_keys, outcomes, fatal)
        if fatal:
            raise fatal[0]
        for key, outcome in outcomes.items():
            if isinstance(outcome, Retry):
                retry[key] = outcome
            else:
                results[key] = outcome
        return retry

    @staticmethod
    def _all_failed(
        keys: Sequence[K], exc: KafkaError, results: dict[K, R | KafkaError]
    ) -> dict[K, Retry]:
        if isinstance(exc, UnsupportedVersionForApiError):
            raise exc
        if exc.retriable:
            return {key: Retry(exc) for key in keys}
        for key in keys:
            results[key] = exc
        return {}

    @staticmethod
    async def _send_group(
        send: SendFn[K, R],
        node: int,
        keys: Sequence[K],
        outcomes: dict[K, R | KafkaError | Retry],
        fatal: list[UnsupportedVersionForApiError],
    ) -> None:
        try:
            outcomes.update(await send(node, keys))
        except UnsupportedVersionForApiError as exc:
            fatal.append(exc)
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            # lost connection or no answer: route again (the broker may be gone)
            outcomes.update({key: Retry(exc) for key in keys})
        except KafkaError as exc:
            outcomes.update({key: (Retry(exc) if exc.retriable else exc) for key in keys})


# -- routes ------------------------------------------------------------------------------


class AnyRoute(Generic[K]):
    """Any broker (connected first); a broker that failed is skipped while in backoff."""

    def __init__(self, router: Router) -> None:
        self._router = router

    async def prepare(self, keys: Sequence[K], deadline: float) -> None:
        return None

    async def node_for(self, key: K, deadline: float) -> int:
        return await self._router.any_node(deadline)

    def invalidate(self, key: K) -> None:
        self._router.metadata.request_update()


class FixedRoute(Generic[K]):
    """Each key names its node (a broker config resource, a broker to list groups on)."""

    def __init__(self, router: Router, node_of: Callable[[K], int | None]) -> None:
        self._router = router
        self._node_of = node_of

    async def prepare(self, keys: Sequence[K], deadline: float) -> None:
        return None

    async def node_for(self, key: K, deadline: float) -> int:
        node = self._node_of(key)
        return await self._router.any_node(deadline) if node is None else node

    def invalidate(self, key: K) -> None:
        return None


class ControllerRoute(Generic[K]):
    def __init__(self, router: Router) -> None:
        self._router = router
        self._stale = False

    async def prepare(self, keys: Sequence[K], deadline: float) -> None:
        if self._stale:
            self._stale = False
            await self._router.snapshot_brokers(deadline, fresh=True)

    async def node_for(self, key: K, deadline: float) -> int:
        return await self._router.controller(deadline)

    def invalidate(self, key: K) -> None:
        self._stale = True


class CoordinatorRoute(Generic[K]):
    def __init__(self, router: Router, group_of: Callable[[K], str]) -> None:
        self._router = router
        self._group_of = group_of

    async def prepare(self, keys: Sequence[K], deadline: float) -> None:
        return None

    async def node_for(self, key: K, deadline: float) -> int:
        return await self._router.coordinator(self._group_of(key), deadline)

    def invalidate(self, key: K) -> None:
        self._router.forget_coordinator(self._group_of(key))


# -- pure request/response helpers for the lookups --------------------------------------


def _find_coordinator(group_id: str, version: int) -> FindCoordinatorRequest:
    if version >= 4:
        return FindCoordinatorRequest(key_type=0, coordinator_keys=[group_id])
    return FindCoordinatorRequest(key=group_id, key_type=0)


def _coordinator_of(response: FindCoordinatorResponse, group_id: str) -> tuple[int, str, int]:
    """(node id, host, port) of the coordinator, or raise the error it carries."""
    if response.coordinators:
        match = [c for c in response.coordinators if c.key == group_id] or response.coordinators
        c = match[0]
        code, message, found = c.error_code, c.error_message, (c.node_id, c.host, c.port)
    else:
        code, message = response.error_code, response.error_message
        found = (response.node_id, response.host, response.port)
    error = broker_error(code, f"FindCoordinator for group {group_id!r}", message)
    if error is not None:
        raise error
    return found


def _metadata_request(names: list[str] | None, version: int) -> MetadataRequest:
    topics = None if names is None else [MetadataRequestTopic(name=n) for n in names]
    if names is None and version == 0:
        topics = []  # v0 has no null; an empty list means "all topics" there
    if version >= 4:
        return MetadataRequest(topics=topics, allow_auto_topic_creation=False)
    return MetadataRequest(topics=topics)


class LeaderRoute(Generic[K]):
    """The leader of each key's partition, from metadata fetched once per round."""

    def __init__(self, router: Router, partition_of: Callable[[K], tuple[str, int]]) -> None:
        self._router = router
        self._partition_of = partition_of
        self._leaders: dict[tuple[str, int], int | KafkaError] = {}

    async def prepare(self, keys: Sequence[K], deadline: float) -> None:
        topics = {self._partition_of(k)[0] for k in keys}
        response = await self._router.topic_metadata(topics, deadline)
        self._leaders = leaders_of(response)

    async def node_for(self, key: K, deadline: float) -> int | KafkaError:
        topic, partition = self._partition_of(key)
        found = self._leaders.get((topic, partition))
        if found is None:
            found = self._leaders.get((topic, -1))  # the topic's own error
        if found is None:
            return error_for_code(3)(f"partition {partition} of topic {topic!r} does not exist")
        if isinstance(found, KafkaError) and found.retriable and not _is_unknown_topic(found):
            raise found
        return found

    def invalidate(self, key: K) -> None:
        return None  # prepare() fetches fresh metadata every round


def _is_unknown_topic(error: KafkaError) -> bool:
    return isinstance(error, error_for_code(3))


def leaders_of(response: MetadataResponse) -> dict[tuple[str, int], int | KafkaError]:
    """(topic, partition) -> leader node or error; (topic, -1) holds a topic-level error."""
    brokers = {b.node_id for b in response.brokers}
    found: dict[tuple[str, int], int | KafkaError] = {}
    for t in response.topics:
        name = t.name or ""
        error = broker_error(t.error_code, f"topic {name!r}")
        if error is not None:
            found[(name, -1)] = error
            continue
        for p in t.partitions:
            what = f"partition {p.partition_index} of topic {name!r}"
            if p.leader_id in brokers and p.error_code in (0, 9):  # 9: a replica is down
                found[(name, p.partition_index)] = p.leader_id
            else:
                found[(name, p.partition_index)] = error_for_code(p.error_code or 5)(what)
    return found
