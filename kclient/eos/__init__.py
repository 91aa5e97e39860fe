"""Exactly-once consume-transform-produce (``AsyncGroupTransactSession``).

A consumer group tied to a transactional producer: the offsets of what was consumed
commit in the same transaction as what was produced from it; a rebalance or an
abortable error aborts and rewinds the input. See ``session.py`` and
docs/design-notes/eos-session.md.
"""

from kclient.eos.session import AsyncGroupTransactSession, Batches, StopSignal, check_configs
from kclient.eos.state import EndDecision, Phase, SessionState

__all__ = [
    "AsyncGroupTransactSession",
    "Batches",
    "EndDecision",
    "Phase",
    "SessionState",
    "StopSignal",
    "check_configs",
]
