"""ChaosProxy: a loopback TCP proxy that injects network faults in front of a broker.

Put it between a client and any Kafka listener (Tansu, the MockCluster, a real
broker on loopback) and point the client at ``proxy.address``::

    async with ChaosProxy(upstream="127.0.0.1:9092", cut_every_requests=50) as proxy:
        ...  # bootstrap the client with proxy.address

Faults:

* ``cut_every_bytes=N``: close both sides once N more bytes (both directions
  together) have passed on a connection.
* ``cut_every_requests=N``: on every Nth request frame of a connection, cut
  either in the middle of that request (the broker never sees it) or in the
  middle of its response (the broker applied it, the client cannot know:
  the ambiguous outcome). The two alternate, starting with mid-request.
* ``trickle_responses=True``: deliver broker bytes one byte at a time with
  random pauses up to ``trickle_max_pause`` seconds.
* ``latency``: seconds added before each forwarded chunk, both directions.
* ``blackhole``: accept and read, never forward or answer (togglable live).

Bounds, so a test under chaos always converges: at most ``max_cuts`` cuts over
the proxy's life, and no fault at all after ``active_for`` seconds from
start. Upstreams must be loopback addresses; anything else is refused.

The decisions (where a cut falls) are made by pure objects fed with bytes and
``now``; only :class:`ChaosProxy` awaits.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

__all__ = ["ChaosPlan", "ChaosProxy", "ChaosStats", "CutKind", "FrameScanner"]

_REQUEST_HEAD = 12  # size, api_key, api_version, correlation_id
_RESPONSE_HEAD = 8  # size, correlation_id
_READ_SIZE = 65536


def parse_loopback_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` and refuse any host that is not a loopback address.

    The proxy exists to break connections on purpose; refusing non-loopback
    upstreams keeps it from ever being pointed at shared infrastructure.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"upstream must be 'host:port', got {address!r}")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"upstream host must be a loopback IP or 'localhost', got {host!r}"
        ) from None
    if not ip.is_loopback:
        raise ValueError(f"ChaosProxy only proxies loopback upstreams, got {host!r}")
    return host, int(port_text)


@dataclass(slots=True, frozen=True)
class FrameHead:
    """Where one size-prefixed frame starts in a stream, and its correlation id."""

    start: int  # absolute stream offset of the size prefix
    size: int  # value of the size prefix (bytes after it)
    correlation_id: int  # -1 when the frame is too short to hold one


class FrameScanner:
    """Follows int32 size-prefixed frames across arbitrary chunk boundaries.

    ``feed`` takes the next chunk and reports every frame whose head became
    complete inside it. Request heads are size, api key, api version and
    correlation id; response heads are size and correlation id, so the
    correlation id sits at a different offset per direction.
    """

    def __init__(self, *, requests: bool) -> None:
        self._head_len = _REQUEST_HEAD if requests else _RESPONSE_HEAD
        self._corr_at = 8 if requests else 4
        self.position = 0  # absolute offset of the next byte to be fed
        self._frame_start = 0
        self._head = bytearray()
        self._frame_end: int | None = None  # absolute end of the current frame once sized

    def feed(self, chunk: bytes) -> list[FrameHead]:
        heads: list[FrameHead] = []
        i = 0
        while i < len(chunk):
            if self._frame_end is not None and self.position >= self._frame_end:
                self._start_frame()
            if self._frame_end is None or len(self._head) < self._needed():
                want = self._needed() - len(self._head)
                taken = chunk[i : i + want]
                self._head += taken
                i += len(taken)
                self.position += len(taken)
                head = self._on_head_bytes()
                if head is not None:
                    heads.append(head)
                continue
            skip = min(len(chunk) - i, self._frame_end - self.position)
            i += skip
            self.position += skip
        if self._frame_end is not None and self.position >= self._frame_end:
            self._start_frame()
        return heads

    def _start_frame(self) -> None:
        self._frame_start = self.position
        self._head = bytearray()
        self._frame_end = None

    def _needed(self) -> int:
        if self._frame_end is None:
            return 4
        return min(self._head_len, self._frame_end - self._frame_start)

    def _on_head_bytes(self) -> FrameHead | None:
        if self._frame_end is None:
            if len(self._head) < 4:
                return None
            (size,) = struct.unpack(">i", self._head[:4])
            # A negative size means the stream is not Kafka; treat it as empty
            # so scanning carries on instead of raising inside the proxy.
            self._frame_end = self._frame_start + 4 + max(size, 0)
            if len(self._head) < self._needed():
                return None
        if len(self._head) < self._needed():
            return None
        size = self._frame_end - self._frame_start - 4
        corr = -1
        if len(self._head) >= self._corr_at + 4:
            (corr,) = struct.unpack(">i", self._head[self._corr_at : self._corr_at + 4])
        return FrameHead(self._frame_start, size, corr)


class CutKind(Enum):
    MID_REQUEST = "mid-request"
    MID_RESPONSE = "mid-response"
    BYTES = "bytes"


@dataclass(slots=True)
class ChaosStats:
    connections: int = 0
    cuts: int = 0
    cut_kinds: list[CutKind] = field(default_factory=list)
    bytes_to_upstream: int = 0
    bytes_to_client: int = 0
    requests: int = 0


@dataclass(slots=True)
class ChaosSettings:
    cut_every_bytes: int | None = None
    cut_every_requests: int | None = None
    trickle_responses: bool = False
    trickle_max_pause: float = 0.005
    latency: float = 0.0
    blackhole: bool = False
    max_cuts: int | None = 100
    active_for: float | None = 60.0


class ChaosPlan:
    """Shared, pure fault budget and alternation across all connections."""

    def __init__(self, settings: ChaosSettings, started: float) -> None:
        self.settings = settings
        self.started = started
        self.stats = ChaosStats()
        self._next_kind = CutKind.MID_REQUEST
        self.healed = False

    def active(self, now: float) -> bool:
        if self.healed:
            return False
        limit = self.settings.active_for
        return limit is None or now - self.started < limit

    def may_cut(self, now: float) -> bool:
        budget = self.settings.max_cuts
        return self.active(now) and (budget is None or self.stats.cuts < budget)

    def take_request_cut_kind(self) -> CutKind:
        kind = self._next_kind
        self._next_kind = (
            CutKind.MID_RESPONSE if kind is CutKind.MID_REQUEST else CutKind.MID_REQUEST
        )
        return kind

    def record_cut(self, kind: CutKind) -> None:
        self.stats.cuts += 1
        self.stats.cut_kinds.append(kind)


class ConnectionPlan:
    """Decides, per chunk, how many bytes to forward before cutting one connection."""

    def __init__(self, plan: ChaosPlan) -> None:
        self._plan = plan
        self._up = FrameScanner(requests=True)
        self._down = FrameScanner(requests=False)
        self._bytes_seen = 0
        self._requests = 0
        self._cut_request_at: int | None = None  # absolute upstream offset
        self._cut_response_from: int | None = None  # correlation id
        self._cut_response_at: int | None = None  # absolute downstream offset

    def upstream_chunk(self, chunk: bytes, now: float) -> int | None:
        """Bytes of ``chunk`` to forward before cutting, or None for no cut."""
        begin = self._up.position
        for head in self._up.feed(chunk):
            self._on_request(head, now)
        return self._choose(begin, chunk, now, self._cut_request_at, CutKind.MID_REQUEST)

    def downstream_chunk(self, chunk: bytes, now: float) -> int | None:
        begin = self._down.position
        for head in self._down.feed(chunk):
            target = self._cut_response_from
            if (
                target is not None
                and head.correlation_id >= target
                and self._cut_response_at is None
            ):
                self._cut_response_at = head.start + max(1, (4 + head.size) // 2)
        return self._choose(begin, chunk, now, self._cut_response_at, CutKind.MID_RESPONSE)

    def _choose(
        self, begin: int, chunk: bytes, now: float, frame_cut: int | None, kind: CutKind
    ) -> int | None:
        candidates: list[tuple[int, CutKind]] = []
        by_bytes = self._bytes_cut(len(chunk), now)
        if by_bytes is not None:
            candidates.append((by_bytes, CutKind.BYTES))
        if frame_cut is not None and frame_cut < begin + len(chunk):
            candidates.append((max(0, frame_cut - begin), kind))
        if not candidates:
            return None
        at, chosen = min(candidates, key=lambda c: c[0])
        self._plan.record_cut(chosen)
        return at

    def _on_request(self, head: FrameHead, now: float) -> None:
        self._requests += 1
        self._plan.stats.requests += 1
        every = self._plan.settings.cut_every_requests
        if every is None or self._requests % every != 0 or not self._plan.may_cut(now):
            return
        if self._cut_request_at is not None or self._cut_response_from is not None:
            return  # one cut already planned on this connection
        if self._plan.take_request_cut_kind() is CutKind.MID_REQUEST:
            self._cut_request_at = head.start + max(1, (4 + head.size) // 2)
        else:
            self._cut_response_from = head.correlation_id

    def _bytes_cut(self, length: int, now: float) -> int | None:
        every = self._plan.settings.cut_every_bytes
        seen = self._bytes_seen
        self._bytes_seen += length
        if every is None or seen + length < every or not self._plan.may_cut(now):
            return None
        return max(0, every - seen)


class _Cut(Exception):
    """Raised inside a pump to tear down both sides of one proxied connection."""


class ChaosProxy:
    """Async context manager running the proxy on an ephemeral 127.0.0.1 port."""

    def __init__(
        self,
        upstream: str,
        *,
        cut_every_bytes: int | None = None,
        cut_every_requests: int | None = None,
        trickle_responses: bool = False,
        trickle_max_pause: float = 0.005,
        latency: float = 0.0,
        blackhole: bool = False,
        max_cuts: int | None = 100,
        active_for: float | None = 60.0,
        seed: int | None = None,
    ) -> None:
        self.upstream_host, self.upstream_port = parse_loopback_address(upstream)
        for name, value in (
            ("cut_every_bytes", cut_every_bytes),
            ("cut_every_requests", cut_every_requests),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.settings = ChaosSettings(
            cut_every_bytes=cut_every_bytes,
            cut_every_requests=cut_every_requests,
            trickle_responses=trickle_responses,
            trickle_max_pause=trickle_max_pause,
            latency=latency,
            blackhole=blackhole,
            max_cuts=max_cuts,
            active_for=active_for,
        )
        self._random = random.Random(seed)
        self._plan: ChaosPlan | None = None
        self._port: int | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._listener: anyio.abc.SocketListener | None = None
        self._connections: set[anyio.CancelScope] = set()

    # -- public surface ----------------------------------------------------------

    @property
    def address(self) -> str:
        if self._port is None:
            raise RuntimeError("ChaosProxy is not running; use 'async with'")
        return f"127.0.0.1:{self._port}"

    @property
    def stats(self) -> ChaosStats:
        return self._running_plan().stats

    def set_blackhole(self, enabled: bool) -> None:
        """Start or stop swallowing traffic on all connections, live."""
        self.settings.blackhole = enabled

    def heal(self) -> None:
        """Stop every fault for the rest of the proxy's life."""
        self._running_plan().healed = True

    def cut_all(self) -> None:
        """Close every proxied connection now (does not count against max_cuts)."""
        for scope in list(self._connections):
            scope.cancel()

    async def __aenter__(self) -> ChaosProxy:
        multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        listener = multi.listeners[0]  # one address family: IPv4 loopback
        assert isinstance(listener, anyio.abc.SocketListener)
        self._port = int(listener.extra(SocketAttribute.local_port))
        self._plan = ChaosPlan(self.settings, anyio.current_time())
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._listener = listener
        self._task_group.start_soon(self._accept_loop, listener)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        if self._listener is not None:
            # Closed here, not in the serving task: a task cancelled before it
            # first ran would otherwise leak the listening socket.
            await self._listener.aclose()
        self._listener = None
        self._task_group = None
        self._port = None

    # -- I/O ---------------------------------------------------------------------

    def _running_plan(self) -> ChaosPlan:
        if self._plan is None:
            raise RuntimeError("ChaosProxy is not running; use 'async with'")
        return self._plan

    async def _accept_loop(self, listener: anyio.abc.SocketListener) -> None:
        # Not listener.serve(): a stream accepted just before shutdown whose handler
        # never ran would be leaked; here every accepted stream is closed on exit.
        accepted: set[anyio.abc.SocketStream] = set()

        async def handle(client: anyio.abc.SocketStream) -> None:
            try:
                await self._handle(client)
            finally:
                accepted.discard(client)

        try:
            async with anyio.create_task_group() as tg:
                while True:
                    try:
                        client = await listener.accept()
                    except anyio.ClosedResourceError:
                        return
                    accepted.add(client)
                    tg.start_soon(handle, client)
        finally:
            for client in list(accepted):
                await anyio.aclose_forcefully(client)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        plan = self._running_plan()
        plan.stats.connections += 1
        async with client:
            try:
                upstream = await anyio.connect_tcp(self.upstream_host, self.upstream_port)
            except OSError:
                return  # upstream down: the client sees its connection closed
            async with upstream:
                await self._pump_pair(client, upstream, ConnectionPlan(plan))

    async def _pump_pair(
        self,
        client: anyio.abc.SocketStream,
        upstream: anyio.abc.SocketStream,
        conn: ConnectionPlan,
    ) -> None:
        with anyio.CancelScope() as scope:
            self._connections.add(scope)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pump, client, upstream, conn.upstream_chunk, False, scope)
                    tg.start_soon(self._pump, upstream, client, conn.downstream_chunk, True, scope)
            finally:
                self._connections.discard(scope)

    async def _pump(
        self,
        source: anyio.abc.SocketStream,
        sink: anyio.abc.SocketStream,
        decide: Callable[[bytes, float], int | None],
        to_client: bool,
        scope: anyio.CancelScope,
    ) -> None:
        plan = self._running_plan()
        try:
            while True:
                try:
                    chunk = await source.receive(_READ_SIZE)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break
                now = anyio.current_time()
                if self.settings.blackhole and plan.active(now):
                    continue
                cut = decide(chunk, now)
                if cut is not None:
                    chunk = chunk[:cut]
                await self._forward(sink, chunk, to_client, plan, now)
                if cut is not None:
                    break
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        # Either side ending (EOF, error or cut) ends the whole connection:
        # Kafka connections are not half-closed.
        scope.cancel()

    async def _forward(
        self,
        sink: anyio.abc.SocketStream,
        chunk: bytes,
        to_client: bool,
        plan: ChaosPlan,
        now: float,
    ) -> None:
        if not chunk:
            return
        active = plan.active(now)
        if active and self.settings.latency > 0:
            await anyio.sleep(self.settings.latency)
        if to_client:
            plan.stats.bytes_to_client += len(chunk)
        else:
            plan.stats.bytes_to_upstream += len(chunk)
        if not (to_client and active and self.settings.trickle_responses):
            await sink.send(chunk)
            return
        for i in range(len(chunk)):
            await sink.send(chunk[i : i + 1])
            await anyio.sleep(self._random.uniform(0, self.settings.trickle_max_pause))
