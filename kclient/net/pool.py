"""Connections keyed by node id, with per-node reconnect backoff and idle close.

Bootstrap servers get negative placeholder ids (-1, -2, ...) like the Java
client; brokers from metadata use their node ids. Only one connection attempt
per node runs at a time; concurrent callers wait for it. A failed attempt (any
reason, authentication included) starts that node's exponential backoff with
jitter, so an unreachable or misconfigured broker is never hammered.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping

import anyio
import anyio.abc

from kclient._clock import now_ms
from kclient.config import CommonConfig
from kclient.errors import IllegalStateError, KafkaConnectionError, KafkaError
from kclient.net.backoff import Backoff
from kclient.net.connection import BrokerConnection, ConnectionSettings, open_connection
from kclient.net.transport import BrokerAddress, Transport
from protocol.api import Request, Response

__all__ = ["ConnectionPool"]

log = logging.getLogger("kclient.net.pool")


class ConnectionPool:
    """Owns every broker connection of one client; reader tasks run in ``task_group``."""

    def __init__(
        self,
        config: CommonConfig,
        task_group: anyio.abc.TaskGroup,
        *,
        transport: Transport | None = None,
        settings: ConnectionSettings | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._tg = task_group
        self._transport = transport
        self._settings = settings or ConnectionSettings.from_config(config)
        self._rand = rand
        self.bootstrap = tuple(
            BrokerAddress(host, port, node_id=-(i + 1), origin="bootstrap")
            for i, (host, port) in enumerate(config.bootstrap_addresses)
        )
        self._addresses: dict[int, BrokerAddress] = {a.node_id: a for a in self.bootstrap}
        self._conns: dict[int, BrokerConnection] = {}
        self._connecting: dict[int, anyio.Event] = {}
        self._backoff: dict[int, Backoff] = {}
        self.connect_attempts = 0
        self._closed = False

    # -- addresses ------------------------------------------------------------------------

    def update_brokers(self, brokers: Mapping[int, tuple[str, int]]) -> None:
        """Take the broker addresses from new metadata; a moved broker's connection is closed."""
        for node_id, (host, port) in brokers.items():
            new = BrokerAddress(host, port, node_id=node_id, origin="metadata")
            old = self._addresses.get(node_id)
            if old is not None and (old.host, old.port) != (host, port):
                log.info("node %d moved from %s to %s", node_id, old, new)
                conn = self._conns.pop(node_id, None)
                if conn is not None:
                    self._tg.start_soon(conn.aclose)
                self._backoff.pop(node_id, None)
            self._addresses[node_id] = new

    def address(self, node_id: int) -> BrokerAddress | None:
        return self._addresses.get(node_id)

    def is_connected(self, node_id: int) -> bool:
        conn = self._conns.get(node_id)
        return conn is not None and conn.ready

    def backoff_remaining_ms(self, node_id: int, now: float) -> float:
        backoff = self._backoff.get(node_id)
        return 0.0 if backoff is None else backoff.remaining_ms(now)

    # -- connections ----------------------------------------------------------------------

    async def get(self, node_id: int) -> BrokerConnection:
        """A ready connection to ``node_id``, connecting (after its backoff) if needed."""
        while True:
            if self._closed:
                raise IllegalStateError("the client is closed")
            conn = self._conns.get(node_id)
            if conn is not None and conn.ready:
                return conn
            pending = self._connecting.get(node_id)
            if pending is None:
                return await self._connect(node_id)
            await pending.wait()
            if node_id not in self._conns:  # that attempt failed; do not pile on
                raise KafkaConnectionError(
                    "connection attempt failed", address=str(self._addresses.get(node_id))
                )

    async def _connect(self, node_id: int) -> BrokerConnection:
        address = self._addresses.get(node_id)
        if address is None:
            raise KafkaConnectionError(f"unknown broker node {node_id}")
        done = self._connecting[node_id] = anyio.Event()
        backoff = self._backoff.setdefault(
            node_id,
            Backoff(self._config.reconnect_backoff_ms, self._config.reconnect_backoff_max_ms),
        )
        try:
            wait = backoff.remaining_ms(now_ms())
            if wait > 0:
                await anyio.sleep(wait / 1000)
            self.connect_attempts += 1
            conn = await open_connection(
                self._tg, address, self._settings, transport=self._transport
            )
        except KafkaError as exc:
            delay = backoff.record_failure(now_ms(), self._rand())
            log.info("cannot connect to %s: %s (next try in %.0f ms)", address, exc, delay)
            raise
        else:
            backoff.record_success()
            self._conns[node_id] = conn
            return conn
        finally:
            del self._connecting[node_id]
            done.set()

    async def request(
        self, node_id: int, request: Request, *, timeout_ms: float | None = None
    ) -> Response:
        """Send on the node's connection; a request that surely never left is retried once
        on a fresh connection (the broker closed an idle connection under us)."""
        for attempt in (0, 1):
            conn = await self.get(node_id)
            try:
                return await conn.request(request, timeout_ms=timeout_ms)
            except KafkaConnectionError as exc:
                if exc.request_sent is not False or attempt == 1:
                    raise
        raise AssertionError("unreachable")

    async def close_idle(self, now: float) -> int:
        """Close connections idle longer than connections_max_idle_ms; return how many."""
        limit = self._config.connections_max_idle_ms
        if limit < 0:
            return 0
        idle = [n for n, c in self._conns.items() if c.closed or c.idle_ms(now) > limit]
        for node_id in idle:
            conn = self._conns.pop(node_id)
            await conn.aclose()
        return len(idle)

    async def aclose(self) -> None:
        self._closed = True
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            await conn.aclose()
