"""Blocking clients for scripts: ``Admin``, ``Consumer`` and ``Producer``.

Thin facades over the async clients, run on one shared background event loop; see
``kclient/sync/_portal.py`` and docs/design-notes/sync.md.

Each client class is imported on first access (PEP 562 ``__getattr__``), so a script
that uses only ``Producer`` does not import the consumer, the admin client or the
exactly-once session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kclient.sync._portal import ClientClosedError, SyncInEventLoopError
from protocol._lazy import load_attribute

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

# public name -> the submodule that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Admin": "admin",
    "Consumer": "consumer",
    "GroupTransactSession": "eos",
    "Producer": "producer",
}


def __getattr__(name: str) -> object:
    value = load_attribute(__name__, _LAZY, frozenset(), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
