"""KIP-227 incremental fetch sessions, one handler per broker, pure.

Theory of operation
-------------------
A fetch session lets the broker remember the partitions a consumer fetches, so a
request only carries what changed. The client side is a tiny state machine over the
pair (session_id, epoch) sent in every Fetch request (v7+):

* ``(0, 0)`` INITIAL -- full request, asks the broker to create a session.
* ``(0, -1)`` sessionless -- full request, no session (sessions disabled).
* ``(id, 0)`` -- full request that closes session ``id`` and asks for a new one
  ("close existing, attempt new"; sent after any error so no stale state survives).
* ``(id, n>0)`` -- incremental request in established session ``id``.
* ``(id, -1)`` FINAL -- closes session ``id`` (consumer shutdown).

``build(wanted)`` diffs the wanted partitions against the session's partition set:
added and altered partitions (any field differs; a new fetch offset after data came
back is the common case) are sent, partitions no longer wanted are *forgotten*, and a
partition whose topic id changed is forgotten under the old id and re-added under the
new (KIP-516). The session set becomes ``wanted`` immediately, because the broker
applies the diff when it processes the request; if that request fails, the next one
is full anyway.

``handle_response`` moves the pair: a full request answered with session id S>0
establishes S at epoch 1; an incremental answer advances the epoch (wrapping from
2**31-1 to 1); an answer with session id 0 means the broker has no session for us, so
the next request starts over with INITIAL. FETCH_SESSION_ID_NOT_FOUND resets to
INITIAL; INVALID_FETCH_SESSION_EPOCH and every other top-level error, a response
naming a partition we did not request, or a transport failure (``handle_error``) resets
to "close existing, attempt new". After a reset the caller ignores that response's
partition data (``handle_response`` returns False).

Only one request per session may be in flight: the epoch sequence is the session's
consistency check, and a second request built before the first is answered would be
judged against a diff the broker may never have applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from kclient.consumer._errors import ErrorCode, IllegalStateError
from kclient.structs import TopicPartition

__all__ = [
    "FINAL_EPOCH",
    "INITIAL_EPOCH",
    "INVALID_SESSION_ID",
    "FetchPartitionData",
    "FetchSessionHandler",
    "FetchSessionRequest",
]

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
_MAX_EPOCH = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FetchPartitionData:
    """What one partition entry of a Fetch request says. Equality is the "altered" test."""

    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1
    topic_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class FetchSessionRequest:
    """The session part of one Fetch request.

    ``to_send`` goes into ``Topics``; ``to_forget`` into ``ForgottenTopicsData`` (under
    the topic id it was *sent* with). ``session_partitions`` is everything the session
    covers after this request: the fetcher resolves response entries against it.
    """

    node_id: int
    session_id: int
    epoch: int
    to_send: dict[TopicPartition, FetchPartitionData]
    to_forget: dict[TopicPartition, FetchPartitionData]
    session_partitions: dict[TopicPartition, FetchPartitionData]

    @property
    def is_full(self) -> bool:
        return self.epoch in (INITIAL_EPOCH, FINAL_EPOCH)


def _next_epoch(epoch: int) -> int:
    return 1 if epoch >= _MAX_EPOCH else epoch + 1


class FetchSessionHandler:
    """Client half of one broker's fetch session. See the module docstring."""

    def __init__(self, node_id: int, *, use_sessions: bool = True) -> None:
        self.node_id = node_id
        self._use_sessions = use_sessions
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH if use_sessions else FINAL_EPOCH
        self._partitions: dict[TopicPartition, FetchPartitionData] = {}
        self._in_flight: FetchSessionRequest | None = None

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    @property
    def partitions(self) -> Mapping[TopicPartition, FetchPartitionData]:
        return self._partitions

    def build(self, wanted: Mapping[TopicPartition, FetchPartitionData]) -> FetchSessionRequest:
        if self._in_flight is not None:
            raise IllegalStateError(
                f"fetch session for node {self.node_id} already has a request in flight"
            )
        wanted = dict(wanted)
        if self.epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            request = FetchSessionRequest(
                self.node_id, self.session_id, self.epoch, wanted, {}, wanted
            )
        else:
            to_send, to_forget = self._diff(wanted)
            request = FetchSessionRequest(
                self.node_id, self.session_id, self.epoch, to_send, to_forget, wanted
            )
        self._partitions = wanted
        self._in_flight = request
        return request

    def _diff(
        self, wanted: Mapping[TopicPartition, FetchPartitionData]
    ) -> tuple[dict[TopicPartition, FetchPartitionData], dict[TopicPartition, FetchPartitionData]]:
        to_send: dict[TopicPartition, FetchPartitionData] = {}
        to_forget: dict[TopicPartition, FetchPartitionData] = {}
        for tp, data in wanted.items():
            old = self._partitions.get(tp)
            if old is None or old != data:
                to_send[tp] = data
            if old is not None and old.topic_id != data.topic_id:
                to_forget[tp] = old  # replaced: forget under the old id, add under the new
        for tp, old in self._partitions.items():
            if tp not in wanted:
                to_forget[tp] = old
        return to_send, to_forget

    def handle_response(
        self,
        request: FetchSessionRequest,
        error_code: int,
        session_id: int,
        response_partitions: Collection[TopicPartition],
    ) -> bool:
        """Advance the session after a response. Returns False when the response's
        partition data must be ignored (session error or an inconsistent response)."""
        if not self._take(request):
            return False
        if error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND:
            self._reset_to_initial()
            return False
        if error_code != ErrorCode.NONE:
            self._close_existing_attempt_new()
            return False
        if any(tp not in request.session_partitions for tp in response_partitions):
            self._close_existing_attempt_new()
            return False
        if not self._use_sessions:
            return True
        if session_id == INVALID_SESSION_ID:
            self._reset_to_initial()
        elif request.is_full:
            self.session_id, self.epoch = session_id, 1
        else:
            self.epoch = _next_epoch(self.epoch)
        return True

    def handle_error(self, request: FetchSessionRequest) -> None:
        """The request failed in transport (disconnect, timeout): its outcome is unknown,
        so the next request is full and replaces whatever the broker holds."""
        if self._take(request):
            self._close_existing_attempt_new()

    def close_request(self) -> tuple[int, int] | None:
        """(session_id, FINAL_EPOCH) to close the session on shutdown, or None if none."""
        if self.session_id == INVALID_SESSION_ID:
            return None
        session_id = self.session_id
        self._reset_to_initial()
        return session_id, FINAL_EPOCH

    def _take(self, request: FetchSessionRequest) -> bool:
        # A response to anything but the request in flight is stale (the session was
        # reset in between); it must not move the epoch.
        if self._in_flight is not request:
            return False
        self._in_flight = None
        return True

    def _reset_to_initial(self) -> None:
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH if self._use_sessions else FINAL_EPOCH

    def _close_existing_attempt_new(self) -> None:
        if not self._use_sessions:
            return
        # Keep session_id: sending (id, 0) tells the broker to drop it and start fresh.
        self.epoch = INITIAL_EPOCH
