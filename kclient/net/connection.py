"""One connection to one broker: drives ``protocol.framing`` over an anyio stream.

Theory of operation
-------------------
* Writers encode and write a whole frame while holding ``_write_lock``, so
  frames never interleave and correlation ids go out in order.
* One reader task per connection feeds bytes to the framing state and hands
  each response to the waiter registered under its correlation id.
* ``_slots`` bounds the requests in flight (``max_in_flight_requests_per_connection``);
  a slot is held from before the write until the response (or failure).

Cancellation safety (the stream must never desynchronise):

* The write of a frame is shielded from the caller's cancellation but bounded by
  ``request_timeout_ms``. A write that does not complete (timeout or error) may
  have left half a frame on the wire, so the connection is closed: the next
  request can never be spliced into the old frame.
* A caller cancelled or timed out while waiting for its response only marks its
  waiter abandoned; the reader still consumes that response and drops it.
* A request timeout closes the connection (as the Java client does): a broker
  that did not answer in time is presumed stuck, and the caller retries on a new
  connection. A caller that times out while only waiting for a free slot wrote
  nothing, so the connection stays.
* A frame with a bad size prefix or an unknown correlation id closes the
  connection and fails every request in flight with a retriable
  :class:`KafkaConnectionError` (``request_sent=True``: the outcome is unknown).

Handshake (inside the connect timeout): ApiVersions (with fallback), then SASL
if configured. Until it finishes, frames above 64 KiB are rejected: a peer that
is not a Kafka broker (a TLS or HTTP port) is caught before it can make us
allocate a huge buffer. KIP-368 re-authentication pauses new writes, waits for
the requests in flight to finish and re-runs SASL on the same connection.
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio
import anyio.abc

from kclient._clock import now_ms
from kclient.config import CommonConfig, parse_address
from kclient.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from kclient.net.auth import SaslSettings, authenticate, reauth_delay_ms
from kclient.net.throttle import client_throttle_ms
from kclient.net.tls import build_ssl_context
from kclient.net.transport import BrokerAddress, TcpTransport, Transport, map_exceptions
from kclient.net.versions import (
    ApiVersionTable,
    api_versions_request,
    first_api_versions_version,
    handle_api_versions_response,
)
from protocol._errors_base import FramingError
from protocol.api import Request, Response
from protocol.framing import KafkaConnectionState

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["PRE_AUTH_MAX_FRAME_BYTES", "BrokerConnection", "ConnectionSettings", "connect"]

log = logging.getLogger("kclient.net.connection")

PRE_AUTH_MAX_FRAME_BYTES = 64 * 1024
_READ_SIZE = 65536
_MAX_API_VERSIONS_TRIES = 3


@dataclass(frozen=True)
class ConnectionSettings:
    """What a connection needs from the config, resolved once."""

    client_id: str = "kclient"
    request_timeout_ms: float = 30000
    connect_timeout_ms: float = 10000
    max_in_flight: int = 5
    max_frame_bytes: int = 100 * 1024 * 1024
    ssl_context: ssl.SSLContext | None = None
    sasl: SaslSettings | None = None

    @classmethod
    def from_config(cls, config: CommonConfig) -> ConnectionSettings:
        return cls(
            client_id=config.client_id,
            request_timeout_ms=config.request_timeout_ms,
            connect_timeout_ms=config.socket_connection_setup_timeout_ms,
            max_in_flight=config.max_in_flight_requests_per_connection,
            max_frame_bytes=config.receive_message_max_bytes,
            ssl_context=build_ssl_context(config),
            sasl=SaslSettings.from_config(config),
        )


class _Waiter:
    """Rendezvous between the reader task and one caller."""

    __slots__ = ("abandoned", "error", "event", "response")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.response: Response | None = None
        self.error: KafkaError | None = None
        self.abandoned = False

    def result(self) -> Response:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class BrokerConnection:
    """A live, negotiated connection. Build it with :func:`open_connection` or :func:`connect`."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        address: BrokerAddress,
        settings: ConnectionSettings,
        *,
        clock: Callable[[], float] = now_ms,
    ) -> None:
        self.address = address
        self.versions: ApiVersionTable | None = None
        self._stream = stream
        self._settings = settings
        self._clock = clock
        self._framing = KafkaConnectionState(
            settings.client_id, max_frame_bytes=PRE_AUTH_MAX_FRAME_BYTES
        )
        self._waiters: dict[int, _Waiter] = {}
        self._drain_events: list[anyio.Event] = []
        self._write_lock = anyio.Lock()
        self._slots = anyio.Semaphore(settings.max_in_flight)
        self._gate_open = anyio.Event()
        self._gate_open.set()
        self._closed_reason: str | None = None
        self._reader_scope: anyio.CancelScope | None = None
        self._reader_done = anyio.Event()
        self._reader_started = False
        self._ready = False
        self._reauth_at_ms: float | None = None
        self.last_used_ms = clock()
        # KIP-219: no new request before this time (the broker asked us to back off)
        self.throttled_until_ms = 0.0
        self._closed_event = anyio.Event()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("ready" if self._ready else "handshaking")
        return f"<BrokerConnection {self.address} node={self.address.node_id} {state}>"

    # -- state ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    @property
    def ready(self) -> bool:
        return self._ready and not self.closed

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    def idle_ms(self, now: float) -> float:
        """How long the connection has had nothing in flight (0 while busy)."""
        return 0.0 if self._waiters else max(0.0, now - self.last_used_ms)

    # -- public requests ---------------------------------------------------------------

    async def request(
        self, request: Request, *, version: int | None = None, timeout_ms: float | None = None
    ) -> Response:
        """Send ``request`` (at the negotiated version unless given) and await its response."""
        if not self._ready:
            raise IllegalStateError("connection handshake has not completed")
        self._raise_if_closed(request_sent=False)
        if version is None:
            assert self.versions is not None
            version = self.versions.version_for(type(request))
        await self._maybe_reauthenticate()
        return await self._roundtrip(request, version, timeout_ms)

    async def send_without_response(self, request: Request, *, version: int | None = None) -> None:
        """Write a request the broker will not answer (Produce with acks=0)."""
        if not self._ready:
            raise IllegalStateError("connection handshake has not completed")
        if version is None:
            assert self.versions is not None
            version = self.versions.version_for(type(request))
        await self._maybe_reauthenticate()
        with _request_timeout(self, request, version, self._settings.request_timeout_ms):
            await self._gate_open.wait()
            await self._write(request, version, expect_response=False)

    async def exchange(self, request: Request, version: int) -> Response:
        """A handshake round trip (ApiVersions, SASL): bypasses the re-auth gate."""
        return await self._roundtrip(request, version, None, bypass_gate=True)

    async def aclose(self) -> None:
        """Close the connection; requests in flight fail with KafkaConnectionError."""
        self._fail("closed by the client")
        if self._reader_started:
            await self._reader_done.wait()
        else:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    # -- request machinery ------------------------------------------------------------------

    async def _roundtrip(
        self,
        request: Request,
        version: int,
        timeout_ms: float | None,
        *,
        bypass_gate: bool = False,
    ) -> Response:
        timeout = self._settings.request_timeout_ms if timeout_ms is None else timeout_ms
        waiter: _Waiter | None = None
        try:
            with _request_timeout(self, request, version, timeout, lambda: waiter is not None):
                if not bypass_gate:
                    await self._gate_open.wait()
                    await self._wait_throttle()
                async with self._slots:
                    waiter = await self._write(request, version, expect_response=True)
                    assert waiter is not None
                    await waiter.event.wait()
        finally:
            if waiter is not None and not waiter.event.is_set():
                waiter.abandoned = True  # the reader will consume and drop its response
        return waiter.result()

    async def _wait_throttle(self) -> None:
        """Hold the request back while the broker throttles us (KIP-219).

        Runs inside the caller's request timeout, so the deadline interrupts it;
        closing the connection interrupts it too (the request was never sent).
        """
        while (delay := self.throttled_until_ms - self._clock()) > 0:
            with anyio.move_on_after(delay / 1000):
                await self._closed_event.wait()
            self._raise_if_closed(request_sent=False)

    async def _write(
        self, request: Request, version: int, *, expect_response: bool
    ) -> _Waiter | None:
        async with self._write_lock:
            self._raise_if_closed(request_sent=False)
            correlation_id, frame = self._framing.send_request(
                request, version, expect_response=expect_response
            )
            waiter = _Waiter() if expect_response else None
            if waiter is not None:
                self._waiters[correlation_id] = waiter
            await self._send_frame(frame)
            self.last_used_ms = self._clock()
            return waiter

    async def _send_frame(self, frame: bytes) -> None:
        completed = False
        deadline = anyio.current_time() + self._settings.request_timeout_ms / 1000
        try:
            with anyio.CancelScope(shield=True, deadline=deadline):
                with map_exceptions(self.address, phase="write"):
                    await self._stream.send(frame)
                    completed = True
        except KafkaError as exc:
            self._fail(f"write failed: {exc}")
            raise
        if not completed:
            reason = (
                "a request could not be written within request_timeout_ms; closing the "
                "connection so that no later request is spliced into the partial frame"
            )
            self._fail(reason)
            raise KafkaConnectionError(
                reason, address=str(self.address), origin=self.address.origin, request_sent=None
            )

    def _raise_if_closed(self, *, request_sent: bool | None) -> None:
        if self._closed_reason is not None:
            raise KafkaConnectionError(
                f"connection is closed ({self._closed_reason})",
                address=str(self.address),
                origin=self.address.origin,
                request_sent=request_sent,
            )

    # -- reader ---------------------------------------------------------------------------

    async def run_reader(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The reader task: deliver responses until the connection closes."""
        self._reader_started = True
        try:
            with anyio.CancelScope() as scope:
                self._reader_scope = scope
                task_status.started()
                if self._closed_reason is None:
                    await self._read_until_closed()
        finally:
            self._fail("reader stopped")
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            self._reader_done.set()

    async def _read_until_closed(self) -> None:
        try:
            with map_exceptions(self.address, phase="read"):
                while True:
                    try:
                        data = await self._stream.receive(_READ_SIZE)
                    except anyio.EndOfStream:
                        self._fail(self._eof_reason())
                        return
                    self._on_data(data)
        except FramingError as exc:
            log.warning("closing connection to %s: %s", self.address, exc)
            self._fail(f"stream out of sync or not Kafka: {exc}")
        except KafkaError as exc:
            self._fail(str(exc))

    def _eof_reason(self) -> str:
        if self._ready:
            return "connection closed by the broker"
        hint = "; if the listener uses TLS, use security_protocol SSL or SASL_SSL"
        if self._settings.ssl_context is not None:
            hint = ""
        return "connection closed by the broker during the handshake" + hint

    def _on_data(self, data: bytes) -> None:
        self.last_used_ms = self._clock()
        self._framing.receive_data(data)
        while (item := self._framing.next_response()) is not None:
            waiter = self._waiters.pop(item.correlation_id, None)
            if waiter is None or waiter.abandoned:
                log.debug("dropping response %d (caller gone)", item.correlation_id)
            elif item.error is not None:
                waiter.error = item.error  # the body did not decode; the stream is still in sync
                waiter.event.set()
            else:
                waiter.response = item.response
                waiter.event.set()
            if item.response is not None:
                self._note_throttle(item.response, item.api_version)
        if not self._waiters:
            self._signal_drained()

    def _note_throttle(self, response: Response, version: int) -> None:
        throttle = client_throttle_ms(response, version)
        if throttle > 0:
            until = self._clock() + throttle
            if until > self.throttled_until_ms:
                log.debug("%s throttles this client for %d ms", self.address, throttle)
                self.throttled_until_ms = until

    def _signal_drained(self) -> None:
        events, self._drain_events = self._drain_events, []
        for event in events:
            event.set()

    def _fail(self, reason: str) -> None:
        """Mark closed, fail every waiter, stop the reader. Idempotent; never awaits."""
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._closed_event.set()
        level = (
            logging.DEBUG if reason in ("closed by the client", "reader stopped") else logging.INFO
        )
        log.log(
            level,
            "connection to %s (node %d) closed: %s",
            self.address,
            self.address.node_id,
            reason,
        )
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.error = KafkaConnectionError(
                f"connection closed with the request in flight ({reason})",
                address=str(self.address),
                origin=self.address.origin,
                request_sent=True,
            )
            waiter.event.set()
        self._signal_drained()
        self._gate_open.set()
        if self._reader_scope is not None:
            self._reader_scope.cancel()

    # -- handshake and re-authentication ----------------------------------------------------

    async def handshake(self) -> None:
        """ApiVersions, then SASL if configured. Call once, right after the reader started."""
        version = first_api_versions_version()
        for _ in range(_MAX_API_VERSIONS_TRIES):
            response = await self.exchange(api_versions_request(), version)
            step = handle_api_versions_response(response, version, node=str(self.address))  # type: ignore[arg-type]
            if isinstance(step, ApiVersionTable):
                self.versions = step
                break
            log.debug(
                "%s: ApiVersions v%d unsupported, retrying at v%d", self.address, version, step
            )
            version = step
        else:
            raise KafkaConnectionError(
                "ApiVersions negotiation did not converge", address=str(self.address)
            )
        await self._authenticate()
        self._framing.max_frame_bytes = self._settings.max_frame_bytes
        self._ready = True
        log.info("connected to %s (node %d)", self.address, self.address.node_id)

    async def _authenticate(self) -> None:
        if self._settings.sasl is None:
            return
        lifetime = await authenticate(self, self._settings.sasl)
        delay = reauth_delay_ms(lifetime, random.random())
        self._reauth_at_ms = None if delay is None else self._clock() + delay

    async def _maybe_reauthenticate(self) -> None:
        if self._reauth_at_ms is None or self._clock() < self._reauth_at_ms:
            return
        if not self._gate_open.is_set():
            return  # another task is already re-authenticating; the gate makes us wait
        self._gate_open = anyio.Event()  # new writes wait here
        try:
            while self._waiters:
                drained = anyio.Event()
                self._drain_events.append(drained)
                await drained.wait()
            self._raise_if_closed(request_sent=False)
            self._framing.max_frame_bytes = PRE_AUTH_MAX_FRAME_BYTES
            log.debug("%s: re-authenticating (KIP-368)", self.address)
            await self._authenticate()
            self._framing.max_frame_bytes = self._settings.max_frame_bytes
        except BaseException:
            self._fail("re-authentication failed")
            raise
        finally:
            self._gate_open.set()


@contextlib.contextmanager
def _request_timeout(
    conn: BrokerConnection,
    request: Request,
    version: int,
    timeout_ms: float,
    written: Callable[[], bool] = lambda: True,
) -> Iterator[None]:
    """Bound a request by ``timeout_ms``; a timeout after the write closes the connection."""
    try:
        with anyio.fail_after(timeout_ms / 1000):
            yield
    except TimeoutError:
        what = f"{request.API_NAME} v{version}"
        if written():
            conn._fail(f"no response to {what} within {timeout_ms:.0f} ms")
            raise KafkaTimeoutError(
                f"{conn.address}: no response to {what} within {timeout_ms:.0f} ms "
                "(request_timeout_ms); the connection was closed and the request may be retried"
            ) from None
        cause = "stayed at its limit of requests in flight"
        if conn.throttled_until_ms > conn._clock():
            cause = "is throttled by the broker (quota exceeded, KIP-219)"
        raise KafkaTimeoutError(
            f"{conn.address}: {what} was not sent within {timeout_ms:.0f} ms: the connection "
            + cause
        ) from None


async def open_connection(
    task_group: anyio.abc.TaskGroup,
    address: BrokerAddress,
    settings: ConnectionSettings,
    *,
    transport: Transport | None = None,
) -> BrokerConnection:
    """Connect, start the reader in ``task_group`` and run the handshake, all within
    the connect timeout. On any failure nothing is left open."""
    transport = transport or TcpTransport()
    timeout_s = settings.connect_timeout_ms / 1000
    conn: BrokerConnection | None = None
    try:
        with anyio.fail_after(timeout_s):
            stream = await transport.connect(address, settings.ssl_context)
            conn = BrokerConnection(stream, address, settings)
            await task_group.start(conn.run_reader)
            await conn.handshake()
    except TimeoutError:
        if conn is not None:
            await conn.aclose()
        phase = "TCP/TLS connect" if conn is None else "the ApiVersions/SASL handshake"
        hint = ""
        if conn is None and settings.ssl_context is not None:
            # a plaintext listener reads our ClientHello as a giant frame size and waits
            hint = "; if the listener is plaintext, use security_protocol PLAINTEXT/SASL_PLAINTEXT"
        raise KafkaTimeoutError(
            f"{address} (from {address.origin}): {phase} did not finish within "
            f"{settings.connect_timeout_ms:.0f} ms (socket_connection_setup_timeout_ms){hint}"
        ) from None
    except BaseException:
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await conn.aclose()
        raise
    return conn


@contextlib.asynccontextmanager
async def connect(
    address: BrokerAddress | str,
    settings: ConnectionSettings | None = None,
    *,
    transport: Transport | None = None,
) -> AsyncIterator[BrokerConnection]:
    """``async with connect("127.0.0.1:9092") as conn:`` - a connection with its own reader task."""
    if isinstance(address, str):
        host, port = parse_address(address)
        address = BrokerAddress(host, port)
    try:
        async with anyio.create_task_group() as tg:
            conn = await open_connection(
                tg, address, settings or ConnectionSettings(), transport=transport
            )
            try:
                yield conn
            finally:
                await conn.aclose()
    except BaseExceptionGroup as group:
        # the reader task never raises, so a group here wraps the body's one error
        raise _single(group) from None


def _single(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group
