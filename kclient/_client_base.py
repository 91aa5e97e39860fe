"""The plumbing every client facade shares: a driver task group, the pool, metadata.

``ClientRuntime.start()`` opens an outer task group owned by the caller's task and,
inside it, a *shielded* host task holding the drivers' task group. The shield is the
point: cancelling the application's task (which owns the outer group) must not kill the
drivers before the facade's ``close()`` has done its final work (a producer's flush, a
consumer's last commit); ``stop()`` cancels the host scope itself.

A driver that crashes is logged and kept in ``driver_error`` instead of being raised
through the task group (which would cancel the application's task); the facade
reports it on its next call.

This is the pattern of ``AsyncConsumer`` (``_host``/``_guard``/``_stop_tasks``), pulled
out so the producer does not duplicate it; the consumer and admin can move onto it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from kclient.cluster.refresher import MetadataManager
from kclient.config import CommonConfig
from kclient.errors import IllegalStateError
from kclient.net.pool import ConnectionPool
from kclient.net.transport import Transport

__all__ = ["ClientRuntime"]

log = logging.getLogger("kclient")


class ClientRuntime:
    """Task group + :class:`ConnectionPool` + running :class:`MetadataManager`."""

    def __init__(
        self,
        config: CommonConfig,
        *,
        transport: Transport | None = None,
        auto_create_topics: bool = False,
    ) -> None:
        self.config = config
        self._transport = transport
        self._auto_create = auto_create_topics
        self._outer: anyio.abc.TaskGroup | None = None
        self._host_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._pool: ConnectionPool | None = None
        self._metadata: MetadataManager | None = None
        self._host_done: anyio.Event | None = None
        self.driver_error: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._tg is not None

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise IllegalStateError("the client is not started; use `async with` or start()")
        return self._tg

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise IllegalStateError("the client is not started; use `async with` or start()")
        return self._pool

    @property
    def metadata(self) -> MetadataManager:
        if self._metadata is None:
            raise IllegalStateError("the client is not started; use `async with` or start()")
        return self._metadata

    async def start(self) -> None:
        """Open the task groups, create the pool and start the metadata driver."""
        if self._tg is not None:
            raise IllegalStateError("client already started")
        outer = anyio.create_task_group()
        await outer.__aenter__()
        self._outer = outer
        try:
            self._tg = await outer.start(self._host)
            self._pool = ConnectionPool(self.config, self._tg, transport=self._transport)
            self._metadata = MetadataManager(
                self.config, self._pool, auto_create_topics=self._auto_create
            )
            await self.start_driver(self._metadata.run)
        except BaseException:
            await self.stop()
            raise

    async def start_driver(self, run: Callable[..., Any], *args: Any) -> None:
        """Run ``run(*args, task_status=...)`` as a guarded driver; returns once it started."""
        await self.task_group.start(self._guard, run, *args)

    async def _host(self, *, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup]) -> None:
        done = self._host_done = anyio.Event()
        try:
            with anyio.CancelScope(shield=True) as scope:
                self._host_scope = scope
                async with anyio.create_task_group() as tg:
                    task_status.started(tg)
                    await anyio.sleep_forever()
        finally:
            done.set()

    async def _guard(
        self, run: Callable[..., Any], *args: Any, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        try:
            await run(*args, task_status=task_status)
        except Exception as exc:
            log.exception("driver %s crashed", getattr(run, "__qualname__", run))
            self.driver_error = exc

    async def stop(self, pool_close_timeout: float = 2.0, *, final: bool = True) -> None:
        """Close every connection, then cancel and join every driver. Idempotent.

        ``final=False`` stops the drivers but leaves the outer task group entered, for
        a ``close()`` called deeper in the caller's nesting than ``start()`` (inside a
        task group of its own): anyio requires the group to be left where it was
        entered, which ``__aexit__`` then does with ``stop()``.
        """
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with anyio.move_on_after(pool_close_timeout, shield=True):
                await pool.aclose()
        if self._host_scope is not None:
            self._host_scope.cancel()
        if not final:
            if self._host_done is not None:
                with anyio.CancelScope(shield=True):
                    await self._host_done.wait()
            return
        if self._outer is not None:
            outer, self._outer = self._outer, None
            outer.cancel_scope.cancel()
            await outer.__aexit__(None, None, None)
        self._tg = None
        self._metadata = None
