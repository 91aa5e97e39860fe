"""Bounds-checked readers and writers for every Kafka wire type.

Wire layouts (all integers big-endian, two's complement):

* int8/int16/int32/int64, uint16, uint32: fixed width.
* float64: IEEE 754 double, big-endian.
* bool: one byte, 0 is false, anything else true.
* uuid: 16 raw bytes.
* unsigned varint: 7 bits per byte, least significant group first, high bit
  set on every byte but the last; at most 5 bytes (32-bit values).
* varint / varlong: zig-zag encoded signed value ((n << 1) ^ (n >> 63)) written
  as an unsigned varint of at most 5 / 10 bytes.
* string: int16 length then UTF-8; -1 means null.
  compact string: unsigned varint (length + 1) then UTF-8; 0 means null.
* bytes: int32 length then raw bytes; -1 means null.
  compact bytes: unsigned varint (length + 1); 0 means null.
* array: int32 count then elements; -1 means null.
  compact array: unsigned varint (count + 1); 0 means null.
* tagged fields (flexible versions only): unsigned varint count, then for each
  field an unsigned varint tag, an unsigned varint size and ``size`` bytes.

The :class:`Reader` never trusts a length: every declared length or element
count is checked against the bytes remaining *before* anything is allocated,
and every failure raises a :class:`~protocol._errors_base.KafkaProtocolError`
subclass (never ``IndexError``/``struct.error``/``UnicodeDecodeError``).
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from protocol._errors_base import BufferUnderflow, EncodeError, InvalidLength, InvalidValue

__all__ = [
    "ZERO_UUID",
    "Reader",
    "unsigned_varint_size",
    "varint_size",
    "write_array_len",
    "write_bool",
    "write_bytes",
    "write_compact_array_len",
    "write_compact_bytes",
    "write_compact_nullable_bytes",
    "write_compact_nullable_string",
    "write_compact_string",
    "write_float64",
    "write_int8",
    "write_int16",
    "write_int32",
    "write_int64",
    "write_nullable_bytes",
    "write_nullable_string",
    "write_string",
    "write_tagged_fields",
    "write_uint16",
    "write_uint32",
    "write_unsigned_varint",
    "write_uuid",
    "write_varint",
    "write_varlong",
]

ZERO_UUID: Final = uuid.UUID(int=0)

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")

_INT8_RANGE = (-(1 << 7), (1 << 7) - 1)
_INT16_RANGE = (-(1 << 15), (1 << 15) - 1)
_INT32_RANGE = (-(1 << 31), (1 << 31) - 1)
_INT64_RANGE = (-(1 << 63), (1 << 63) - 1)


class Reader:
    """A cursor over an immutable buffer; every read is bounds-checked.

    ``context`` names what is being decoded (for example ``"Fetch v12
    response"``) and is added to error messages so that a failure says where
    it happened.
    """

    __slots__ = ("_buf", "_end", "context", "pos")

    def __init__(
        self, data: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None
    ) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        self._buf: memoryview = view
        self.pos: int = pos
        self._end: int = len(view) if end is None else end
        self.context: str = ""

    # -- bookkeeping -------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    @property
    def end(self) -> int:
        return self._end

    def _underflow(self, need: int) -> BufferUnderflow:
        where = f" in {self.context}" if self.context else ""
        return BufferUnderflow(
            f"buffer underflow{where}: need {need} bytes at offset {self.pos}, "
            f"{self.remaining} remaining"
        )

    def _need(self, n: int) -> int:
        """Reserve ``n`` bytes and return the position they start at."""
        pos = self.pos
        if n > self._end - pos:
            raise self._underflow(n)
        self.pos = pos + n
        return pos

    def invalid_length(self, what: str, value: int) -> InvalidLength:
        where = f" in {self.context}" if self.context else ""
        return InvalidLength(
            f"invalid {what} {value}{where} at offset {self.pos} ({self.remaining} bytes remaining)"
        )

    def sub_reader(self, size: int) -> Reader:
        """Consume ``size`` bytes and return a reader confined to them."""
        start = self._need(size)
        sub = Reader(self._buf, start, start + size)
        sub.context = self.context
        return sub

    # -- fixed width ---------------------------------------------------------

    def int8(self) -> int:
        return int(_I8.unpack_from(self._buf, self._need(1))[0])

    def int16(self) -> int:
        return int(_I16.unpack_from(self._buf, self._need(2))[0])

    def int32(self) -> int:
        return int(_I32.unpack_from(self._buf, self._need(4))[0])

    def int64(self) -> int:
        return int(_I64.unpack_from(self._buf, self._need(8))[0])

    def uint16(self) -> int:
        return int(_U16.unpack_from(self._buf, self._need(2))[0])

    def uint32(self) -> int:
        return int(_U32.unpack_from(self._buf, self._need(4))[0])

    def float64(self) -> float:
        return float(_F64.unpack_from(self._buf, self._need(8))[0])

    def boolean(self) -> bool:
        return self._buf[self._need(1)] != 0

    def uuid(self) -> uuid.UUID:
        start = self._need(16)
        return uuid.UUID(bytes=bytes(self._buf[start : start + 16]))

    def raw(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (``n`` must be non-negative)."""
        if n < 0:
            raise self.invalid_length("length", n)
        start = self._need(n)
        return bytes(self._buf[start : start + n])

    def raw_view(self, n: int) -> memoryview:
        """Like :meth:`raw` but returns a zero-copy view into the buffer."""
        if n < 0:
            raise self.invalid_length("length", n)
        start = self._need(n)
        return self._buf[start : start + n]

    # -- varints ---------------------------------------------------------------

    def _varint_raw(self, max_bytes: int) -> int:
        buf = self._buf
        pos = self.pos
        end = self._end
        result = 0
        shift = 0
        for i in range(max_bytes):
            if pos >= end:
                raise self._underflow(i + 1)
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return result
            shift += 7
        raise InvalidValue(
            f"varint longer than {max_bytes} bytes at offset {self.pos}"
            + (f" in {self.context}" if self.context else "")
        )

    def unsigned_varint(self) -> int:
        value = self._varint_raw(5)
        if value > 0xFFFFFFFF:
            raise InvalidValue(f"unsigned varint {value} does not fit 32 bits")
        return value

    def varint(self) -> int:
        raw = self._varint_raw(5)
        if raw > 0xFFFFFFFF:
            raise InvalidValue(f"varint {raw} does not fit 32 bits")
        return (raw >> 1) ^ -(raw & 1)

    def varlong(self) -> int:
        raw = self._varint_raw(10)
        if raw > 0xFFFFFFFFFFFFFFFF:
            raise InvalidValue(f"varlong {raw} does not fit 64 bits")
        return (raw >> 1) ^ -(raw & 1)

    # -- strings and bytes ----------------------------------------------------------

    def _utf8(self, n: int) -> str:
        start = self._need(n)
        try:
            return str(self._buf[start : start + n], "utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidValue(f"invalid UTF-8 in string at offset {start}: {exc.reason}") from None

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n == -1:
            return None
        if n < 0:
            raise self.invalid_length("string length", n)
        return self._utf8(n)

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise self.invalid_length("non-nullable string length", -1)
        return value

    def compact_nullable_string(self) -> str | None:
        n = self.unsigned_varint()
        if n == 0:
            return None
        return self._utf8(n - 1)

    def compact_string(self) -> str:
        value = self.compact_nullable_string()
        if value is None:
            raise self.invalid_length("non-nullable compact string length", -1)
        return value

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        if n == -1:
            return None
        if n < 0:
            raise self.invalid_length("bytes length", n)
        return self.raw(n)

    def bytes_(self) -> bytes:
        value = self.nullable_bytes()
        if value is None:
            raise self.invalid_length("non-nullable bytes length", -1)
        return value

    def compact_nullable_bytes(self) -> bytes | None:
        n = self.unsigned_varint()
        if n == 0:
            return None
        return self.raw(n - 1)

    def compact_bytes(self) -> bytes:
        value = self.compact_nullable_bytes()
        if value is None:
            raise self.invalid_length("non-nullable compact bytes length", -1)
        return value

    # -- arrays ------------------------------------------------------------------

    def _check_count(self, count: int, min_element_size: int) -> int:
        # Every element takes at least ``min_element_size`` bytes, so a count the
        # remaining bytes cannot hold is a lie: reject it before allocating.
        if count > self.remaining // max(min_element_size, 1):
            raise self.invalid_length("array count", count)
        return count

    def array_length(self, min_element_size: int = 1) -> int | None:
        """Read a classic array count; ``None`` for a null array."""
        n = self.int32()
        if n == -1:
            return None
        if n < 0:
            raise self.invalid_length("array count", n)
        return self._check_count(n, min_element_size)

    def compact_array_length(self, min_element_size: int = 1) -> int | None:
        """Read a compact array count; ``None`` for a null array."""
        n = self.unsigned_varint()
        if n == 0:
            return None
        return self._check_count(n - 1, min_element_size)

    # -- tagged fields ----------------------------------------------------------

    def tagged_fields(self) -> list[tuple[int, memoryview]]:
        """Read a tagged-field section; returns (tag, payload view) in wire order.

        Tags must be strictly increasing, as the protocol requires.
        """
        count = self.unsigned_varint()
        # Each tagged field takes at least two bytes (tag and size varints).
        self._check_count(count, 2)
        fields: list[tuple[int, memoryview]] = []
        last = -1
        for _ in range(count):
            tag = self.unsigned_varint()
            if tag <= last:
                raise InvalidValue(f"tagged field {tag} out of order after {last}")
            last = tag
            size = self.unsigned_varint()
            fields.append((tag, self.raw_view(size)))
        return fields


# -- writers ---------------------------------------------------------------------
#
# Writers append to a bytearray. Range checks turn a too-large Python int into
# an EncodeError instead of a struct.error deep inside a request.


def _check_range(value: int, bounds: tuple[int, int], kind: str) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise EncodeError(f"{value} does not fit {kind}")


def write_int8(out: bytearray, value: int) -> None:
    _check_range(value, _INT8_RANGE, "int8")
    out += _I8.pack(value)


def write_int16(out: bytearray, value: int) -> None:
    _check_range(value, _INT16_RANGE, "int16")
    out += _I16.pack(value)


def write_int32(out: bytearray, value: int) -> None:
    _check_range(value, _INT32_RANGE, "int32")
    out += _I32.pack(value)


def write_int64(out: bytearray, value: int) -> None:
    _check_range(value, _INT64_RANGE, "int64")
    out += _I64.pack(value)


def write_uint16(out: bytearray, value: int) -> None:
    _check_range(value, (0, 0xFFFF), "uint16")
    out += _U16.pack(value)


def write_uint32(out: bytearray, value: int) -> None:
    _check_range(value, (0, 0xFFFFFFFF), "uint32")
    out += _U32.pack(value)


def write_float64(out: bytearray, value: float) -> None:
    out += _F64.pack(value)


def write_bool(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def write_uuid(out: bytearray, value: uuid.UUID) -> None:
    out += value.bytes


def write_unsigned_varint(out: bytearray, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(f"{value} does not fit an unsigned varint")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _write_raw_varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_varint(out: bytearray, value: int) -> None:
    _check_range(value, _INT32_RANGE, "varint")
    _write_raw_varint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, value: int) -> None:
    _check_range(value, _INT64_RANGE, "varlong")
    _write_raw_varint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def unsigned_varint_size(value: int) -> int:
    size = 1
    while value > 0x7F:
        value >>= 7
        size += 1
    return size


def varint_size(value: int) -> int:
    """Encoded size of a zig-zag varint/varlong."""
    return unsigned_varint_size(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"string is not encodable as UTF-8: {exc.reason}") from None


def write_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _I16.pack(-1)
        return
    data = _utf8(value)
    if len(data) > 0x7FFF:
        raise EncodeError(f"string of {len(data)} bytes exceeds the int16 length limit")
    out += _I16.pack(len(data))
    out += data


def write_string(out: bytearray, value: str) -> None:
    if value is None:
        raise EncodeError("null given for a non-nullable string")
    write_nullable_string(out, value)


def write_compact_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out.append(0)
        return
    data = _utf8(value)
    write_unsigned_varint(out, len(data) + 1)
    out += data


def write_compact_string(out: bytearray, value: str) -> None:
    if value is None:
        raise EncodeError("null given for a non-nullable string")
    write_compact_nullable_string(out, value)


def write_nullable_bytes(out: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        out += _I32.pack(-1)
        return
    out += _I32.pack(len(value))
    out += value


def write_bytes(out: bytearray, value: bytes | bytearray | memoryview) -> None:
    if value is None:
        raise EncodeError("null given for non-nullable bytes")
    write_nullable_bytes(out, value)


def write_compact_nullable_bytes(
    out: bytearray, value: bytes | bytearray | memoryview | None
) -> None:
    if value is None:
        out.append(0)
        return
    write_unsigned_varint(out, len(value) + 1)
    out += value


def write_compact_bytes(out: bytearray, value: bytes | bytearray | memoryview) -> None:
    if value is None:
        raise EncodeError("null given for non-nullable bytes")
    write_compact_nullable_bytes(out, value)


def write_array_len(out: bytearray, count: int | None) -> None:
    """Classic array count; ``None`` writes a null array."""
    out += _I32.pack(-1 if count is None else count)


def write_compact_array_len(out: bytearray, count: int | None) -> None:
    """Compact array count; ``None`` writes a null array."""
    write_unsigned_varint(out, 0 if count is None else count + 1)


def write_tagged_fields(out: bytearray, fields: list[tuple[int, bytes]]) -> None:
    """Write a tagged-field section; ``fields`` must be sorted by tag."""
    write_unsigned_varint(out, len(fields))
    for tag, payload in fields:
        write_unsigned_varint(out, tag)
        write_unsigned_varint(out, len(payload))
        out += payload
