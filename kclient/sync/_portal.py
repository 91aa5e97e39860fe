"""The one event-loop thread behind every sync client, and the glue to reach it.

Theory of operation. The sync clients (``Admin``, ``Consumer``, later ``Producer``) own
no logic: each holds an async client (``AsyncAdmin``, ...) that lives on an event loop
in a background thread, and every method forwards to its async twin through an anyio
``BlockingPortal``. One ``BlockingPortalProvider`` is shared by all sync clients of the
process: the first client to open starts the loop thread, the last one to close stops
it (``_PROVIDER`` counts the leases under its own lock).

Lifecycle. The async clients open a task group in ``__aenter__`` and must leave it in
the *same task* (anyio cancel scopes are bound to the task that entered them; a
``portal.call(start)`` followed by a ``portal.call(close)`` fails with "Attempted to exit
a cancel scope that isn't the current task's"). So each client's async context manager
is held open by one host task (:class:`_Host`, like anyio's
``wrap_async_context_manager`` but able to run a closer with arguments, e.g. a
producer's ``close(timeout)``) for the client's whole life; ``close()`` lets that task
run the closer and ``__aexit__``. Every other call runs in a short task of its own.

Threads. Any number of threads may call one client: their calls become concurrent
tasks on the loop, exactly like concurrent tasks sharing an async client. The caller's
thread may itself run an event loop (a Jupyter cell): ``portal.call`` only hands work
to the other thread and blocks, so that works. What cannot work is a call made *on*
the loop thread, i.e. from a user callback (rebalance listener, delivery callback):
it would block the loop it waits for. A thread-local marker set on the loop thread
turns that into :class:`SyncInEventLoopError` before anything blocks.

Closing while other threads wait. ``close()`` first cancels the calls still in flight
on this client (they are async calls, so cancelling them is safe: ``getmany`` and
friends are cancellation-safe), which makes those threads raise
:class:`ClientClosedError` (or end their ``for`` loop) at once instead of waiting out
their own timeouts while the portal shutdown waits for them.

Ctrl-C. ``KeyboardInterrupt`` is delivered to the main thread while it blocks in
``Future.result()``; the pending call is then cancelled so it does not keep running
unobserved, and the interrupt propagates. A ``with`` block (or ``try/finally: close()``)
then closes the client normally: consumers commit (auto-commit) and leave the group,
producers flush what they accepted.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import CancelledError, Future
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

import anyio
from anyio.from_thread import BlockingPortal, BlockingPortalProvider
from typing_extensions import ParamSpec, Self

from kclient.errors import IllegalStateError

__all__ = [
    "ClientClosedError",
    "PortalClient",
    "SyncInEventLoopError",
    "portal_running",
    "returns_future",
    "returns_futures",
]

P = ParamSpec("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
ImplT = TypeVar("ImplT", bound=AbstractAsyncContextManager[Any])

# asyncio: the portal's loop is private to kclient, so the backend is an implementation
# detail; user callbacks written as ``async def`` must therefore be anyio- or
# asyncio-compatible (documented in docs/design-notes/sync.md).
_PROVIDER = BlockingPortalProvider(backend="asyncio")

# Set to True on the portal's loop thread only; read by every sync call.
_here = threading.local()


class SyncInEventLoopError(IllegalStateError, RuntimeError):
    """A sync client was called on its own event-loop thread, i.e. from a callback.

    Also a ``RuntimeError``: that is what anyio raises for the same mistake.
    """


class ClientClosedError(IllegalStateError):
    """The sync client is closed, or was closed by another thread during this call."""


def _mark_loop_thread() -> None:
    _here.in_portal = True


def portal_running() -> bool:
    """Whether the shared loop thread is alive (for tests of the thread's lifetime)."""
    return any(t.name.startswith("kclient-portal") for t in threading.enumerate())


class PortalClient(Generic[ImplT]):
    """Base of the sync facades: holds the async twin, forwards calls to it.

    Subclasses call :meth:`_open` from ``__init__``, write each public method as one
    ``return self._call(self._impl.method, ...)`` line (``_call_sync`` for the twin's
    plain methods) and ``close()`` as ``self._shutdown()``.
    """

    _async_name: ClassVar[str]  # the async twin's name, for error messages

    _impl: ImplT
    _portal: BlockingPortal | None = None
    _host: _Host | None = None

    def _open(self, make: Callable[[], ImplT]) -> None:
        """Lease the shared portal, build the async client on its loop and open it.

        The async client is built on the loop thread too: its constructor may create
        anyio primitives, which belong to the loop that creates them.
        """
        self._check_thread()
        self._lock = threading.Lock()
        self._inflight: set[Future[Any]] = set()
        self._closing = False
        portal = _PROVIDER.__enter__()
        try:
            portal.call(_name_loop_thread)
            self._impl = portal.call(make)
            host = portal.call(_Host, self._impl)
            host.done = portal.start_task_soon(host.run)
            try:
                host.entered.result()
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    # Interrupted while opening: let the open finish, then close it, so
                    # no half-open client stays on the shared loop.
                    portal.call(host.leave.set)
                    host.done.result()
                raise
        except BaseException:
            _PROVIDER.__exit__(None, None, None)
            raise
        self._host, self._portal = host, portal

    def _check_thread(self) -> None:
        if getattr(_here, "in_portal", False):
            name = self._async_name
            raise SyncInEventLoopError(
                f"sync client used inside its event loop (a callback runs on the loop "
                f"thread and may not block it); use {name} there"
            )

    def _call(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the async twin's ``func`` on the loop thread; block for its result."""
        return cast(T, self._forward(func, args, kwargs))

    def _call_sync(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Same for the twin's plain methods (``assign``, ``seek``...): they change state
        the loop's driver tasks read, so they too run on the loop thread."""
        return cast(T, self._forward(func, args, kwargs))

    def _forward(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._check_thread()
        target = functools.partial(func, **kwargs) if kwargs else func
        # Registering under the lock closes the race with close(): a call either is
        # in _inflight before close() takes its snapshot (and gets cancelled) or sees
        # _closing and never starts. The loop thread never takes this lock (callbacks
        # are refused above), so holding it across the hand-off cannot deadlock.
        with self._lock:
            if self._closing or self._portal is None:
                raise ClientClosedError(f"the sync client of {self._async_name} is closed")
            future = self._portal.start_task_soon(target, *args)
            self._inflight.add(future)
        try:
            return self._wait(future)
        finally:
            with self._lock:
                self._inflight.discard(future)

    def _wait(self, future: Future[T]) -> T:
        try:
            return future.result()
        except CancelledError:
            raise ClientClosedError(
                f"the sync client of {self._async_name} was closed during this call"
            ) from None
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # KeyboardInterrupt (or SystemExit) while blocked: stop the call on the
                # loop too, or it would go on running with nobody to see its result.
                future.cancel()
            raise

    def _next(self, func: Callable[[], Awaitable[T]]) -> T:
        """``__next__``: like :meth:`_call`, but a closed client ends the iteration."""
        try:
            return self._call(func)
        except (ClientClosedError, StopAsyncIteration):
            raise StopIteration from None

    def _take_lent(
        self, take: Callable[[], T | None], refill: Callable[[], Awaitable[object]]
    ) -> T:
        """The next item the async twin lends in chunks (the consumer's records).

        ``take`` hands out the next item of the current chunk, or None when it is used up;
        it runs on the caller's thread, so it must be thread-safe and never block.
        ``refill`` loads the next chunk on the loop: one portal hop per chunk instead of
        one per item, and the refill's errors are raised here as a call's would be. A
        client closed before or during the call raises :class:`ClientClosedError`.
        """
        self._check_thread()
        while True:
            if self._closing or self._portal is None:
                raise ClientClosedError(f"the sync client of {self._async_name} is closed")
            item = take()
            if item is not None:
                return item
            self._call(refill)

    def _next_lent(
        self, take: Callable[[], T | None], refill: Callable[[], Awaitable[object]]
    ) -> T:
        """``__next__`` over items lent in chunks (:meth:`_take_lent`): a closed client
        ends the iteration."""
        try:
            return self._take_lent(take, refill)
        except (ClientClosedError, StopAsyncIteration):
            raise StopIteration from None

    def _lent_or_call(
        self,
        take: Callable[[], T | None],
        refill: Callable[[], Awaitable[object]],
        func: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """For a method that, called with no arguments, returns the next lent item (the
        consumer's ``getone()``): that item from the chunk (:meth:`_take_lent`); with
        arguments (a selection the chunks cannot serve), ``func`` through the portal."""
        if args or kwargs:
            return self._call(func, *args, **kwargs)
        return self._take_lent(take, refill)

    def _shutdown(self, closer: Callable[[], Awaitable[object]] | None = None) -> None:
        """``close()``: cancel calls in flight, then let the host task run ``closer``
        (e.g. a producer's ``close(timeout)``) and ``__aexit__``, then release the lease.

        Idempotent; a second concurrent close returns at once.
        """
        if self._portal is None:
            return
        self._check_thread()
        with self._lock:
            if self._closing:
                return
            self._closing = True
            pending = list(self._inflight)
        for future in pending:
            future.cancel()
        portal, host = self._portal, self._host
        assert host is not None and host.done is not None
        try:
            host.closer = closer
            portal.call(host.leave.set)
            self._wait(host.done)
        finally:
            self._portal = self._host = None
            _PROVIDER.__exit__(None, None, None)

    # -- context manager: the client is already open; ``with`` only closes it ----------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._shutdown()


class LoopFuture(Protocol[T_co]):
    """A future that lives on the loop (a producer's ``DeliveryFuture``): not thread-safe."""

    def result(self) -> T_co: ...

    def add_done_callback(self, callback: Callable[[Any], object]) -> object: ...


def returns_future(
    func: Callable[P, Awaitable[LoopFuture[T]]],
) -> Callable[P, Awaitable[Future[T]]]:
    """Adapt an async method returning a loop-side future into one returning a
    thread-safe ``concurrent.futures.Future`` (``.result(timeout)``, callbacks).

    For ``Producer.send``: ``return self._call(returns_future(self._impl.send), ...)``.
    The bridge is attached inside the same portal call, on the loop thread that owns
    the loop-side future. The returned future is already "running", so ``cancel()``
    is refused: a record handed to the producer cannot be taken back. Its callbacks
    run on the loop thread (or at once in the caller's thread if already done).
    """

    @functools.wraps(func)
    async def bridged(*args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return _bridge(await func(*args, **kwargs))

    return bridged


def returns_futures(
    func: Callable[P, Awaitable[Sequence[LoopFuture[T]]]],
) -> Callable[P, Awaitable[list[Future[T]]]]:
    """:func:`returns_future` for methods returning several (``send_many``)."""

    @functools.wraps(func)
    async def bridged(*args: P.args, **kwargs: P.kwargs) -> list[Future[T]]:
        return [_bridge(source) for source in await func(*args, **kwargs)]

    return bridged


def _bridge(source: LoopFuture[T]) -> Future[T]:
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()

    def transfer(done: LoopFuture[T]) -> None:
        try:
            future.set_result(done.result())
        except BaseException as exc:
            future.set_exception(exc)

    source.add_done_callback(transfer)
    return future


class _Host:
    """Holds one async client open in one task: enter, wait, close, all in that task.

    Built on the loop thread (``leave`` is an anyio event of that loop).
    """

    def __init__(self, impl: AbstractAsyncContextManager[Any]) -> None:
        self.impl = impl
        self.entered: Future[None] = Future()
        self.leave = anyio.Event()
        self.closer: Callable[[], Awaitable[object]] | None = None
        self.done: Future[None] | None = None

    async def run(self) -> None:
        try:
            await self.impl.__aenter__()
        except BaseException as exc:
            self.entered.set_exception(exc)
            raise
        self.entered.set_result(None)
        try:
            await self.leave.wait()
        finally:
            try:
                if self.closer is not None:
                    await self.closer()
            finally:
                await self.impl.__aexit__(None, None, None)


def _name_loop_thread() -> None:
    """Runs on the loop thread: mark it for the guard, name it for debugging."""
    _mark_loop_thread()
    threading.current_thread().name = "kclient-portal"
