"""Sans-IO framing for one Kafka connection.

Wire layout of every frame, in both directions::

    int32 size            number of bytes that follow
    header                RequestHeader v0-2 / ResponseHeader v0-1
    body                  the request or response at the negotiated version

The header version depends on the API and its version (see ``protocol.headers``);
a response carries only the correlation id, so this state remembers, per id,
which API and version the response must be decoded as.

Kafka answers requests on one connection strictly in the order they were sent,
so a response whose correlation id is not the oldest outstanding one means the
stream is out of sync: :class:`CorrelationIdMismatch` is raised and the caller
must close the connection. A request sent with ``expect_response=False``
(Produce with acks=0) is not registered, because no response will come.

The size prefix is checked *before* anything is allocated for the frame: a
negative size, one below the smallest possible response, or one above
``max_frame_bytes`` raises :class:`FramingError`. The most common cause of a
giant "size" is talking plaintext to a TLS port (the bytes are a TLS record
header) or to an HTTP server, so those prefixes get an error saying so.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from protocol._errors_base import CorrelationIdMismatch, FramingError, KafkaProtocolError
from protocol.api import Request, Response
from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.primitives import Reader

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "KafkaConnectionState",
    "ReceivedResponse",
    "describe_bad_prefix",
]

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024
_SIZE = struct.Struct(">i")
_MIN_RESPONSE_SIZE = 4  # a response holds at least its correlation id
_API_VERSIONS_KEY = 18
_UNSUPPORTED_VERSION = 35
_MAX_CORRELATION_ID = 0x7FFFFFFF


@dataclass(slots=True)
class ReceivedResponse:
    """One complete response frame taken off the stream.

    ``error`` is set (and ``response`` is None) when the frame was well formed
    but its body did not decode: the stream is still in sync, only this request
    failed.
    """

    correlation_id: int
    api_key: int
    api_version: int
    response: Response | None
    error: KafkaProtocolError | None = None


@dataclass(slots=True, frozen=True)
class _Pending:
    correlation_id: int
    api_key: int
    api_version: int


def describe_bad_prefix(prefix: bytes) -> str:
    """Explain what kind of peer would send ``prefix`` as a frame size."""
    if prefix[:4] == b"HTTP":
        return "the peer answered in HTTP: this address is an HTTP server, not a Kafka listener"
    if len(prefix) >= 3 and prefix[0] in (0x15, 0x16) and prefix[1] == 0x03 and prefix[2] <= 0x04:
        return (
            "the peer answered with a TLS record: this is probably a TLS listener; "
            "use security_protocol='SSL' (or 'SASL_SSL')"
        )
    return "the peer does not speak the Kafka protocol, or the stream is out of sync"


class KafkaConnectionState:
    """Turns requests into bytes and incoming bytes into typed responses."""

    def __init__(
        self,
        client_id: str | None = "kclient",
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        first_correlation_id: int = 0,
    ) -> None:
        self.client_id = client_id
        self.max_frame_bytes = max_frame_bytes
        self._next_correlation_id = first_correlation_id
        self._pending: deque[_Pending] = deque()
        self._buffer = bytearray()
        self._frame_size: int | None = None

    # -- outgoing ------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests sent whose responses have not been taken yet."""
        return len(self._pending)

    def send_request(
        self, request: Request, version: int, *, expect_response: bool = True
    ) -> tuple[int, bytes]:
        """Encode ``request`` at ``version``; returns (correlation id, frame bytes).

        Encoding errors propagate before any state changes, so a request that
        cannot be encoded leaves the connection usable.
        """
        correlation_id = self._next_correlation_id
        header = RequestHeader(
            request_api_key=request.API_KEY,
            request_api_version=version,
            correlation_id=correlation_id,
            client_id=self.client_id,
        )
        out = bytearray(4)
        header.write(out, request_header_version(request.API_KEY, version))
        request.write(out, version)
        _SIZE.pack_into(out, 0, len(out) - 4)
        self._next_correlation_id = (correlation_id + 1) & _MAX_CORRELATION_ID
        if expect_response:
            self._pending.append(_Pending(correlation_id, request.API_KEY, version))
        return correlation_id, bytes(out)

    # -- incoming ------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket."""
        self._buffer += data

    def next_response(self) -> ReceivedResponse | None:
        """Return the next complete response, or None if more bytes are needed."""
        buffer = self._buffer
        if self._frame_size is None:
            if len(buffer) < 4:
                return None
            self._frame_size = self._check_size(bytes(buffer[:4]))
        size = self._frame_size
        if len(buffer) < 4 + size:
            return None
        # One copy out of the receive buffer (slicing the bytearray first would
        # copy twice); the view must be released before the buffer is resized.
        with memoryview(buffer) as view:
            frame = bytes(view[4 : 4 + size])
        del buffer[: 4 + size]
        self._frame_size = None
        return self._decode_frame(frame)

    def _check_size(self, prefix: bytes) -> int:
        size = int(_SIZE.unpack(prefix)[0])
        if size < _MIN_RESPONSE_SIZE or size > self.max_frame_bytes:
            raise FramingError(
                f"invalid response size {size} (allowed {_MIN_RESPONSE_SIZE}.."
                f"{self.max_frame_bytes}, prefix {prefix.hex()}): {describe_bad_prefix(prefix)}"
            )
        return size

    def _decode_frame(self, frame: bytes) -> ReceivedResponse:
        reader = Reader(frame)
        correlation_id = reader.int32()
        if not self._pending:
            raise CorrelationIdMismatch(
                f"response with correlation id {correlation_id} arrived but no request is in flight"
            )
        head = self._pending[0]
        if correlation_id != head.correlation_id:
            raise CorrelationIdMismatch(
                f"response correlation id {correlation_id} does not match the oldest request "
                f"in flight ({head.correlation_id}); the stream is out of sync"
            )
        self._pending.popleft()
        try:
            response = self._decode_body(head, frame)
        except KafkaProtocolError as exc:
            return ReceivedResponse(correlation_id, head.api_key, head.api_version, None, exc)
        return ReceivedResponse(correlation_id, head.api_key, head.api_version, response)

    def _decode_body(self, head: _Pending, frame: bytes) -> Response:
        response_cls = REGISTRY[head.api_key][1]
        reader = Reader(frame)
        ResponseHeader.read(reader, response_header_version(head.api_key, head.api_version))
        body = memoryview(frame)[reader.pos :]
        version = head.api_version
        if head.api_key == _API_VERSIONS_KEY and version > 0 and _is_unsupported_version(body):
            # A broker that does not know our ApiVersions version answers in v0
            # layout with UNSUPPORTED_VERSION and the versions it does support.
            version = 0
        return response_cls.decode(body, version)


def _is_unsupported_version(body: memoryview) -> bool:
    return len(body) >= 2 and int.from_bytes(body[:2], "big", signed=True) == _UNSUPPORTED_VERSION
