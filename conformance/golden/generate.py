"""Generate golden wire vectors with kafka-python, an independent Kafka codec.

Run ``python -m conformance.golden.generate`` (kafka-python is in the ``dev``
extra) to rewrite ``conformance/golden/vectors.json``. Only this script imports
kafka-python; ``conformance/test_golden.py`` reads the committed JSON.

Two kafka-python implementations are used:

* ``json``: the classes generated at import time from kafka-python's own copy of
  the Kafka JSON specs (``kafka.protocol.metadata.MetadataRequest[version]``...).
  They cover every version that both kafka-python's specs (``validVersions``)
  and ours implement, with the request/response header in front.
* ``struct``: the hand-written positional classes of ``kafka.protocol.old``
  (``MetadataRequest_v0``...). They cover every version they implement that we
  implement too, including old versions the newer specs of kafka-python dropped.

Values are generated from kafka-python's view of each schema, deterministically
(a seed per case), in two variants per version of a JSON class (the struct
classes, which do not know nullability, get ``full`` only):

* ``nulls``: every field nullable at that version is null, arrays hold one
  element, tagged fields keep their defaults;
* ``full``: nothing is null, arrays hold two or three elements, tagged fields
  get non-default values, strings are often non-ASCII.

``records`` fields hold real record batches built by
``kafka.record.MemoryRecordsBuilder`` (magic 2, or the legacy magic 0/1 that
the old Produce/Fetch versions carry).

A case records ``fields``: the kafka-python object as nested JSON, with
kafka-python's field names; ``bytes``/``records`` values are hex strings,
``uuid`` values canonical strings, and kafka-python's ``bitfield`` (its
rendering of Metadata's ``*AuthorizedOperations``) a sorted list of set bits.
"""

from __future__ import annotations

import json
import random
import uuid
import zlib
from collections.abc import Iterator
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import kafka.protocol.consumer as kp_consumer
import kafka.protocol.metadata as kp_metadata
import kafka.protocol.old.api_versions as old_api_versions
import kafka.protocol.old.commit as old_commit
import kafka.protocol.old.fetch as old_fetch
import kafka.protocol.old.find_coordinator as old_find_coordinator
import kafka.protocol.old.group as old_group
import kafka.protocol.old.init_producer_id as old_init_producer_id
import kafka.protocol.old.list_offsets as old_list_offsets
import kafka.protocol.old.metadata as old_metadata
import kafka.protocol.old.produce as old_produce
import kafka.protocol.old.types as old_types
import kafka.protocol.producer as kp_producer
from kafka.record import MemoryRecordsBuilder

from protocol.messages import REGISTRY  # only for the range of versions we implement

OUTPUT = Path(__file__).with_name("vectors.json")

#: API name -> (kafka-python JSON request class, kafka-python JSON response
#: class, old request classes, old response classes).
APIS: dict[str, tuple[Any, Any, list[Any], list[Any]]] = {
    "Produce": (
        kp_producer.ProduceRequest,
        kp_producer.ProduceResponse,
        old_produce.ProduceRequest,
        old_produce.ProduceResponse,
    ),
    "Fetch": (
        kp_consumer.FetchRequest,
        kp_consumer.FetchResponse,
        old_fetch.FetchRequest,
        old_fetch.FetchResponse,
    ),
    "ListOffsets": (
        kp_consumer.ListOffsetsRequest,
        kp_consumer.ListOffsetsResponse,
        old_list_offsets.ListOffsetsRequest,
        old_list_offsets.ListOffsetsResponse,
    ),
    "Metadata": (
        kp_metadata.MetadataRequest,
        kp_metadata.MetadataResponse,
        old_metadata.MetadataRequest,
        old_metadata.MetadataResponse,
    ),
    "OffsetCommit": (
        kp_consumer.OffsetCommitRequest,
        kp_consumer.OffsetCommitResponse,
        old_commit.OffsetCommitRequest,
        old_commit.OffsetCommitResponse,
    ),
    "OffsetFetch": (
        kp_consumer.OffsetFetchRequest,
        kp_consumer.OffsetFetchResponse,
        old_commit.OffsetFetchRequest,
        old_commit.OffsetFetchResponse,
    ),
    "FindCoordinator": (
        kp_metadata.FindCoordinatorRequest,
        kp_metadata.FindCoordinatorResponse,
        old_find_coordinator.FindCoordinatorRequest,
        old_find_coordinator.FindCoordinatorResponse,
    ),
    "JoinGroup": (
        kp_consumer.JoinGroupRequest,
        kp_consumer.JoinGroupResponse,
        old_group.JoinGroupRequest,
        old_group.JoinGroupResponse,
    ),
    "Heartbeat": (
        kp_consumer.HeartbeatRequest,
        kp_consumer.HeartbeatResponse,
        old_group.HeartbeatRequest,
        old_group.HeartbeatResponse,
    ),
    "SyncGroup": (
        kp_consumer.SyncGroupRequest,
        kp_consumer.SyncGroupResponse,
        old_group.SyncGroupRequest,
        old_group.SyncGroupResponse,
    ),
    "ApiVersions": (
        kp_metadata.ApiVersionsRequest,
        kp_metadata.ApiVersionsResponse,
        old_api_versions.ApiVersionsRequest,
        old_api_versions.ApiVersionsResponse,
    ),
    "InitProducerId": (
        kp_producer.InitProducerIdRequest,
        kp_producer.InitProducerIdResponse,
        old_init_producer_id.InitProducerIdRequest,
        old_init_producer_id.InitProducerIdResponse,
    ),
}

VARIANTS = ("nulls", "full")

#: Strings drawn for ``string`` fields: ASCII, Latin-1, CJK, emoji (4-byte
#: UTF-8), and an empty string.
STRINGS = (
    "orders",
    "grüße-topic",
    "日本語のトピック",
    "emoji-\U0001f680-ok",
    "",
    "Ωmega.Σ_1",
    "consumer-group-Ä",
)


class Gen:
    """Deterministic value source for one case."""

    def __init__(self, seed_text: str, variant: str) -> None:
        self.rng = random.Random(zlib.crc32(seed_text.encode()))
        self.full = variant == "full"

    def count(self) -> int:
        return self.rng.randint(2, 3) if self.full else 1

    def string(self) -> str:
        return self.rng.choice(STRINGS)

    def bytes_(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(1 if self.full else 0, 12))

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128))

    def integer(self, bits: int, signed: bool = True) -> int:
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        choice = self.rng.random()
        if choice < 0.15:
            return lo
        if choice < 0.3:
            return hi
        if choice < 0.45 and signed:
            return -1
        return self.rng.randint(lo, hi)

    def float64(self) -> float:
        return self.rng.choice((0.0, -1.5, 3.25e-7, 1e300, self.rng.uniform(-1e6, 1e6)))

    def bitfield(self) -> set[int]:
        return set(self.rng.sample(range(31), self.rng.randint(1, 5)))

    def records(self, magic: int) -> bytes:
        """A real record batch with ``self.count()`` records."""
        builder = MemoryRecordsBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
        for i in range(self.count() + 1):
            key = None if i == 0 else f"kéy-{i}".encode()
            value = f"välue-日本-{i}".encode() * (i + 1)
            headers = [("h-ü", b"\x00\xff"), ("n", None)] if magic >= 2 and i else []
            builder.append(timestamp=1_700_000_000_000 + i, key=key, value=value, headers=headers)
        builder.close()
        return bytes(builder.buffer())


INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


def records_magic(api: str, version: int) -> int:
    """Record format a given Produce/Fetch version carries."""
    if api == "Produce":
        return 0 if version < 2 else 1 if version == 2 else 2
    return 0 if version < 2 else 1 if version < 4 else 2


# -- kafka-python JSON classes ----------------------------------------------------


def json_value(field: Any, version: int, gen: Gen, api: str) -> Any:
    """A value for a kafka-python JSON-schema field at ``version``."""
    if field.nullable_for_version_q(version) and not gen.full:
        return None
    if field.is_struct_array():
        return [json_struct(field, version, gen, api) for _ in range(gen.count())]
    if field.is_struct():
        return json_struct(field, version, gen, api)
    if field.is_array():
        inner = field.array_of
        return [json_scalar(inner.type_str, gen, api, version) for _ in range(gen.count())]
    return json_scalar(field.type_str, gen, api, version)


def json_scalar(type_str: str, gen: Gen, api: str, version: int) -> Any:
    if type_str in INT_BITS:
        return gen.integer(INT_BITS[type_str])
    simple: dict[str, Any] = {
        "uint16": lambda: gen.integer(16, signed=False),
        "float64": gen.float64,
        "bool": lambda: gen.rng.random() < 0.5,
        "uuid": gen.uuid,
        "string": gen.string,
        "bytes": gen.bytes_,
        "bitfield": gen.bitfield,
        "records": lambda: gen.records(records_magic(api, version)),
    }
    return simple[type_str]()


def json_struct(struct: Any, version: int, gen: Gen, api: str) -> Any:
    values: dict[str, Any] = {}
    for field in struct.fields.values():
        if not field.for_version_q(version):
            continue
        if field.tagged_field_q(version) and not gen.full:
            continue
        value = json_value(field, version, gen, api)
        if field.tagged_field_q(version):
            # Apache Kafka omits a tagged field equal to its default (kafka-python
            # writes every tagged field it was given): keep the vectors canonical.
            while is_default(field, value, version):
                value = json_value(field, version, gen, api)
        values[field.name] = value
    return struct.data_class(version=version, **values)


def is_default(field: Any, value: Any, version: int) -> bool:
    if field.is_struct():
        default = field.data_class(version=version)
        return bool(json_fields(value, field, version) == json_fields(default, field, version))
    return bool(value == field.default)


def json_fields(obj: Any, struct: Any, version: int) -> dict[str, Any]:
    """The fields of a kafka-python JSON-schema object present at ``version``."""
    out: dict[str, Any] = {}
    for field in struct.fields.values():
        if not field.for_version_q(version):
            continue
        if field.tagged_field_q(version) and field.name not in (obj.tags or ()):
            continue  # not set: absent from the wire, the receiver uses the default
        value = getattr(obj, field.name)
        if value is None:
            out[field.name] = None
        elif field.is_struct_array():
            out[field.name] = [json_fields(item, field, version) for item in value]
        elif field.is_struct():
            out[field.name] = json_fields(value, field, version)
        elif field.is_array():
            out[field.name] = [jsonable(item) for item in value]
        else:
            out[field.name] = jsonable(value)
    return out


def jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set):
        return sorted(value)
    return value


def json_cases(api: str, cls: Any, ours_max: int, direction: str) -> Iterator[dict[str, Any]]:
    lo, hi = cls.valid_versions
    for version in range(lo, min(hi, ours_max) + 1):
        for variant in VARIANTS:
            name = f"{api} v{version} {direction} (json, {variant})"
            gen = Gen(name, variant)
            obj = json_struct(cls._struct, version, gen, api)
            if api == "ApiVersions" and direction == "response":
                # kafka-python decodes an ApiVersions response carrying an error
                # as v0 (what a broker answers to a version it does not know).
                obj.error_code = 0
            body = bytes(obj.encode(version))
            correlation_id = gen.integer(32)
            client_id = gen.string() if gen.full else None
            if direction == "request":
                obj.with_header(correlation_id=correlation_id, client_id=client_id)
            else:
                obj.with_header(correlation_id=correlation_id)
            framed = bytes(obj.encode(header=True))
            assert framed.endswith(body), name
            header = obj.header
            header_fields = {
                key: getattr(header, key)
                for key in (
                    "request_api_key",
                    "request_api_version",
                    "correlation_id",
                    "client_id",
                )
                if key in header.fields
            }
            # Check kafka-python agrees with itself before recording anything.
            again = cls.decode(body, version=version)
            assert json_fields(again, cls._struct, version) == json_fields(
                obj, cls._struct, version
            ), name
            yield {
                "api": api,
                "name": name,
                "version": version,
                "direction": direction,
                "source": "json",
                "kafka_python_class": f"{cls.__name__}[{version}]",
                "hex": body.hex(),
                "fields": json_fields(obj, cls._struct, version),
                "header_hex": framed[: len(framed) - len(body)].hex(),
                "header_fields": header_fields,
            }


# -- kafka-python hand-written (old) classes -------------------------------------


def old_value(name: str, typ: Any, gen: Gen, api: str, version: int) -> Any:
    """A value for a field of an old positional schema."""
    if isinstance(typ, old_types.Array):
        return [old_value(name, typ.array_of, gen, api, version) for _ in range(gen.count())]
    if isinstance(typ, old_types.Schema):
        return tuple(
            old_value(sub_name, sub_type, gen, api, version)
            for sub_name, sub_type in zip(typ.names, typ.fields, strict=True)
        )
    if isinstance(typ, old_types.String):
        return gen.string()
    if typ is old_types.TaggedFields:
        return {}
    if typ in (old_types.Bytes, old_types.CompactBytes):
        if name in ("records", "message_set"):
            return gen.records(records_magic(api, version))
        return gen.bytes_()
    simple: dict[Any, Any] = {
        old_types.Int8: lambda: gen.integer(8),
        old_types.Int16: lambda: gen.integer(16),
        old_types.Int32: lambda: gen.integer(32),
        old_types.Int64: lambda: gen.integer(64),
        old_types.Boolean: lambda: gen.rng.random() < 0.5,
        old_types.UUID: gen.uuid,
        old_types.BitField: gen.bitfield,
    }
    return simple[typ]()


def old_fields(value: Any, typ: Any) -> Any:
    """JSON form of an old positional value, keyed by the schema's names."""
    if isinstance(typ, old_types.Schema):
        # strict=False: kafka-python drops an empty trailing TaggedFields on decode.
        return {
            name: old_fields(item, sub_type)
            for name, sub_type, item in zip(typ.names, typ.fields, value, strict=False)
            if sub_type is not old_types.TaggedFields
        }
    if isinstance(typ, old_types.Array):
        return None if value is None else [old_fields(item, typ.array_of) for item in value]
    return jsonable(value)


def old_cases(
    api: str, classes: list[Any], ours_max: int, direction: str
) -> Iterator[dict[str, Any]]:
    for cls in classes:
        version = cls.API_VERSION
        if version > ours_max:
            continue
        name = f"{api} v{version} {direction} (struct)"
        gen = Gen(name, "full")
        args = [
            old_value(field_name, typ, gen, api, version)
            for field_name, typ in zip(cls.SCHEMA.names, cls.SCHEMA.fields, strict=True)
        ]
        if api == "ApiVersions" and direction == "response":
            args[cls.SCHEMA.names.index("error_code")] = 0  # as in json_cases
        obj = cls(*args)
        body = bytes(obj.encode())
        fields = old_fields(args, cls.SCHEMA)
        # Check kafka-python agrees with itself before recording anything.
        again = cls.decode(body)
        assert old_fields([getattr(again, n) for n in cls.SCHEMA.names], cls.SCHEMA) == fields
        yield {
            "api": api,
            "name": name,
            "version": version,
            "direction": direction,
            "source": "struct",
            "kafka_python_class": f"kafka.protocol.old.{cls.__name__}",
            "hex": body.hex(),
            "fields": fields,
        }


def generate() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    our_max = {request.API_NAME: request.MAX_VERSION for request, _ in REGISTRY.values()}
    for api, (request, response, old_requests, old_responses) in APIS.items():
        ours_max = our_max[api]
        cases.extend(json_cases(api, request, ours_max, "request"))
        cases.extend(json_cases(api, response, ours_max, "response"))
        cases.extend(old_cases(api, old_requests, ours_max, "request"))
        cases.extend(old_cases(api, old_responses, ours_max, "response"))
    return {
        "generator": "python -m conformance.golden.generate",
        "kafka_python_version": dist_version("kafka-python"),
        "cases": cases,
    }


def main() -> None:
    data = generate()
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(data['cases'])} cases to {OUTPUT}")


if __name__ == "__main__":
    main()
