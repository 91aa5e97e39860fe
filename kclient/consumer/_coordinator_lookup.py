"""Group-coordinator discovery bookkeeping for :class:`GroupMember` (pure).

Knows the coordinator's node id or that it is unknown, and when the next
FindCoordinator may go out. Consecutive failures (FindCoordinator errors, or the
coordinator being lost again) grow the wait exponentially with jitter up to the cap,
and any successful group response resets it: a flapping coordinator cannot make the
member hot-loop (reliability 1.5 #10, C4). The first rediscovery after a success is
immediate.
"""

from __future__ import annotations

from kclient.consumer.group_types import ExponentialBackoff, FindCoordinatorRequest


class CoordinatorLookup:
    def __init__(self, group_id: str, backoff: ExponentialBackoff) -> None:
        self._group_id = group_id
        self._backoff = backoff
        self.node_id: int | None = None
        #: The latest coordinator found, kept while it is being looked up again: a close
        #: sends its LeaveGroup there rather than not at all (a request timing out does
        #: not mean the coordinator moved; if it did, the answer is a harmless error).
        self.last_known: int | None = None
        self.failures = 0
        self.not_before = 0
        self.in_flight: FindCoordinatorRequest | None = None

    def plan(self, now: int) -> FindCoordinatorRequest | None:
        if self.node_id is not None or self.in_flight is not None or now < self.not_before:
            return None
        self.in_flight = FindCoordinatorRequest(self._group_id)
        return self.in_flight

    def deadline(self) -> int | None:
        return self.not_before if self.node_id is None and self.in_flight is None else None

    def on_response(self, request: FindCoordinatorRequest, now: int, node_id: int | None) -> None:
        """``node_id`` None means the lookup failed (error code or no node)."""
        if request is not self.in_flight:
            return
        self.in_flight = None
        if node_id is None:
            self._failed(now)
        else:
            self.node_id = self.last_known = node_id

    def on_failed(self, request: object, now: int) -> bool:
        if request is not self.in_flight:
            return False
        self.in_flight = None
        self._failed(now)
        return True

    def _failed(self, now: int) -> None:
        self.failures += 1
        self.not_before = now + self._backoff.delay(self.failures)

    def mark_unknown(self, now: int) -> None:
        self.node_id = None
        self.failures += 1
        self.not_before = now + self._backoff.delay(self.failures - 1)

    def succeeded(self) -> None:
        self.failures = 0
