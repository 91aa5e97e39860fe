"""Round trips of every generated message at every version, plus codec edge cases.

Values come from Hypothesis strategies derived from each class's ``_SCHEMA``:
only fields present at the version under test get random values (nullable
ones may be None where the version allows it); absent fields keep their
defaults, so every generated value is encodable at that version.

Profiles: "ci" (default; derandomized, few examples) and "thorough"; pick with
HYPOTHESIS_PROFILE=thorough.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol._errors_base import (
    EncodeError,
    InvalidLength,
    KafkaProtocolError,
    UnsupportedVersionError,
)
from protocol.api import FieldSpec, Message, Struct
from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY, ApiKey
from protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolAssignmentTopicPartition,
    ConsumerProtocolSubscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from protocol.messages.fetch import FetchRequest, ReplicaState
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.messages.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponseTopic,
)
from protocol.primitives import Reader

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# -- strategies derived from _SCHEMA -----------------------------------------------

_INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFF),
}


def _in(rng: tuple[int, int] | None, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


def present(spec: FieldSpec, version: int) -> bool:
    if not _in(spec.versions, version):
        return False
    return spec.tag is None or _in(spec.tagged, version)


def _scalar(spec: FieldSpec, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    kind = spec.kind
    if kind in _INT_RANGES:
        lo, hi = _INT_RANGES[kind]
        return st.integers(lo, hi)
    if kind == "bool":
        return st.booleans()
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "uuid":
        return st.integers(0, (1 << 128) - 1).map(lambda n: uuid.UUID(int=n))
    if kind == "string":
        return st.text(max_size=8)
    if kind in ("bytes", "records"):
        return st.binary(max_size=12)
    assert kind == "struct" and spec.struct is not None
    return struct_strategy(spec.struct, version, flexible)


def field_strategy(spec: FieldSpec, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    base = _scalar(spec, version, flexible)
    if spec.array:
        base = st.lists(base, max_size=3)
    if _in(spec.nullable, version):
        base = st.none() | base
    return base


_STRATEGIES: dict[tuple[str, str, int, bool], st.SearchStrategy[Any]] = {}


def struct_strategy(cls: type[Struct], version: int, flexible: bool) -> st.SearchStrategy[Any]:
    key = (cls.__module__, cls.__qualname__, version, flexible)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _build_struct_strategy(cls, version, flexible)
    return _STRATEGIES[key]


def _build_struct_strategy(
    cls: type[Struct], version: int, flexible: bool
) -> st.SearchStrategy[Any]:
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    known_tags = {spec.tag for spec in cls._SCHEMA if spec.tag is not None}
    for spec in cls._SCHEMA:
        if present(spec, version):
            kwargs[spec.name] = field_strategy(spec, version, flexible)
    if flexible:
        tags = st.integers(0, 40).filter(lambda t: t not in known_tags)
        kwargs["unknown_tagged_fields"] = st.dictionaries(tags, st.binary(max_size=6), max_size=2)
    return st.builds(cls, **kwargs)


def message_strategy(cls: type[Message], version: int) -> st.SearchStrategy[Any]:
    flexible = cls.FLEXIBLE_VERSION is not None and version >= cls.FLEXIBLE_VERSION
    return struct_strategy(cls, version, flexible)


# -- every message x version ---------------------------------------------------------

MESSAGE_CLASSES: list[type[Message]] = [cls for pair in REGISTRY.values() for cls in pair] + [
    RequestHeader,
    ResponseHeader,
    ConsumerProtocolSubscription,
    ConsumerProtocolAssignment,
]

CASES = [
    pytest.param(cls, v, id=f"{cls.__name__}-v{v}")
    for cls in MESSAGE_CLASSES
    for v in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]


@pytest.mark.parametrize(("cls", "version"), CASES)
@settings(PROFILE)
@given(data=st.data())
def test_round_trip(cls: type[Message], version: int, data: st.DataObject) -> None:
    value = data.draw(message_strategy(cls, version))
    encoded = value.encode(version)
    decoded = cls.decode(encoded, version)
    assert decoded == value
    assert decoded.encode(version) == encoded


@pytest.mark.parametrize(("cls", "version"), CASES)
def test_truncation_and_trailing_bytes(cls: type[Message], version: int) -> None:
    encoded = cls().encode(version)
    for cut in range(len(encoded)):
        with pytest.raises(KafkaProtocolError):
            cls.decode(encoded[:cut], version)
    with pytest.raises(InvalidLength):
        cls.decode(encoded + b"\x00", version)


@settings(PROFILE, max_examples=PROFILE.max_examples * 10)
@given(
    cls=st.sampled_from(MESSAGE_CLASSES),
    version=st.integers(0, 17),
    data=st.binary(max_size=64),
)
def test_garbage_only_raises_protocol_errors(cls: type[Message], version: int, data: bytes) -> None:
    version = min(max(version, cls.MIN_VERSION), cls.MAX_VERSION)
    try:
        cls.decode(data, version)
    except KafkaProtocolError:
        pass


@settings(PROFILE, max_examples=PROFILE.max_examples * 10)
@given(case=st.sampled_from(CASES), data=st.data())
def test_every_prefix_of_a_populated_message_is_rejected(case: Any, data: st.DataObject) -> None:
    cls, version = case.values
    encoded = data.draw(message_strategy(cls, version)).encode(version)
    for cut in range(len(encoded)):
        with pytest.raises(KafkaProtocolError):
            cls.decode(encoded[:cut], version)


# -- tagged fields ---------------------------------------------------------------------


def test_unknown_tagged_fields_survive_and_merge_in_tag_order() -> None:
    request = FetchRequest(
        cluster_id="c1",  # known tag 0
        unknown_tagged_fields={3: b"\x01\x02", 1: b""},  # tag 1 is unknown before v15
    )
    encoded = request.encode(12)
    decoded = FetchRequest.decode(encoded, 12)
    assert decoded == request
    assert decoded.unknown_tagged_fields == {1: b"", 3: b"\x01\x02"}
    assert decoded.encode(12) == encoded
    # The tagged section is the last thing in the message: count 3, tags 0, 1, 3.
    tail = encoded[-(1 + (1 + 1 + 3) + (1 + 1) + (1 + 1 + 2)) :]
    assert tail == bytes([3, 0, 3, 3, ord("c"), ord("1"), 1, 0, 3, 2, 1, 2])


def test_known_struct_tag_and_unknown_tags_at_v15() -> None:
    request = FetchRequest(
        replica_state=ReplicaState(replica_id=3, replica_epoch=9),
        unknown_tagged_fields={0x7F: b"z", 2: b"y"},
    )
    decoded = FetchRequest.decode(request.encode(15), 15)
    assert decoded.replica_state == ReplicaState(replica_id=3, replica_epoch=9)
    assert decoded.unknown_tagged_fields == {2: b"y", 0x7F: b"z"}
    assert decoded.cluster_id is None


def test_nested_unknown_tagged_fields_survive() -> None:
    response = MetadataResponse(
        topics=[MetadataResponseTopic(name="t", unknown_tagged_fields={9: b"abc"})],
        unknown_tagged_fields={4: b""},
    )
    decoded = MetadataResponse.decode(response.encode(12), 12)
    assert decoded.topics[0].unknown_tagged_fields == {9: b"abc"}
    assert decoded.unknown_tagged_fields == {4: b""}


def test_default_tagged_fields_are_not_written() -> None:
    assert ApiVersionsResponse().encode(3) == bytes([0, 0, 1, 0, 0, 0, 0, 0])


def test_unknown_tag_colliding_with_known_tag_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        FetchRequest(cluster_id="x", unknown_tagged_fields={0: b"\x01"}).encode(12)


def test_unknown_tagged_fields_at_a_non_flexible_version() -> None:
    with pytest.raises(EncodeError):
        MetadataRequest(unknown_tagged_fields={1: b""}).encode(8)


def test_malformed_known_tagged_field_is_rejected() -> None:
    # FetchRequest v12 with no topics etc.; replace the tagged section by tag 0 with 1
    # byte of payload that is not a valid compact string followed by garbage.
    good = FetchRequest(cluster_id="ab").encode(12)
    bad = good[:-5] + bytes([1, 0, 3, 3, ord("a"), ord("b")])  # string "ab" + 1 extra byte
    with pytest.raises(KafkaProtocolError):
        FetchRequest.decode(bad, 12)


# -- versions, nullability, ignorable -------------------------------------------------------


def test_non_ignorable_field_at_a_version_lacking_it() -> None:
    response = MetadataResponse(cluster_authorized_operations=5)  # versions 8-10
    assert MetadataResponse.decode(response.encode(9), 9) == response
    for version in (7, 11):
        with pytest.raises(EncodeError):
            response.encode(version)


def test_ignorable_field_is_dropped_silently() -> None:
    response = MetadataResponse(cluster_id="cluster", throttle_time_ms=10)
    decoded = MetadataResponse.decode(response.encode(1), 1)
    assert decoded.cluster_id is None
    assert decoded.throttle_time_ms == 0


def test_unsupported_versions() -> None:
    for version in (-1, 13, 99):
        with pytest.raises(UnsupportedVersionError):
            MetadataRequest().encode(version)
        with pytest.raises(UnsupportedVersionError):
            MetadataResponse.decode(b"", version)


def test_null_in_non_nullable_version_is_an_encode_error() -> None:
    topic = MetadataResponseTopic(name=None)
    assert MetadataResponse.decode(MetadataResponse(topics=[topic]).encode(12), 12).topics == [
        topic
    ]
    with pytest.raises(EncodeError):
        MetadataResponse(topics=[topic]).encode(11)
    with pytest.raises(EncodeError):
        MetadataRequest(topics=None).encode(0)  # nullable from v1 only


def test_null_read_for_non_nullable_field_is_rejected() -> None:
    # MetadataResponse v1: brokers array count -1 (null) is not allowed.
    with pytest.raises(InvalidLength):
        MetadataResponse.decode(b"\xff\xff\xff\xff", 1)
    # MetadataResponseBroker v1 with a null host string.
    broker = MetadataResponseBroker(host="h")
    encoded = bytearray(MetadataResponse(brokers=[broker]).encode(1))
    encoded[8:10] = b"\xff\xff"
    with pytest.raises(InvalidLength):
        MetadataResponse.decode(bytes(encoded), 1)


def test_lying_array_count_is_rejected_before_allocation() -> None:
    with pytest.raises(InvalidLength) as info:
        MetadataResponse.decode(b"\x7f\xff\xff\xff" + b"\x00" * 64, 1)
    assert "Metadata v1 response" in str(info.value)
    # 8 elements of MetadataResponseBroker need at least 8 * 12 bytes.
    with pytest.raises(InvalidLength):
        MetadataResponse.decode(b"\x00\x00\x00\x08" + b"\x00" * 60, 1)


def test_error_context_names_the_message() -> None:
    with pytest.raises(KafkaProtocolError) as info:
        MetadataResponse.decode(b"\x00", 12)
    assert "Metadata v12 response" in str(info.value)
    with pytest.raises(KafkaProtocolError) as info:
        MetadataRequest.decode(b"\x00", 4)
    assert "Metadata v4 request" in str(info.value)


def test_defaults_from_spec() -> None:
    assert MetadataResponse().controller_id == -1
    assert MetadataResponse().cluster_id is None
    assert MetadataRequest().allow_auto_topic_creation is True
    assert MetadataResponseTopic().topic_authorized_operations == -2147483648


def test_class_attributes() -> None:
    assert int(ApiKey.METADATA) == 3
    assert REGISTRY[3] == (MetadataRequest, MetadataResponse)
    assert MetadataRequest.API_NAME == "Metadata"
    assert MetadataRequest.RESPONSE_TYPE is MetadataResponse
    assert (MetadataResponse.MIN_VERSION, MetadataResponse.FLEXIBLE_VERSION) == (0, 9)
    for key, (req, resp) in REGISTRY.items():
        assert req.API_KEY == resp.API_KEY == key
        assert req.RESPONSE_TYPE is resp


# -- headers ---------------------------------------------------------------------------


def test_header_versions() -> None:
    assert request_header_version(ApiKey.METADATA, 8) == 1
    assert request_header_version(ApiKey.METADATA, 9) == 2
    assert response_header_version(ApiKey.METADATA, 8) == 0
    assert response_header_version(ApiKey.METADATA, 9) == 1
    assert request_header_version(7, 0) == 0  # ControlledShutdown v0
    assert request_header_version(ApiKey.API_VERSIONS, 3) == 2
    assert response_header_version(ApiKey.API_VERSIONS, 3) == 0
    assert response_header_version(ApiKey.SASL_HANDSHAKE, 1) == 0
    with pytest.raises(UnsupportedVersionError):
        request_header_version(ApiKey.METADATA, 99)


def test_request_header_client_id_is_never_compact() -> None:
    header = RequestHeader(
        request_api_key=18, request_api_version=3, correlation_id=1, client_id="ab"
    )
    encoded = header.encode(2)
    assert encoded == bytes([0, 18, 0, 3, 0, 0, 0, 1, 0, 2, ord("a"), ord("b"), 0])
    assert ResponseHeader(correlation_id=7).encode(0) == b"\x00\x00\x00\x07"
    r = Reader(encoded)
    assert RequestHeader.read(r, 2) == header and r.remaining == 0


def test_api_versions_request_round_trip_at_every_version() -> None:
    request = ApiVersionsRequest(client_software_name="kclient", client_software_version="1")
    assert ApiVersionsRequest.decode(request.encode(3), 3) == request
    assert ApiVersionsRequest.decode(request.encode(0), 0) == ApiVersionsRequest()


# -- consumer protocol -------------------------------------------------------------------


def test_consumer_protocol_version_prefix() -> None:
    sub = ConsumerProtocolSubscription(topics=["a", "b"], user_data=b"u", generation_id=4)
    data = encode_subscription(sub, 3)
    assert data[:2] == b"\x00\x03"
    assert decode_subscription(data) == sub
    assignment = ConsumerProtocolAssignment(
        assigned_partitions=[ConsumerProtocolAssignmentTopicPartition(topic="a", partitions=[0])]
    )
    assert decode_assignment(encode_assignment(assignment, 0)) == assignment


def test_consumer_protocol_newer_version_decodes_as_ours() -> None:
    sub = ConsumerProtocolSubscription(topics=["a"], rack_id="r1")
    body = sub.encode(ConsumerProtocolSubscription.MAX_VERSION)
    newer = (ConsumerProtocolSubscription.MAX_VERSION + 1).to_bytes(2, "big") + body + b"more"
    assert decode_subscription(newer) == sub
    with pytest.raises(InvalidLength):
        decode_subscription(encode_subscription(sub, 3) + b"x")
    with pytest.raises(UnsupportedVersionError):
        decode_subscription(b"\xff\xff" + body)
