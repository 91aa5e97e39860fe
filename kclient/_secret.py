"""A wrapper that keeps credentials out of repr, str, logs and assertion messages.

Credentials (SASL passwords, OAuth tokens, SSL key passwords) are wrapped in
:class:`Secret` as soon as they enter the library. ``repr``/``str``/``format``
all give ``'***'``; the value is only reachable through
:meth:`Secret.get_secret_value`, which the code calls at the last moment (when
the bytes are put on the wire). ``__eq__`` compares values but never shows
them, so a failing ``assert a == b`` prints ``*** != ***``.
"""

from __future__ import annotations

import hmac

__all__ = ["Secret", "SecretBytes", "as_secret"]

_MASK = "***"


class Secret:
    """A string that never shows itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def get_secret_value(self) -> str:
        """The wrapped value; call only where it goes onto the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # constant time, so comparing secrets leaks nothing through timing either
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # pickling would write the value out; refuse, like the secret itself would
        raise TypeError("Secret values cannot be pickled")


class SecretBytes:
    """Bytes that carry a credential (a SASL message holding a password or token).

    Held in this wrapper rather than as plain ``bytes`` so that the value never shows
    in a ``repr``, nor among a frame's local variables when a traceback is formatted
    with ``capture_locals=True`` (as error trackers do): only ``.value`` reaches the wire.
    """

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"SecretBytes(<{len(self.value)} bytes>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretBytes values cannot be pickled")


def as_secret(value: str | Secret | None) -> Secret | None:
    """Wrap a plain string; pass Secret and None through."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)
