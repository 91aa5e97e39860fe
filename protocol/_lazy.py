"""On-demand loading of the generated message modules.

Importing every generated module builds a few thousand dataclasses (about 0.3 s), while a
client only ever speaks a handful of APIs. ``protocol.messages`` therefore imports none of
them up front: its ``REGISTRY`` is a :class:`LazyRegistry` that imports the module of an API
key the first time that key is looked up, and its module ``__getattr__`` resolves the
message class names the same way (:func:`load_attribute`).

Key membership, iteration and ``len`` come from the generated table alone, so they never
import anything; only reading a value (``[]``, ``get``, ``values()``, ``items()``) does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet

from protocol.api import Request, Response

__all__ = ["LazyRegistry", "MessagePair", "load_attribute"]

MessagePair = tuple[type[Request], type[Response]]


class LazyRegistry(Mapping[int, MessagePair]):
    """API key -> (request class, response class), importing each module on first lookup.

    ``table`` maps each key to (module name inside ``package``, request class name,
    response class name); it is written by the code generator.
    """

    __slots__ = ("_loaded", "_package", "_table")

    def __init__(self, package: str, table: Mapping[int, tuple[str, str, str]]) -> None:
        self._package = package
        self._table = dict(table)
        self._loaded: dict[int, MessagePair] = {}

    def __getitem__(self, key: int) -> MessagePair:
        # The loaded dict is the fast path: framing looks a key up for every response.
        try:
            return self._loaded[key]
        except KeyError:
            pass
        module_name, request_name, response_name = self._table[key]  # KeyError if unknown
        module = importlib.import_module(f"{self._package}.{module_name}")
        request = getattr(module, request_name)
        response = getattr(module, response_name)
        if not (
            isinstance(request, type)
            and issubclass(request, Request)
            and isinstance(response, type)
            and issubclass(response, Response)
        ):
            raise TypeError(
                f"{module.__name__}: {request_name}/{response_name} are not a "
                "Request/Response pair; regenerate protocol.messages"
            )
        pair: MessagePair = (request, response)
        self._loaded[key] = pair
        return pair

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[int]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return (
            f"LazyRegistry({self._package!r}, {len(self._table)} APIs, {len(self._loaded)} loaded)"
        )

    def class_modules(self) -> dict[str, str]:
        """Message class name -> module name inside the package, for ``__getattr__``."""
        names: dict[str, str] = {}
        for module_name, request_name, response_name in self._table.values():
            names[request_name] = module_name
            names[response_name] = module_name
        return names


def load_attribute(
    package: str, class_modules: Mapping[str, str], submodules: AbstractSet[str], name: str
) -> object:
    """Body of a package's PEP 562 ``__getattr__``: import what ``name`` refers to.

    ``class_modules`` maps each lazily provided class name to the submodule defining it;
    a name in ``submodules`` is the submodule itself (importing it also binds it on the
    package, as an eager ``import`` used to). Anything else raises ``AttributeError``.
    """
    if name in submodules:
        return importlib.import_module(f"{package}.{name}")
    module_name = class_modules.get(name)
    if module_name is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{module_name}"), name)
