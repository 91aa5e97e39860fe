"""Lifecycle and shared plumbing of :class:`~kclient.admin.AsyncAdmin`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
from typing_extensions import Self

from kclient._clock import now_ms
from kclient.admin._routing import Router
from kclient.admin.results import Node
from kclient.cluster.refresher import MetadataManager
from kclient.config import AdminConfig
from kclient.errors import IllegalStateError, KafkaError
from kclient.net.pool import ConnectionPool
from kclient.net.transport import Transport
from protocol.api import Request, Response

__all__ = ["AdminBase", "expect", "finish", "one"]

K = TypeVar("K")
R = TypeVar("R")
Resp = TypeVar("Resp", bound=Response)


def finish(raw: Mapping[K, R | KafkaError], failed: Callable[[K, KafkaError], R]) -> dict[K, R]:
    """Keys whose last word was an error get a result object carrying it."""
    return {k: failed(k, v) if isinstance(v, KafkaError) else v for k, v in raw.items()}


def one(raw: Mapping[K, R | KafkaError], key: K) -> R:
    """The single key of a whole-operation call: its error is the operation's error."""
    value = raw[key]
    if isinstance(value, KafkaError):
        raise value
    return value


def expect(response: Response, cls: type[Resp]) -> Resp:
    assert isinstance(response, cls), type(response)
    return response


class AdminBase:
    """Owns the task group, connection pool, metadata driver and router of one admin."""

    def __init__(
        self,
        config: AdminConfig | None = None,
        *,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        if config is None:
            config = AdminConfig(**settings)
        elif settings:
            config = config.evolve(**settings)
        self.config = config
        self._transport = transport
        self._stack: contextlib.AsyncExitStack | None = None
        self._router: Router | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise IllegalStateError("this AsyncAdmin is already open")
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)  # runs first: stops the metadata driver
        try:
            # A bad TLS file or key password raises here: leave the task group again,
            # or the caller's cancel scopes are left corrupted.
            pool = ConnectionPool(self.config, tg, transport=self._transport)
            stack.push_async_callback(pool.aclose)
            metadata = MetadataManager(self.config, pool)
            await tg.start(metadata.run)
        except BaseException:
            await stack.aclose()
            raise
        self._router = Router(self.config, pool, metadata)
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        stack, self._stack, self._router = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def _r(self) -> Router:
        if self._router is None:
            raise IllegalStateError("use 'async with AsyncAdmin(...) as admin:' first")
        return self._router

    async def _call(
        self, node: int, api: type[Request], build: Callable[[int], Request], deadline: float
    ) -> Response:
        return await self._r.call(node, api, build, deadline)

    def _now(self) -> float:
        return now_ms()

    def _broker_timeout(self, deadline: float) -> int:
        """The timeout_ms field sent to the broker: what is left of ours."""
        return max(0, int(deadline - now_ms()))

    def _node(self, node_id: int) -> Node | None:
        address = self._r.pool.address(node_id)
        return None if address is None else Node(node_id, address.host, address.port)
