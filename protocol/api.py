"""Base classes of the generated message classes, and helpers their code calls.

Every generated struct is a ``@dataclass(slots=True, kw_only=True)`` deriving
from :class:`Struct`; top-level messages derive from :class:`Message` (through
:class:`Request` / :class:`Response` for API messages). The generated
``write``/``read`` methods are straight-line code; these bases only add the
byte-level entry points (``encode``/``decode``) and describe the field schema
(``_SCHEMA``) so that tests can derive value generators from the classes.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, TypeVar

from typing_extensions import Self

from protocol._errors_base import EncodeError, InvalidLength, UnsupportedVersionError
from protocol.primitives import Reader, write_int16

__all__ = [
    "FieldSpec",
    "Message",
    "Request",
    "Response",
    "Struct",
    "absent_field_error",
    "check_tagged_end",
    "decode_versioned",
    "encode_versioned",
    "merge_tagged_fields",
    "null_field_error",
    "tagged_reader",
    "unknown_tags_error",
    "version_error",
]


class FieldSpec(NamedTuple):
    """Static description of one field of a generated struct.

    ``kind`` is the element type (``int32``, ``string``, ``records``, ...,
    or ``struct`` with the class in ``struct``); ``array`` marks ``[]type``.
    Version ranges are inclusive ``(lo, hi)``; ``nullable`` and ``tagged`` are
    ``None`` when the field is never nullable / never tagged.
    """

    name: str
    kind: str
    array: bool
    versions: tuple[int, int]
    nullable: tuple[int, int] | None
    tag: int | None
    tagged: tuple[int, int] | None
    ignorable: bool
    struct: type[Struct] | None


class Struct:
    """A (possibly nested) generated structure."""

    __slots__ = ()

    _SCHEMA: ClassVar[tuple[FieldSpec, ...]] = ()

    def write(self, out: bytearray, version: int) -> None:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader, version: int) -> Self:
        raise NotImplementedError


class Message(Struct):
    """A top-level message with its own version range."""

    __slots__ = ()

    MIN_VERSION: ClassVar[int]
    MAX_VERSION: ClassVar[int]
    FLEXIBLE_VERSION: ClassVar[int | None]

    @classmethod
    def describe(cls, version: int) -> str:
        """Human-readable name of this message at ``version`` (used in errors)."""
        return f"{cls.__name__} v{version}"

    def encode(self, version: int) -> bytes:
        out = bytearray()
        self.write(out, version)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, version: int) -> Self:
        r = Reader(data)
        r.context = cls.describe(version)
        obj = cls.read(r, version)
        if r.remaining:
            raise r.invalid_length("trailing byte count", r.remaining)
        return obj


class Request(Message):
    """Base of every generated request class."""

    __slots__ = ()

    API_KEY: ClassVar[int]
    API_NAME: ClassVar[str]
    RESPONSE_TYPE: ClassVar[type[Response]]

    @classmethod
    def describe(cls, version: int) -> str:
        return f"{cls.API_NAME} v{version} request"


class Response(Message):
    """Base of every generated response class."""

    __slots__ = ()

    API_KEY: ClassVar[int]
    API_NAME: ClassVar[str]

    @classmethod
    def describe(cls, version: int) -> str:
        return f"{cls.API_NAME} v{version} response"


_M = TypeVar("_M", bound=Message)


def encode_versioned(message: Message, version: int) -> bytes:
    """Encode ``message`` prefixed by its int16 version (consumer-protocol layout)."""
    out = bytearray()
    write_int16(out, version)
    message.write(out, version)
    return bytes(out)


def decode_versioned(cls: type[_M], data: bytes | bytearray | memoryview) -> _M:
    """Decode an int16-version-prefixed ``cls``.

    A version newer than ours is decoded with our highest version (newer
    versions only append fields), and its trailing bytes are ignored.
    """
    r = Reader(data)
    r.context = cls.__name__
    version = r.int16()
    if version < cls.MIN_VERSION:
        raise version_error(cls, version)
    newer = version > cls.MAX_VERSION
    if newer:
        version = cls.MAX_VERSION
    r.context = cls.describe(version)
    obj = cls.read(r, version)
    if r.remaining and not newer:
        raise r.invalid_length("trailing byte count", r.remaining)
    return obj


# -- helpers called by generated code ----------------------------------------------


def version_error(cls: type[Message], version: int) -> UnsupportedVersionError:
    return UnsupportedVersionError(
        f"{cls.__name__} supports versions {cls.MIN_VERSION}-{cls.MAX_VERSION}, not {version}"
    )


def absent_field_error(struct: str, field: str, version: int, value: Any) -> EncodeError:
    return EncodeError(
        f"{struct}.{field} is set to {value!r} but version {version} does not carry it"
    )


def null_field_error(struct: str, field: str, version: int) -> EncodeError:
    return EncodeError(f"{struct}.{field} is None but is not nullable in version {version}")


def unknown_tags_error(struct: str, version: int) -> EncodeError:
    return EncodeError(f"{struct} has unknown tagged fields but version {version} is not flexible")


def merge_tagged_fields(
    known: list[tuple[int, bytes]], unknown: dict[int, bytes]
) -> list[tuple[int, bytes]]:
    """Merge known and unknown tagged fields in tag order; a duplicate tag is an error."""
    merged = known + list(unknown.items())
    merged.sort(key=lambda item: item[0])
    for i in range(1, len(merged)):
        if merged[i][0] == merged[i - 1][0]:
            raise EncodeError(f"tagged field {merged[i][0]} is both known and unknown")
    return merged


def tagged_reader(r: Reader, payload: memoryview) -> Reader:
    """A reader over one tagged field's payload, inheriting the error context."""
    sub = Reader(payload)
    sub.context = r.context
    return sub


def check_tagged_end(sub: Reader, tag: int) -> None:
    if sub.remaining:
        raise InvalidLength(
            f"tagged field {tag} has {sub.remaining} unread trailing bytes"
            + (f" in {sub.context}" if sub.context else "")
        )
