"""The I/O half of the mock: one connection loop per client, shared by TCP and memory.

Per connection, requests are handled strictly one at a time and answered in
order, like a real broker that mutes a connection while a request is in
progress (a parked JoinGroup therefore holds back later requests on the same
connection, as it does on Kafka).

Per request::

    frame -> header -> journal -> drop BEFORE? -> handler (pure, no await)
          -> drop AFTER? -> park / fetch wait -> injected delay -> rewrite? -> response

Anything the handlers do not understand closes the connection, as Kafka does
(except ApiVersions, which is answered in v0 with UNSUPPORTED_VERSION so the
client can downgrade).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

import anyio
import anyio.abc

from kclient.testing.mock.clock import Clock
from kclient.testing.mock.codes import Err
from kclient.testing.mock.faults import DropWhen, FaultPlan, RecordedRequest
from kclient.testing.mock.groups import JoinResult, Reply, SyncResult
from kclient.testing.mock.handlers import HANDLERS, PARKING_HANDLERS, SUPPORTED
from kclient.testing.mock.handlers.common import Ctx, FetchWait, Parked, fit_to_version
from kclient.testing.mock.state import ClusterState
from protocol._errors_base import KafkaProtocolError
from protocol.api import Response
from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY, ApiKey
from protocol.messages.api_versions import ApiVersion, ApiVersionsResponse
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.primitives import Reader

__all__ = ["MockCore", "serve_connection"]

_MAX_FRAME = 100 * 1024 * 1024
_DATA_APIS = {ApiKey.PRODUCE, ApiKey.END_TXN, ApiKey.INIT_PRODUCER_ID, ApiKey.DELETE_RECORDS}


@dataclass
class _Waiter:
    event: anyio.Event = field(default_factory=anyio.Event)
    result: JoinResult | SyncResult | None = None


class _Close(Exception):
    """Close this connection without answering (fault or protocol violation)."""


class MockCore:
    """State, faults and wake-ups shared by every connection of one cluster."""

    def __init__(self, state: ClusterState, faults: FaultPlan, clock: Clock) -> None:
        self.state = state
        self.faults = faults
        self.clock = clock
        self.errors: list[BaseException] = []  # handler crashes: mock bugs, surfaced to tests
        self._waiters: dict[object, _Waiter] = {}
        self._tokens = itertools.count()
        self._data = anyio.Event()

    def deliver(self, replies: list[Reply]) -> None:
        for reply in replies:
            waiter = self._waiters.get(reply.token)
            if waiter is not None and waiter.result is None:
                waiter.result = reply.result
                waiter.event.set()

    def notify_data(self) -> None:
        self._data.set()
        self._data = anyio.Event()

    def tick(self) -> None:
        self.deliver(self.state.tick(self.clock.now_ms()))

    async def wait_parked(self, token: object, waiter: _Waiter) -> JoinResult | SyncResult:
        try:
            await waiter.event.wait()
            assert waiter.result is not None
            return waiter.result
        finally:
            self._waiters.pop(token, None)

    def new_waiter(self) -> tuple[object, _Waiter]:
        token = next(self._tokens)
        waiter = _Waiter()
        self._waiters[token] = waiter
        return token, waiter

    async def wait_fetch(self, wait: FetchWait) -> Response:
        deadline = anyio.current_time() + wait.deadline_s
        while True:
            data_event = self._data
            response, size, commit = wait.build()
            remaining = deadline - anyio.current_time()
            if size >= wait.min_bytes or remaining <= 0:
                commit()
                return response
            with anyio.move_on_after(remaining):
                await data_event.wait()


async def serve_connection(
    core: MockCore, broker: int, stream: anyio.abc.ByteStream, client_host: str
) -> None:
    buffer = bytearray()
    async with stream:
        try:
            while True:
                frame = await _read_frame(stream, buffer)
                if frame is None:
                    return
                reply = await _handle_frame(core, broker, frame, client_host)
                if reply is not None:
                    await stream.send(reply)
        except (_Close, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            return


async def _read_frame(stream: anyio.abc.ByteStream, buffer: bytearray) -> bytes | None:
    while True:
        if len(buffer) >= 4:
            (size,) = struct.unpack(">i", buffer[:4])
            if size < 8 or size > _MAX_FRAME:
                raise _Close
            if len(buffer) >= 4 + size:
                frame = bytes(buffer[4 : 4 + size])
                del buffer[: 4 + size]
                return frame
        try:
            buffer += await stream.receive()
        except anyio.EndOfStream:
            return None


async def _handle_frame(
    core: MockCore, broker: int, frame: bytes, client_host: str
) -> bytes | None:
    api_key, version, correlation_id = struct.unpack(">hhi", frame[:8])
    lo, hi = SUPPORTED.get(api_key, (0, -1))
    if not lo <= version <= hi:
        if api_key == ApiKey.API_VERSIONS:
            return _unsupported_api_versions(correlation_id)
        raise _Close
    reader = Reader(frame)
    try:
        header = RequestHeader.read(reader, request_header_version(api_key, version))
        request = REGISTRY[api_key][0].decode(memoryview(frame)[reader.pos :], version)
    except KafkaProtocolError:
        raise _Close from None
    core.faults.journal.append(RecordedRequest(broker, api_key, version, header.client_id, request))
    drop = core.faults.drop(api_key, broker)
    if drop is DropWhen.BEFORE:
        raise _Close
    ctx = Ctx(
        core.state,
        core.faults,
        broker,
        api_key,
        version,
        header.client_id,
        client_host,
        core.clock.now_ms(),
    )
    delay = core.faults.delay(api_key, broker)
    # Taken on arrival, like the other rules, so "the next n" means requests in order.
    rewrite = core.faults.rewrite(api_key, broker)
    response = await _run_handler(core, ctx, request)
    if drop is DropWhen.AFTER:
        raise _Close
    if delay > 0:
        await anyio.sleep(delay)
    if response is None:
        return None
    if rewrite is not None:
        response = rewrite(response)
    return _encode(response, api_key, version, correlation_id)


async def _run_handler(core: MockCore, ctx: Ctx, request: object) -> Response | None:
    try:
        parking = PARKING_HANDLERS.get(ctx.api_key)
        if parking is not None:
            token, waiter = core.new_waiter()
            parked, replies = parking(ctx, request, token)
            core.deliver(replies)
            return _parked_response(parked, await core.wait_parked(token, waiter))
        outcome = HANDLERS[ctx.api_key](ctx, request)
    except Exception as exc:  # a mock bug: keep it visible to the test, drop the client
        core.errors.append(exc)
        raise _Close from exc
    if ctx.api_key in _DATA_APIS:
        core.notify_data()
    if isinstance(outcome, tuple):  # LeaveGroup: response + woken joins
        response, replies = outcome
        core.deliver(replies)
        return response
    if isinstance(outcome, FetchWait):
        return await core.wait_fetch(outcome)
    if isinstance(outcome, Parked):
        raise AssertionError("only JoinGroup/SyncGroup park")
    return outcome


def _parked_response(parked: Parked, result: JoinResult | SyncResult) -> Response:
    return parked.build(result)


def _encode(response: Response, api_key: int, version: int, correlation_id: int) -> bytes:
    fit_to_version(response, version)
    out = bytearray(4)
    ResponseHeader(correlation_id=correlation_id).write(
        out, response_header_version(api_key, version)
    )
    response.write(out, version)
    struct.pack_into(">i", out, 0, len(out) - 4)
    return bytes(out)


def _unsupported_api_versions(correlation_id: int) -> bytes:
    response = ApiVersionsResponse(
        error_code=Err.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersion(api_key=k, min_version=lo, max_version=hi)
            for k, (lo, hi) in SUPPORTED.items()
        ],
    )
    return _encode(response, ApiKey.API_VERSIONS, 0, correlation_id)
