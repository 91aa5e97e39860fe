"""Machinery behind the typed configs in ``kclient.config``.

* :func:`setting` declares a field with its default and per-field bounds; the
  bounds live in the field metadata so ``validate()`` checks every field the
  same way.
* :func:`track_explicit` wraps the generated ``__init__`` to remember which
  keys the caller passed. A contradiction between keys is only resolved
  silently when the key that would change was left unset (as the Java client
  does); otherwise it is a :class:`ConfigError`. An unknown keyword becomes a
  :class:`ConfigError` naming it (with a close match, if any) instead of a
  ``TypeError``.
* :func:`convert_property` turns the string values of a Java/librdkafka
  ``.properties`` map into the field's Python type.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kclient._secret import Secret
from kclient.errors import ConfigError

T = TypeVar("T")
C = TypeVar("C")

_UNION_TYPES: tuple[object, ...] = (typing.Union, types.UnionType)


def setting(
    default: T,
    *,
    ge: int | None = None,
    le: int | None = None,
    choices: Sequence[object] | None = None,
) -> T:
    """A config field: ``default`` plus the bounds ``validate()`` enforces."""
    meta = {"ge": ge, "le": le, "choices": tuple(choices) if choices is not None else None}
    return dataclasses.field(default=default, metadata=meta)


def track_explicit(cls: type[C]) -> type[C]:
    """Record the keys passed to ``__init__`` in ``_explicit`` (see module doc)."""
    init: Callable[..., None] = cls.__init__
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    names = {f.name for f in fields}
    secret_keys = {f.name for f in fields if "Secret" in str(f.type)}

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            raise ConfigError("<positional>", "configs take keyword arguments only")
        for key in kwargs:
            if key not in names:
                raise ConfigError(key, f"unknown configuration key{suggest(key, names)}")
        # Wrap credentials before anything else sees them: from here on no frame holds
        # the plain string (a traceback with locals, e.g. of a ConfigError, stays clean).
        for key in secret_keys & kwargs.keys():
            if isinstance(kwargs[key], str):
                kwargs[key] = Secret(kwargs[key])
        object.__setattr__(self, "_explicit", frozenset(kwargs))
        init(self, **kwargs)

    setattr(cls, "__init__", __init__)  # noqa: B010 - replacing a method is the point
    return cls


def suggest(key: str, names: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_bounds(obj: object) -> None:
    """Check each field's type and declared bounds; raise ConfigError naming the key."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if not f.init:
            continue
        value = getattr(obj, f.name)
        _check_type(f.name, value, hints[f.name])
        ge, le, choices = f.metadata.get("ge"), f.metadata.get("le"), f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f.name, f"{value!r} is not one of {', '.join(map(repr, choices))}")
        if isinstance(value, int) and not isinstance(value, bool):
            if ge is not None and value < ge:
                raise ConfigError(f.name, f"must be >= {ge}, got {value}")
            if le is not None and value > le:
                raise ConfigError(f.name, f"must be <= {le}, got {value}")


def _check_type(key: str, value: object, hint: object) -> None:
    if _matches(value, hint):
        return
    shown = "***" if isinstance(value, Secret) else repr(value)
    raise ConfigError(key, f"expected {_type_name(hint)}, got {type(value).__name__} {shown}")


def _matches(value: object, hint: object) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return True
    if origin in _UNION_TYPES:
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, tuple) and all(_matches(v, args[0]) for v in value)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is not None:  # Callable[...] and other generics: check the runtime class only
        if origin is Callable or origin is getattr(typing, "Callable", None):
            return callable(value)
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _type_name(hint: object) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# -- .properties conversion ---------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def convert_property(key: str, prop: str, raw: object, hint: object) -> object:
    """Convert a properties value (usually a string) to the field type ``hint``."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    args = typing.get_args(hint) if typing.get_origin(hint) in _UNION_TYPES else (hint,)
    if type(None) in args and text == "":
        return None
    for arg in args:
        try:
            return _convert_one(text, arg)
        except (ValueError, TypeError):
            continue
    raise ConfigError(key, f"cannot convert property {prop}={raw!r} to {_type_name(hint)}")


def _convert_one(text: str, hint: object) -> object:
    if hint is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(text)
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    if hint is Secret:
        return Secret(text)
    if typing.get_origin(hint) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    raise TypeError(hint)


def field_hints(cls: type) -> Mapping[str, object]:
    return typing.get_type_hints(cls)
