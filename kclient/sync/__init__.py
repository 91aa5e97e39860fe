"""Blocking clients for scripts: ``Admin``, ``Consumer`` and ``Producer``.

Thin facades over the async clients, run on one shared background event loop; see
``kclient/sync/_portal.py`` and docs/design-notes/sync.md.

Each client class is imported on first access (PEP 562 ``__getattr__``), so a script
that uses only ``Producer`` does not import the consumer, the admin client or the
exactly-once session.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kclient.sync._portal import ClientClosedError, SyncInEventLoopError

if TYPE_CHECKING:
    # listed in __all__, so mypy --strict takes them as re-exported
    from kclient.sync.admin import Admin
    from kclient.sync.consumer import Consumer
    from kclient.sync.eos import GroupTransactSession
    from kclient.sync.producer import Producer

__all__ = [
    "Admin",
    "ClientClosedError",
    "Consumer",
    "GroupTransactSession",
    "Producer",
    "SyncInEventLoopError",
]

# public name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Admin": "kclient.sync.admin",
    "Consumer": "kclient.sync.consumer",
    "GroupTransactSession": "kclient.sync.eos",
    "Producer": "kclient.sync.producer",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
