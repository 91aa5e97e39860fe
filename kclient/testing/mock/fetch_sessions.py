"""KIP-227 incremental fetch sessions, per broker (pure).

Request (session_id, epoch):

* (0, -1)  full fetch, no session
* (0, 0)   full fetch, create a session; the response carries its id
* (id, 0)  close ``id``, then as (0, 0)
* (id, -1) close ``id``, full fetch without a session
* (id, n)  incremental: n must equal the session's next epoch; the request
           lists only changed partitions (added or new offset / max bytes),
           ``forgotten`` removes some; the response lists only partitions
           with records or a changed high watermark / LSO / log start / error.

Errors: unknown id -> FETCH_SESSION_ID_NOT_FOUND; wrong epoch ->
INVALID_FETCH_SESSION_EPOCH (the session survives; the client resets).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from kclient.testing.mock.codes import Err

__all__ = ["FetchSession", "FetchSessions", "SessionPartition"]

PartitionKey = tuple[str, int]


@dataclass(slots=True)
class SessionPartition:
    fetch_offset: int
    max_bytes: int
    last_sent: tuple[int, int, int, int] | None = None  # (hw, lso, log start, error)
    # The client's view of the leader epoch, remembered as Kafka's session cache does:
    # a partition left out of an incremental request is still fenced (KIP-320).
    current_leader_epoch: int = -1


@dataclass
class FetchSession:
    session_id: int
    next_epoch: int = 1
    partitions: dict[PartitionKey, SessionPartition] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class SessionDecision:
    error: Err
    session: FetchSession | None  # None: sessionless full fetch
    incremental: bool
    response_session_id: int


class FetchSessions:
    def __init__(self, max_sessions: int = 1000) -> None:
        self.sessions: dict[int, FetchSession] = {}
        self._ids = itertools.count(1)
        self.max_sessions = max_sessions

    def resolve(self, session_id: int, epoch: int) -> SessionDecision:
        if session_id == 0 and epoch == -1:
            return SessionDecision(Err.NONE, None, False, 0)
        if session_id != 0 and epoch in (0, -1):
            self.sessions.pop(session_id, None)
            if epoch == -1:
                return SessionDecision(Err.NONE, None, False, 0)
        if epoch == 0:
            if len(self.sessions) >= self.max_sessions:
                return SessionDecision(Err.NONE, None, False, 0)
            session = FetchSession(next(self._ids))
            self.sessions[session.session_id] = session
            return SessionDecision(Err.NONE, session, False, session.session_id)
        known = self.sessions.get(session_id)
        if known is None:
            return SessionDecision(Err.FETCH_SESSION_ID_NOT_FOUND, None, False, 0)
        if epoch != known.next_epoch:
            return SessionDecision(Err.INVALID_FETCH_SESSION_EPOCH, None, False, 0)
        known.next_epoch = 1 if epoch >= 2**31 - 1 else epoch + 1
        return SessionDecision(Err.NONE, known, True, known.session_id)

    @staticmethod
    def update(
        session: FetchSession,
        requested: dict[PartitionKey, SessionPartition],
        forgotten: list[PartitionKey],
        incremental: bool,
    ) -> None:
        if not incremental:
            session.partitions.clear()
        for key in forgotten:
            session.partitions.pop(key, None)
        for key, part in requested.items():
            old = session.partitions.get(key)
            if old is not None:
                old.fetch_offset, old.max_bytes = part.fetch_offset, part.max_bytes
                old.current_leader_epoch = part.current_leader_epoch
            else:
                session.partitions[key] = part
