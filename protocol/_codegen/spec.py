"""Dataclass model of the Kafka message spec files (JSON with ``//`` comments).

Only facts are kept (names, types, version ranges, defaults, tags); the
``about`` prose and comments are dropped on load so they cannot leak into the
generated code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PRIMITIVES",
    "FieldDef",
    "MessageSpec",
    "SpecError",
    "StructDef",
    "VersionRange",
    "load_errors",
    "load_spec",
    "load_specs",
    "snapshot_id",
    "strip_comments",
]

# Highest version number a field may carry; stands in for "open ended".
MAX_VERSION = 0x7FFF

PRIMITIVES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint16",
        "uint32",
        "float64",
        "string",
        "uuid",
        "bytes",
        "records",
    }
)


class SpecError(ValueError):
    """A spec file is malformed or uses a feature the generator does not support."""


@dataclass(frozen=True)
class VersionRange:
    """Inclusive range ``lo..hi``; ``hi`` is MAX_VERSION when open ended. Empty if lo > hi."""

    lo: int
    hi: int

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        text = text.strip()
        if text == "none":
            return cls(1, 0)
        try:
            if text.endswith("+"):
                return cls(int(text[:-1]), MAX_VERSION)
            if "-" in text:
                lo, hi = text.split("-", 1)
                return cls(int(lo), int(hi))
            return cls(int(text), int(text))
        except ValueError:
            raise SpecError(f"bad version range {text!r}") from None

    @property
    def empty(self) -> bool:
        return self.lo > self.hi

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.lo <= version <= self.hi

    def intersect(self, other: VersionRange) -> VersionRange:
        return VersionRange(max(self.lo, other.lo), min(self.hi, other.hi))

    def union_hull(self, other: VersionRange) -> VersionRange:
        if self.empty:
            return other
        if other.empty:
            return self
        return VersionRange(min(self.lo, other.lo), max(self.hi, other.hi))


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    versions: VersionRange
    nullable: VersionRange
    tag: int | None
    tagged: VersionRange
    ignorable: bool
    default: str | None
    flexible_override: VersionRange | None
    fields: tuple[FieldDef, ...] | None

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.element_type not in PRIMITIVES

    def signature(self) -> tuple[object, ...]:
        """Everything that affects encoding; used to compare struct definitions."""
        return (
            self.name,
            self.type,
            self.versions,
            self.nullable,
            self.tag,
            self.tagged,
            self.ignorable,
            self.default,
            self.flexible_override,
            None if self.fields is None else tuple(f.signature() for f in self.fields),
        )


@dataclass(frozen=True)
class StructDef:
    name: str
    fields: tuple[FieldDef, ...]

    def signature(self) -> tuple[object, ...]:
        return tuple(f.signature() for f in self.fields)


@dataclass
class MessageSpec:
    name: str
    type: str  # request, response, header, data
    api_key: int | None
    valid: VersionRange
    flexible: VersionRange
    listeners: tuple[str, ...]
    fields: tuple[FieldDef, ...]
    common_structs: dict[str, StructDef] = field(default_factory=dict)

    @property
    def api_name(self) -> str:
        for suffix in ("Request", "Response"):
            if self.type == suffix.lower() and self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name


def strip_comments(text: str) -> str:
    """Remove ``//`` comments outside string literals."""
    out: list[str] = []
    in_string = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _default_text(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _parse_field(raw: dict[str, object], where: str) -> FieldDef:
    try:
        name = str(raw["name"])
        ftype = str(raw["type"])
        versions = VersionRange.parse(str(raw["versions"]))
    except KeyError as exc:
        raise SpecError(f"{where}: field lacks {exc}") from None
    nullable = VersionRange.parse(str(raw.get("nullableVersions", "none")))
    tag_raw = raw.get("tag")
    tag = int(str(tag_raw)) if tag_raw is not None else None
    tagged = VersionRange.parse(str(raw.get("taggedVersions", "none")))
    if tag is not None and tagged.empty:
        raise SpecError(f"{where}.{name}: tag without taggedVersions")
    flex_raw = raw.get("flexibleVersions")
    sub = raw.get("fields")
    fields: tuple[FieldDef, ...] | None = None
    if isinstance(sub, list):
        fields = tuple(_parse_field(f, f"{where}.{name}") for f in sub)
    return FieldDef(
        name=name,
        type=ftype,
        versions=versions,
        nullable=nullable,
        tag=tag,
        tagged=tagged,
        ignorable=bool(raw.get("ignorable", False)),
        default=_default_text(raw.get("default")),
        flexible_override=None if flex_raw is None else VersionRange.parse(str(flex_raw)),
        fields=fields,
    )


def load_spec(path: Path) -> MessageSpec:
    try:
        data = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path.name}: {exc}") from None
    name = str(data["name"])
    common = {
        str(cs["name"]): StructDef(
            str(cs["name"]), tuple(_parse_field(f, f"{name}.{cs['name']}") for f in cs["fields"])
        )
        for cs in data.get("commonStructs", [])
    }
    api_key = data.get("apiKey")
    return MessageSpec(
        name=name,
        type=str(data["type"]),
        api_key=None if api_key is None else int(api_key),
        valid=VersionRange.parse(str(data["validVersions"])),
        flexible=VersionRange.parse(str(data.get("flexibleVersions", "none"))),
        listeners=tuple(str(x) for x in data.get("listeners", ())),
        fields=tuple(_parse_field(f, name) for f in data["fields"]),
        common_structs=common,
    )


def load_specs(directory: Path) -> dict[str, MessageSpec]:
    """Load every ``*.json`` spec in ``directory``, keyed by message name."""
    specs: dict[str, MessageSpec] = {}
    for path in sorted(directory.glob("*.json")):
        spec = load_spec(path)
        specs[spec.name] = spec
    if not specs:
        raise SpecError(f"no *.json specs in {directory}")
    return specs


@dataclass(frozen=True)
class ErrorRow:
    code: int
    name: str
    exception_class: str
    retriable: bool


def load_errors(path: Path) -> list[ErrorRow]:
    rows: list[ErrorRow] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    if header[:4] != ["code", "name", "exception_class", "retriable"]:
        raise SpecError(f"{path.name}: unexpected header {header}")
    for line in lines[1:]:
        if not line.strip():
            continue
        code, name, cls, retriable = line.split("\t")[:4]
        rows.append(ErrorRow(int(code), name, cls, retriable.strip() == "true"))
    return rows


def snapshot_id(directory: Path) -> str:
    """sha256 over the sorted spec files (name and contents), first 16 hex digits."""
    digest = hashlib.sha256()
    files = sorted([*directory.glob("*.json"), *directory.glob("errors.tsv")])
    for path in files:
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
