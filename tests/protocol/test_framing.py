"""Framing: requests to bytes with correlation ids, bytes to typed responses."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from protocol._errors_base import CorrelationIdMismatch, FramingError, KafkaProtocolError
from protocol.api import Response
from protocol.framing import KafkaConnectionState
from protocol.headers import request_header_version, response_header_version
from protocol.messages.api_versions import (
    ApiVersion,
    ApiVersionsRequest,
    ApiVersionsResponse,
)
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from protocol.primitives import Reader


def response_frame(correlation_id: int, response: Response, version: int) -> bytes:
    out = bytearray(4)
    ResponseHeader(correlation_id=correlation_id).write(
        out, response_header_version(response.API_KEY, version)
    )
    response.write(out, version)
    struct.pack_into(">i", out, 0, len(out) - 4)
    return bytes(out)


def test_request_frame_carries_header_and_body() -> None:
    state = KafkaConnectionState("my-client", first_correlation_id=7)
    request = MetadataRequest(topics=None, allow_auto_topic_creation=False)
    correlation_id, frame = state.send_request(request, 12)
    assert correlation_id == 7
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    reader = Reader(frame, 4)
    header = RequestHeader.read(reader, request_header_version(3, 12))
    assert (header.request_api_key, header.request_api_version) == (3, 12)
    assert header.correlation_id == 7
    assert header.client_id == "my-client"
    assert MetadataRequest.decode(memoryview(frame)[reader.pos :], 12) == request


def test_response_fed_one_byte_at_a_time() -> None:
    state = KafkaConnectionState()
    correlation_id, _ = state.send_request(MetadataRequest(topics=[]), 9)
    response = MetadataResponse(cluster_id="c1", controller_id=1)
    frame = response_frame(correlation_id, response, 9)
    for byte in frame[:-1]:
        state.receive_data(bytes([byte]))
        assert state.next_response() is None
    state.receive_data(frame[-1:])
    received = state.next_response()
    assert received is not None
    assert received.response == response
    assert received.correlation_id == correlation_id
    assert state.in_flight == 0


def test_pipelined_responses_come_back_in_order() -> None:
    state = KafkaConnectionState()
    first, _ = state.send_request(ApiVersionsRequest(), 3)
    second, _ = state.send_request(MetadataRequest(topics=[]), 1)
    state.receive_data(
        response_frame(first, ApiVersionsResponse(), 3)
        + response_frame(second, MetadataResponse(controller_id=5), 1)
    )
    a = state.next_response()
    b = state.next_response()
    assert a is not None and b is not None
    assert isinstance(a.response, ApiVersionsResponse)
    assert isinstance(b.response, MetadataResponse) and b.response.controller_id == 5
    assert state.next_response() is None


def test_out_of_order_correlation_id_is_rejected() -> None:
    state = KafkaConnectionState()
    state.send_request(ApiVersionsRequest(), 3)
    second, _ = state.send_request(ApiVersionsRequest(), 3)
    state.receive_data(response_frame(second, ApiVersionsResponse(), 3))
    with pytest.raises(CorrelationIdMismatch):
        state.next_response()


def test_response_with_nothing_in_flight_is_rejected() -> None:
    state = KafkaConnectionState()
    state.receive_data(response_frame(99, ApiVersionsResponse(), 0))
    with pytest.raises(CorrelationIdMismatch):
        state.next_response()


def test_request_without_response_is_not_awaited() -> None:
    state = KafkaConnectionState()
    state.send_request(MetadataRequest(topics=[]), 4, expect_response=False)
    assert state.in_flight == 0


def test_correlation_ids_wrap_to_zero() -> None:
    state = KafkaConnectionState(first_correlation_id=0x7FFFFFFF)
    assert state.send_request(ApiVersionsRequest(), 0)[0] == 0x7FFFFFFF
    assert state.send_request(ApiVersionsRequest(), 0)[0] == 0


@pytest.mark.parametrize(
    ("prefix", "hint"),
    [
        (b"\x7f\xff\xff\xff", "does not speak"),
        (b"\xff\xff\xff\xff", "does not speak"),
        (b"\x00\x00\x00\x01", "does not speak"),
        (b"HTTP", "HTTP"),
        (b"\x15\x03\x03\x00", "TLS"),
        (b"\x16\x03\x01\x02", "TLS"),
    ],
)
def test_hostile_size_prefix_fails_before_allocating(prefix: bytes, hint: str) -> None:
    state = KafkaConnectionState()
    state.send_request(ApiVersionsRequest(), 0)
    tracemalloc.start()
    try:
        state.receive_data(prefix + b"\x00" * 64)
        with pytest.raises(FramingError, match=hint):
            state.next_response()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_configured_frame_cap_applies() -> None:
    state = KafkaConnectionState(max_frame_bytes=1000)
    state.send_request(ApiVersionsRequest(), 0)
    state.receive_data(struct.pack(">i", 1001))
    with pytest.raises(FramingError, match="1001"):
        state.next_response()


def test_api_versions_falls_back_to_v0_on_unsupported_version() -> None:
    state = KafkaConnectionState()
    correlation_id, _ = state.send_request(ApiVersionsRequest(), 3)
    v0 = ApiVersionsResponse(
        error_code=35,
        api_keys=[ApiVersion(api_key=18, min_version=0, max_version=2)],
    )
    state.receive_data(response_frame(correlation_id, v0, 0))
    received = state.next_response()
    assert received is not None
    assert received.response == v0


def test_undecodable_body_fails_only_that_request() -> None:
    state = KafkaConnectionState()
    bad, _ = state.send_request(MetadataRequest(topics=[]), 1)
    good, _ = state.send_request(ApiVersionsRequest(), 0)
    garbage = struct.pack(">ii", 6, bad) + b"\xff\xff"
    state.receive_data(garbage + response_frame(good, ApiVersionsResponse(), 0))
    first = state.next_response()
    assert first is not None and first.response is None
    assert isinstance(first.error, KafkaProtocolError)
    second = state.next_response()
    assert second is not None and isinstance(second.response, ApiVersionsResponse)
