"""Golden-vector cross-check of our codec against kafka-python.

``conformance/golden/vectors.json`` holds messages encoded by kafka-python (an
independent implementation; see ``conformance/golden/generate.py``, the only
place that imports it) together with the field values they were built from.
For every vector:

* our ``decode(bytes, version)`` succeeds and equals an instance built from the
  recorded field values (kafka-python's names mapped to ours);
* re-encoding the decoded object gives back the exact bytes;
* encoding the instance built from the recorded values gives the exact bytes;
* where a request/response header was recorded, our header classes decode it
  to the recorded values and re-encode it byte for byte.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocol.api import Request, Response, Struct
from protocol.headers import request_header_version, response_header_version
from protocol.messages import REGISTRY
from protocol.messages.headers import RequestHeader, ResponseHeader
from protocol.messages.metadata import MetadataRequestTopic

VECTORS_PATH = Path(__file__).parent / "golden" / "vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = VECTORS["cases"]

#: API name ("Metadata") -> (request class, response class).
CLASSES: dict[str, tuple[type[Request], type[Response]]] = {
    request.API_NAME: (request, response) for request, response in REGISTRY.values()
}

INT32_MIN = -(1 << 31)


def bitfield_to_int32(bits: list[int] | None) -> int:
    """kafka-python renders an int32 bit field as its set bits; null means bit 31 alone."""
    if bits is None:
        return INT32_MIN
    value = sum(1 << bit for bit in bits)
    return value - (1 << 32) if value >= 1 << 31 else value


Converter = Callable[[Any], Any]
FieldMap = dict[tuple[str, str], tuple[str, Converter | None]]


def topic_names(raw: list[str] | None) -> list[MetadataRequestTopic] | None:
    """kafka-python's old MetadataRequest carries topic names, not topic structs."""
    return None if raw is None else [MetadataRequestTopic(name=name) for name in raw]


#: Per vector source, (our struct class name, kafka-python field name) -> (our
#: field name, value converter or None). Unlisted names are ours already:
#: kafka-python's JSON classes use the spec names in snake_case, and its
#: hand-written ("struct") classes use the same names (older aliases aside).
#: Both kafka-python implementations render Metadata's *AuthorizedOperations
#: as a ``bitfield`` named ``authorized_operations``.
AUTHORIZED_OPERATIONS: FieldMap = {
    ("MetadataResponse", "authorized_operations"): (
        "cluster_authorized_operations",
        bitfield_to_int32,
    ),
    ("MetadataResponseTopic", "authorized_operations"): (
        "topic_authorized_operations",
        bitfield_to_int32,
    ),
}

FIELD_MAPS: dict[str, FieldMap] = {
    "json": AUTHORIZED_OPERATIONS,
    "struct": {
        **AUTHORIZED_OPERATIONS,
        ("MetadataRequest", "topics"): ("topics", topic_names),
    },
}


def build(cls: type[Struct], fields: dict[str, Any], field_map: FieldMap) -> Any:
    """An instance of our ``cls`` holding the recorded (kafka-python) ``fields``."""
    specs = {spec.name: spec for spec in cls._SCHEMA}
    values: dict[str, Any] = {}
    for kp_name, raw in fields.items():
        name, convert = field_map.get((cls.__name__, kp_name), (kp_name, None))
        assert name in specs, f"{cls.__name__} has no field {name!r} (kafka-python {kp_name!r})"
        spec = specs[name]
        if convert is not None:
            values[name] = convert(raw)
        elif raw is None:
            values[name] = None
        elif spec.array:
            values[name] = [scalar(spec.kind, spec.struct, item, field_map) for item in raw]
        else:
            values[name] = scalar(spec.kind, spec.struct, raw, field_map)
    return cls(**values)


def scalar(kind: str, struct: type[Struct] | None, raw: Any, field_map: FieldMap) -> Any:
    if struct is not None:
        return build(struct, raw, field_map)
    if kind in ("bytes", "records"):
        return bytes.fromhex(raw)
    if kind == "uuid":
        return uuid.UUID(raw)
    if kind == "float64":
        return float(raw)
    return raw


def message_class(case: dict[str, Any]) -> type[Request] | type[Response]:
    request, response = CLASSES[case["api"]]
    return request if case["direction"] == "request" else response


def test_vectors_cover_the_required_apis() -> None:
    required = {
        "Produce",
        "Fetch",
        "Metadata",
        "ApiVersions",
        "FindCoordinator",
        "JoinGroup",
        "SyncGroup",
        "Heartbeat",
        "OffsetCommit",
        "OffsetFetch",
        "ListOffsets",
        "InitProducerId",
    }
    for api in required:
        request, _ = CLASSES[api]
        flexible = request.FLEXIBLE_VERSION
        assert flexible is not None
        for direction in ("request", "response"):
            versions = {
                c["version"] for c in CASES if c["api"] == api and c["direction"] == direction
            }
            assert any(v < flexible for v in versions), (api, direction, "non-flexible")
            assert any(v >= flexible for v in versions), (api, direction, "flexible")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_vector(case: dict[str, Any]) -> None:
    cls = message_class(case)
    version: int = case["version"]
    golden = bytes.fromhex(case["hex"])

    decoded = cls.decode(golden, version)
    expected = build(cls, case["fields"], FIELD_MAPS[case["source"]])
    assert decoded == expected
    assert decoded.encode(version) == golden
    assert expected.encode(version) == golden


HEADER_CASES = [c for c in CASES if "header_hex" in c]


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c["name"] for c in HEADER_CASES])
def test_golden_header(case: dict[str, Any]) -> None:
    cls = message_class(case)
    golden = bytes.fromhex(case["header_hex"])
    header: RequestHeader | ResponseHeader
    if case["direction"] == "request":
        header_version = request_header_version(cls.API_KEY, case["version"])
        header = RequestHeader.decode(golden, header_version)
        assert header == RequestHeader(**case["header_fields"])
        assert header.request_api_key == cls.API_KEY
        assert header.request_api_version == case["version"]
    else:
        header_version = response_header_version(cls.API_KEY, case["version"])
        header = ResponseHeader.decode(golden, header_version)
        assert header == ResponseHeader(**case["header_fields"])
    assert header.encode(header_version) == golden
