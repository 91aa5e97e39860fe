"""Blocking clients for scripts: ``Admin``, ``Consumer`` and ``Producer``.

Thin facades over the async clients, run on one shared background event loop; see
``kclient/sync/_portal.py`` and docs/design-notes/sync.md.
"""

from kclient.sync._portal import ClientClosedError, SyncInEventLoopError
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
