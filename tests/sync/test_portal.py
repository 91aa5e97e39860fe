"""The portal glue of the sync clients, on a fake async client (no broker needed):
thread lifetime, the loop-thread guard, callers that run their own event loop,
closing while other threads wait, Ctrl-C, and a failed open."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import anyio
import pytest
import trio

from kclient.errors import IllegalStateError
from kclient.sync import ClientClosedError, SyncInEventLoopError
from kclient.sync._portal import PortalClient, portal_running, returns_future


class LoopSideFuture:
    """A minimal stand-in for the producer's ``DeliveryFuture``."""

    def __init__(self) -> None:
        self.value: int | None = None
        self.callbacks: list[Callable[[LoopSideFuture], object]] = []

    def resolve(self, value: int) -> None:
        self.value = value
        for callback in self.callbacks:
            callback(self)

    def result(self) -> int:
        if self.value is None:
            raise RuntimeError("pending")
        if self.value < 0:
            raise ValueError("rejected")
        return self.value

    def add_done_callback(self, callback: Callable[[LoopSideFuture], object]) -> None:
        self.callbacks.append(callback)


class FakeAsync:
    """Stands in for an async client: an async context manager with async methods."""

    def __init__(self, fail_open: bool = False) -> None:
        self.fail_open = fail_open
        self.events: list[str] = []
        self.items = iter(range(3))

    async def __aenter__(self) -> FakeAsync:
        if self.fail_open:
            raise OSError("broker unreachable")
        self.tg = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Leaving the task group fails unless this is the task that entered it.
        await self.tg.__aexit__(None, None, None)
        self.events.append("closed")

    async def echo(self, x: int, *, y: int = 0) -> tuple[int, int]:
        await anyio.sleep(0)
        return x, y

    async def block(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.events.append("cancelled")

    async def run_here(self, fn: Callable[[], object]) -> object:
        return fn()

    async def send(self, value: int) -> LoopSideFuture:
        """Like a producer's send: a loop-side future, resolved later by the loop."""
        delivery = LoopSideFuture()

        async def deliver() -> None:
            await anyio.sleep(0.01)
            delivery.resolve(value)

        self.tg.start_soon(deliver)
        return delivery

    async def __anext__(self) -> int:
        try:
            return next(self.items)
        except StopIteration:
            await anyio.sleep_forever()
            raise


class Fake(PortalClient[FakeAsync]):
    _async_name = "FakeAsync"

    def __init__(self, fail_open: bool = False) -> None:
        self._open(lambda: FakeAsync(fail_open))

    def echo(self, x: int, *, y: int = 0) -> tuple[int, int]:
        return self._call(self._impl.echo, x, y=y)

    def block(self) -> None:
        return self._call(self._impl.block)

    def run_here(self, fn: Callable[[], object]) -> object:
        return self._call(self._impl.run_here, fn)

    def send(self, value: int) -> Future[int]:
        return self._call(returns_future(self._impl.send), value)

    def __iter__(self) -> Fake:
        return self

    def __next__(self) -> int:
        return self._next(self._impl.__anext__)


def wait_until_blocked(thread: threading.Thread | None = None, timeout: float = 5) -> None:
    """Until ``thread`` (default: main) waits inside a portal call: deterministic, no
    sleeps guessing how long the hand-off takes."""
    ident = (thread or threading.main_thread()).ident
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(ident or 0)
        while frame is not None:
            if frame.f_code.co_name == "_wait":
                return
            frame = frame.f_back
        time.sleep(0.002)
    raise AssertionError("the thread never blocked in a portal call")


@pytest.fixture
def fake() -> Iterator[Fake]:
    client = Fake()
    try:
        yield client
    finally:
        client.close()


def test_one_loop_thread_shared_and_stopped_after_last_close() -> None:
    before = threading.active_count()
    a = Fake()
    b = Fake()
    assert threading.active_count() == before + 1 and portal_running()
    assert a.run_here(threading.get_ident) == b.run_here(threading.get_ident)
    a.close()
    assert portal_running() and b.echo(1) == (1, 0)
    b.close()
    assert threading.active_count() == before and not portal_running()


def test_calls_forward_args_results_and_errors(fake: Fake) -> None:
    assert fake.echo(3, y=4) == (3, 4)
    with pytest.raises(ZeroDivisionError):
        fake.run_here(lambda: 1 / 0)
    assert [fake.echo(i)[0] for i in range(3)] == [0, 1, 2]


def test_close_is_idempotent_and_later_calls_fail_clearly() -> None:
    client = Fake()
    with client as same:
        assert same is client
    client.close()
    assert client._impl.events == ["closed"]
    with pytest.raises(ClientClosedError, match="FakeAsync is closed"):
        client.echo(1)
    assert isinstance(ClientClosedError(), IllegalStateError)
    assert list(client) == []  # iteration over a closed client just ends


def test_call_from_the_loop_thread_raises_clear_error(fake: Fake) -> None:
    caught: list[BaseException] = []

    def callback() -> None:  # what a rebalance listener or delivery callback would do
        try:
            fake.echo(1)
        except BaseException as exc:
            caught.append(exc)
        try:
            Fake()  # opening a client there would deadlock too
        except BaseException as exc:
            caught.append(exc)

    fake.run_here(callback)
    assert len(caught) == 2
    for exc in caught:
        assert isinstance(exc, SyncInEventLoopError) and isinstance(exc, RuntimeError)
        assert "sync client used inside its event loop" in str(exc) and "FakeAsync" in str(exc)
    assert fake.echo(2) == (2, 0)  # the client is unharmed


def test_works_when_the_calling_thread_runs_its_own_loop(fake: Fake) -> None:
    """Jupyter: the cell's thread runs an asyncio loop and calls the sync API directly."""

    async def cell() -> tuple[int, int]:
        return fake.echo(5)

    assert asyncio.run(cell()) == (5, 0)
    assert trio.run(cell) == (5, 0)


def test_many_threads_share_one_client(fake: Fake) -> None:
    results: dict[int, list[tuple[int, int]]] = {}

    def worker(n: int) -> None:
        results[n] = [fake.echo(n, y=i) for i in range(50)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {n: [(n, i) for i in range(50)] for n in range(8)}


def test_close_from_another_thread_ends_blocked_calls_and_iteration() -> None:
    client = Fake()
    seen: list[int] = []
    errors: list[BaseException] = []

    def iterate() -> None:
        seen.extend(client)  # three items, then blocks waiting for more

    def block() -> None:
        try:
            client.block()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=iterate), threading.Thread(target=block)]
    for t in threads:
        t.start()
    for t in threads:
        wait_until_blocked(t)
    started = time.monotonic()
    client.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert time.monotonic() - started < 4  # generous: CI runs this on a loaded 2-core box
    assert seen == [0, 1, 2]
    assert len(errors) == 1 and isinstance(errors[0], ClientClosedError)
    assert "cancelled" in client._impl.events and client._impl.events[-1] == "closed"
    assert not portal_running()


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill is POSIX")
def test_ctrl_c_while_blocked_cancels_the_call_and_close_still_works() -> None:
    before = threading.active_count()
    client = Fake()
    main = threading.main_thread()
    assert threading.current_thread() is main  # signals are delivered to the main thread

    def interrupt() -> None:
        wait_until_blocked()
        signal.pthread_kill(main.ident or 0, signal.SIGINT)

    sender = threading.Thread(target=interrupt)
    sender.start()
    with pytest.raises(KeyboardInterrupt), client:
        client.block()
    sender.join(5)
    # the interrupted call was cancelled on the loop, then ``with`` closed the client
    assert client._impl.events == ["cancelled", "closed"]
    assert threading.active_count() == before


def test_failed_open_releases_the_portal() -> None:
    before = threading.active_count()
    with pytest.raises(OSError, match="unreachable"):
        Fake(fail_open=True)
    assert threading.active_count() == before and not portal_running()


def test_open_after_everything_closed_starts_a_fresh_loop() -> None:
    for _ in range(3):
        with Fake() as client:
            assert client.echo(1) == (1, 0)
        assert not portal_running()


def test_loop_side_futures_become_thread_safe_futures(fake: Fake) -> None:
    """The producer's ``send`` returns a delivery; the sync twin returns a concurrent
    Future with ``result(timeout)`` and callbacks (run on the loop thread)."""
    called: list[tuple[str, int]] = []
    ok, bad = fake.send(7), fake.send(-1)
    ok.add_done_callback(lambda f: called.append((threading.current_thread().name, f.result())))
    assert ok.result(timeout=5) == 7
    with pytest.raises(ValueError, match="rejected"):
        bad.result(timeout=5)
    assert not ok.cancel()  # a sent record cannot be taken back
    assert called in ([("kclient-portal", 7)], [(threading.current_thread().name, 7)])
