"""Sans-IO classic consumer-group member (JoinGroup / SyncGroup / Heartbeat / LeaveGroup).

Theory of operation
-------------------
:class:`GroupMember` never awaits. Its driver (the coordinator task) loops::

    result = member.poll(now)
    for event in result.events:  run the listener (may commit), then update subscriptions
    for request in result.requests:  send it; on reply call member.on_<api>_response(...)
                                     on transport failure call member.on_request_failed(...)
                                     (LeaveGroup answers need no handler)
    sleep until result.deadline or until a response / wake-up arrives

Events come before requests on purpose: an eager member reports REVOKED in one poll and
only builds JoinGroup in the next, so a commit made inside ``on_partitions_revoked``
still runs with the old, valid generation (the broker accepts commits of the current
generation while the group is PreparingRebalance).

States (``MemberState``; legal moves in ``_TRANSITIONS``; every change goes through
``_transition_to``; all three, with the fields, in ``_member_core.py``)::

    UNJOINED -> PREPARING_REBALANCE -JoinGroup-> COMPLETING_REBALANCE -SyncGroup-> STABLE
    STABLE -> PREPARING_REBALANCE      (rejoin: subscription change, revoke, group rebalancing)
    COMPLETING -> PREPARING            (REBALANCE_IN_PROGRESS on SyncGroup, coordinator moved)
    PREPARING/COMPLETING/STABLE -> UNJOINED   (membership lost, or left after poll timeout)
    any -> FATAL (fenced instance id, authorization, ...) -> CLOSED

Orthogonal to the state: the coordinator (node id or unknown, rediscovered with
FindCoordinator under capped exponential backoff with jitter) and the generation
(``generation_id``/``member_id``; -1/"" when reset).

Loss rules (reliability 1.5 #7, C3, C5, C6): on ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID
for the *current* generation, or when the local session timer expires, the owned
partitions are LOST (not revoked), the generation is reset (and the member id, for
UNKNOWN_MEMBER_ID and session expiry) and the member rejoins. The session timer runs
from the send time of the latest heartbeat that proved membership (the broker's timer
expires no earlier than ours), and from the answer of a JoinGroup/SyncGroup round trip.

A response counts only if it answers the request in flight (identity) for the current
generation: a late reply from an earlier generation cannot reset a newer one.

``max_poll_interval_ms``: if the application does not call poll in time the member
reports LOST, sends LeaveGroup (dynamic members) and stays out until
:meth:`on_app_poll`, which raises :class:`MaxPollIntervalExceededError` once and lets
the member rejoin.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kclient.consumer import group_types as gt
from kclient.consumer._errors import (
    COORDINATOR_MOVED,
    FATAL_JOIN_ERRORS,
    CommitFailedError,
    ErrorCode,
    MaxPollIntervalExceededError,
    broker_error,
)
from kclient.consumer._member_core import NO_GENERATION, MemberCore, MemberState
from kclient.consumer.assignors.base import RebalanceProtocol
from protocol._errors_base import KafkaError

__all__ = ["NO_GENERATION", "GroupMember", "MemberState"]


class GroupMember(MemberCore):
    """See the module docstring; fields and state moves are in :class:`MemberCore`."""

    # -- inputs from the application ------------------------------------------------------

    def set_subscription(self, topics: Collection[str]) -> None:
        """New subscribed topic set (also from pattern re-matching); rejoins if changed."""
        topics = frozenset(topics)
        if topics != self.topics:
            self.topics = topics
            self.request_rejoin("subscription changed")

    @property
    def rejoin_needed(self) -> bool:
        return self._rejoin_reason is not None

    def on_app_poll(self, now: int) -> None:
        """The application polled. Raises the pending fatal error, or
        MaxPollIntervalExceededError once after a poll-timeout leave."""
        self._last_app_poll = now
        if self._fatal is not None:
            raise self._fatal
        if self._poll_expired:
            self._poll_expired = False
            self.request_rejoin("application polled again after max.poll.interval")
            raise MaxPollIntervalExceededError(
                f"poll not called within max_poll_interval_ms={self.config.max_poll_interval_ms}; "
                "the consumer left the group and is rejoining"
            )

    def commit_identity(self) -> gt.GroupIdentity:
        """Identity for an OffsetCommit now, or raise the error the commit must fail with.

        Allowed while STABLE and during the eager revoke window (PREPARING, JoinGroup not
        sent yet). During a JoinGroup/SyncGroup round trip the new assignment is unknown,
        so the commit fails fast with RebalanceInProgress (C2) instead of being retried.
        """
        refusal = self.commit_refusal()
        if refusal is not None:
            raise refusal
        if self.coordinator is None:
            raise CommitFailedError("not a member of a generation; the partitions may have moved")
        return gt.GroupIdentity(
            self.coordinator, self.generation_id, self.member_id, self.config.group_instance_id
        )

    def commit_refusal(self) -> KafkaError | None:
        """The error a commit must fail with now whatever the coordinator, or None.

        Checked before waiting for an unknown coordinator: a commit made inside a
        lost callback (session expired, coordinator marked unknown, C5) runs on the
        driver that would rediscover the coordinator, so waiting for it there hangs
        until the commit's timeout instead of failing with CommitFailedError.
        """
        if self._fatal is not None:
            return self._fatal
        rebalancing = self.state in (
            MemberState.PREPARING_REBALANCE,
            MemberState.COMPLETING_REBALANCE,
        )
        joining = self._join_in_flight is not None or self.state is MemberState.COMPLETING_REBALANCE
        if rebalancing and (joining or self.generation_id == NO_GENERATION):
            return broker_error(ErrorCode.REBALANCE_IN_PROGRESS, "commit during a rebalance")
        if self.generation_id == NO_GENERATION:
            return CommitFailedError("not a member of a generation; the partitions may have moved")
        return None

    # -- the planner ------------------------------------------------------------------------

    def poll(self, now: int) -> gt.PollResult:
        result = gt.PollResult()
        # Queued callbacks always go out in a poll of their own, before anything else is
        # planned: a commit made inside them must see the membership they were raised in.
        if self.state not in (MemberState.FATAL, MemberState.CLOSED) and not self._events:
            self._check_timers(now)
            if not self._events:
                self._take_pending_leave(result)
                if self.coordinator is None:
                    self._plan_find_coordinator(now, result)
                else:
                    self._plan_group(now, result)
        result.events, self._events = self._events, []
        if result.events:
            result.deadline = now  # run callbacks, then poll again at once
        elif self.state not in (MemberState.FATAL, MemberState.CLOSED):
            result.deadline = self._deadline(now)
        return result

    @property
    def _holding(self) -> bool:
        """Waiting for a revocation while still a member of the generation."""
        return self.hold_join and self.generation_id != NO_GENERATION

    def _check_timers(self, now: int) -> None:
        joined = (
            self.state in (MemberState.STABLE, MemberState.COMPLETING_REBALANCE) or self._holding
        )
        if joined and now >= self._last_app_poll + self.config.max_poll_interval_ms:
            self._leave_for_poll_timeout(now)
            return
        # While JoinGroup/SyncGroup is pending the broker keeps the member alive itself.
        round_trip = (
            self._join_in_flight is not None
            or self._sync_in_flight is not None
            or self._pending_sync is not None
        )
        expired = now >= self._alive_at + self.config.session_timeout_ms
        if self.generation_id != NO_GENERATION and not round_trip and expired:
            self._reset_generation(reset_member_id=True)
            if self.coordinator is not None:
                self._mark_coordinator_unknown(now)

    def _leave_for_poll_timeout(self, now: int) -> None:
        self._poll_expired = True
        if self.config.group_instance_id is None and self.coordinator is not None:
            self._pending_leave = gt.LeaveGroupRequest(
                self.coordinator,
                self.config.group_id,
                self.member_id,
                None,
                "consumer poll timeout has expired",
            )
        self._reset_generation(reset_member_id=True)
        self._rejoin_reason = None  # stay out until the application polls again

    def _plan_find_coordinator(self, now: int, result: gt.PollResult) -> None:
        request = self._lookup.plan(now)
        if request is not None:
            result.requests.append(request)

    def _take_pending_leave(self, result: gt.PollResult) -> None:
        if self._pending_leave is not None:
            result.requests.append(self._pending_leave)
            self._pending_leave = None

    def _plan_group(self, now: int, result: gt.PollResult) -> None:
        if self._pending_sync is not None:
            self._sync_in_flight, self._pending_sync = self._pending_sync, None
            result.requests.append(self._sync_in_flight)
            return
        if self._join_due():
            self._plan_join(now, result)
        elif self.state is MemberState.STABLE or self._holding:
            self._plan_heartbeat(now, result)

    def _join_due(self) -> bool:
        idle = self._join_in_flight is None and self._sync_in_flight is None
        return self.rejoin_needed and idle and not self.hold_join

    def _plan_join(self, now: int, result: gt.PollResult) -> None:
        if now < self._join_not_before:
            return
        self._prepare_join()
        if self._events:
            return  # revoke callbacks first; JoinGroup on the next poll
        assert self.coordinator is not None
        protocols = self._protocol.join_protocols(self.topics, self.owned, self.owned_generation)
        request = gt.JoinGroupRequest(
            self.coordinator,
            self.config.group_id,
            self.config.session_timeout_ms,
            self.config.max_poll_interval_ms,
            self.member_id,
            self.config.group_instance_id,
            self.config.protocol_type,
            tuple(protocols),
            self._rejoin_reason,
        )
        self._join_in_flight = request
        self.join_count += 1
        result.requests.append(request)

    def _prepare_join(self) -> None:
        if self.state is not MemberState.PREPARING_REBALANCE:
            self._transition_to(MemberState.PREPARING_REBALANCE)
        if self._join_prepared:
            return
        self._join_prepared = True
        if self._protocol.rebalance_protocol is RebalanceProtocol.EAGER:
            self._emit(gt.RebalanceEventKind.REVOKED, self.owned)
            self.owned = frozenset()
            self.owned_generation = NO_GENERATION

    def _plan_heartbeat(self, now: int, result: gt.PollResult) -> None:
        if self._hb_in_flight is not None or now < self._next_heartbeat:
            return
        assert self.coordinator is not None
        self._hb_in_flight = gt.HeartbeatRequest(
            self.coordinator,
            self.config.group_id,
            self.generation_id,
            self.member_id,
            self.config.group_instance_id,
        )
        self._hb_sent_at = now
        self._next_heartbeat = now + self.config.heartbeat_interval_ms
        result.requests.append(self._hb_in_flight)

    def _deadline(self, now: int) -> int | None:
        candidates: list[int] = []
        if self.coordinator is None:
            lookup = self._lookup.deadline()
            candidates.extend([] if lookup is None else [lookup])
        elif self._join_due():
            candidates.append(self._join_not_before)
        elif (self.state is MemberState.STABLE or self._holding) and self._hb_in_flight is None:
            candidates.append(self._next_heartbeat)
        round_trip = self._join_in_flight is not None or self._sync_in_flight is not None
        if self.generation_id != NO_GENERATION and not round_trip:
            # Suspended during a round trip (_check_timers); else the driver would spin.
            candidates.append(self._alive_at + self.config.session_timeout_ms)
        if self.state in (MemberState.STABLE, MemberState.COMPLETING_REBALANCE) or self._holding:
            candidates.append(self._last_app_poll + self.config.max_poll_interval_ms)
        return max(now, min(candidates)) if candidates else None

    # -- response handlers ----------------------------------------------------------------

    def on_find_coordinator_response(
        self, request: gt.FindCoordinatorRequest, now: int, *, error_code: int, node_id: int
    ) -> None:
        if error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED:
            self._fail(broker_error(error_code, "group authorization failed"))
            return
        ok = error_code == ErrorCode.NONE and node_id >= 0
        self._lookup.on_response(request, now, node_id if ok else None)

    def on_join_group_response(
        self,
        request: gt.JoinGroupRequest,
        now: int,
        *,
        error_code: int,
        generation_id: int = NO_GENERATION,
        protocol_name: str | None = None,
        leader: str = "",
        member_id: str = "",
        members: Sequence[gt.JoinedMember] = (),
    ) -> None:
        if request is not self._join_in_flight:
            return
        self._join_in_flight = None
        if error_code == ErrorCode.NONE:
            self._joined(
                request, now, generation_id, protocol_name or "", leader, member_id, members
            )
        elif error_code == ErrorCode.MEMBER_ID_REQUIRED:
            # KIP-394: the broker hands out our id; rejoin at once with it (one extra join).
            self.member_id = member_id
        elif error_code == ErrorCode.UNKNOWN_MEMBER_ID:
            self._reset_generation(reset_member_id=True)
        elif error_code == ErrorCode.ILLEGAL_GENERATION:
            self._reset_generation(reset_member_id=False)
        elif error_code == ErrorCode.FENCED_INSTANCE_ID:
            self._fail(
                broker_error(
                    ErrorCode.FENCED_INSTANCE_ID,
                    f"group_instance_id {request.group_instance_id!r} fenced",
                )
            )
        elif error_code in FATAL_JOIN_ERRORS:
            self._fail(broker_error(error_code, "JoinGroup failed"))
        elif error_code in COORDINATOR_MOVED:
            self._mark_coordinator_unknown(now)
        else:  # LOAD_IN_PROGRESS, REBALANCE_IN_PROGRESS, unknown retriable: back off
            self._join_failures += 1
            self._join_not_before = now + self._backoff.delay(self._join_failures)

    def _joined(
        self,
        request: gt.JoinGroupRequest,
        now: int,
        generation_id: int,
        protocol_name: str,
        leader: str,
        member_id: str,
        members: Sequence[gt.JoinedMember],
    ) -> None:
        self._join_failures = 0
        self._lookup.succeeded()
        self.generation_id, self.member_id = generation_id, member_id
        self.protocol_name, self.leader_id = protocol_name, leader
        self._round_trip_answered(now)
        self._transition_to(MemberState.COMPLETING_REBALANCE)
        assignments: dict[str, bytes] = {}
        if member_id == leader:
            assignments = self._protocol.assign(protocol_name, members)
        self._pending_sync = gt.SyncGroupRequest(
            request.node_id,
            self.config.group_id,
            generation_id,
            member_id,
            self.config.group_instance_id,
            self.config.protocol_type,
            protocol_name,
            tuple(sorted(assignments.items())),
        )

    def _round_trip_answered(self, now: int) -> None:
        """A JoinGroup/SyncGroup answered as to a member restarts the session timer now, as
        in Java: timed from the send, a request held past the session timeout (Tansu) made
        us rejoin under a new id, leaving a ghost member (docs: tansu-quirks.md)."""
        self._alive_at = max(self._alive_at, now)

    def on_sync_group_response(
        self, request: gt.SyncGroupRequest, now: int, *, error_code: int, assignment: bytes = b""
    ) -> None:
        if request is not self._sync_in_flight:
            return
        self._sync_in_flight = None
        if request.generation_id != self.generation_id:
            return
        if error_code == ErrorCode.NONE:
            self._synced(request, now, assignment)
        elif error_code == ErrorCode.REBALANCE_IN_PROGRESS:
            self._round_trip_answered(now)
            self._transition_to(MemberState.PREPARING_REBALANCE)
            self._join_prepared = False
            self.request_rejoin("group rebalanced during SyncGroup")
        else:
            self._handle_common_error(error_code, now, request.group_instance_id)

    def _synced(self, request: gt.SyncGroupRequest, now: int, assignment: bytes) -> None:
        assigned = self._protocol.on_assignment(
            request.protocol_name, assignment, self.generation_id
        )
        self._transition_to(MemberState.STABLE)
        self._rejoin_reason = None
        self._join_prepared = False
        self._round_trip_answered(now)
        self._next_heartbeat = now + self.config.heartbeat_interval_ms
        revoked = self.owned - assigned
        added = assigned - self.owned
        # Cooperative: only what moves is revoked; it must be given up before the group
        # can hand it on, which takes a second rebalance (KIP-429).
        self._emit(gt.RebalanceEventKind.REVOKED, revoked)
        self.owned = assigned
        self.owned_generation = self.generation_id
        self._emit(gt.RebalanceEventKind.ASSIGNED, added)
        if revoked:
            self._join_prepared = True  # nothing left to revoke before this join
            self.request_rejoin("partitions revoked by cooperative rebalance")

    def on_heartbeat_response(
        self, request: gt.HeartbeatRequest, now: int, *, error_code: int
    ) -> None:
        if request is not self._hb_in_flight:
            return
        self._hb_in_flight = None
        if request.generation_id != self.generation_id or request.member_id != self.member_id:
            return  # late answer for an earlier generation
        if error_code in (ErrorCode.NONE, ErrorCode.REBALANCE_IN_PROGRESS):
            self._alive_at = max(self._alive_at, self._hb_sent_at)
            self._lookup.succeeded()
            if error_code == ErrorCode.REBALANCE_IN_PROGRESS and self.state is MemberState.STABLE:
                self.request_rejoin("group is rebalancing")
        else:
            self._handle_common_error(error_code, now, request.group_instance_id)
            if self.state is MemberState.STABLE and self.coordinator is not None:
                self._next_heartbeat = now + self._backoff.delay(1)

    def on_commit_error(self, error_code: int, generation_id: int, now: int) -> None:
        """An OffsetCommit sent under ``generation_id`` failed with a group-level error."""
        if error_code in COORDINATOR_MOVED:
            if self.coordinator is not None:
                self._mark_coordinator_unknown(now)
            return
        if generation_id != self.generation_id:
            return
        if error_code == ErrorCode.REBALANCE_IN_PROGRESS:
            if self.state is MemberState.STABLE:
                self.request_rejoin("commit found the group rebalancing")
        else:
            self._handle_common_error(error_code, now, self.config.group_instance_id)

    def on_request_failed(self, request: object, now: int) -> None:
        """Transport failure or timeout for ``request``: treat the coordinator as gone."""
        if self._lookup.on_failed(request, now):
            return
        tracked = (self._join_in_flight, self._sync_in_flight, self._hb_in_flight)
        if any(request is r for r in tracked) and self.coordinator is not None:
            self._mark_coordinator_unknown(now)

    def _handle_common_error(self, error_code: int, now: int, instance_id: str | None) -> None:
        if error_code == ErrorCode.UNKNOWN_MEMBER_ID:
            self._reset_generation(reset_member_id=True)
        elif error_code == ErrorCode.ILLEGAL_GENERATION:
            self._reset_generation(reset_member_id=False)
        elif error_code == ErrorCode.FENCED_INSTANCE_ID:
            self._fail(
                broker_error(
                    ErrorCode.FENCED_INSTANCE_ID, f"group_instance_id {instance_id!r} fenced"
                )
            )
        elif error_code in COORDINATOR_MOVED:
            if self.coordinator is not None:
                self._mark_coordinator_unknown(now)
        elif error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED:
            self._fail(broker_error(error_code, "group authorization failed"))
        elif self.state is MemberState.COMPLETING_REBALANCE:
            # Retriable SyncGroup failure: the generation may be gone; start the join over.
            self._transition_to(MemberState.PREPARING_REBALANCE)
            self._join_failures += 1
            self._join_not_before = now + self._backoff.delay(self._join_failures)
            self.request_rejoin("SyncGroup failed")

    # -- shutdown ---------------------------------------------------------------------------

    def prepare_close(self) -> list[gt.RebalanceEvent]:
        """Callbacks to run before leaving: REVOKED while the generation is valid (the
        listener may still commit), LOST otherwise."""
        if self.generation_id != NO_GENERATION and self.state is MemberState.STABLE:
            self._emit(gt.RebalanceEventKind.REVOKED, self.owned)
        else:
            self._emit(gt.RebalanceEventKind.LOST, self.owned)
        self.owned = frozenset()
        self.owned_generation = NO_GENERATION
        events, self._events = self._events, []
        return events

    def close(self) -> gt.LeaveGroupRequest | None:
        """Stop for good. Dynamic members return a LeaveGroup so the group rebalances now
        instead of after the session timeout; static members do not leave (KIP-345)."""
        request = None
        dynamic = self.config.group_instance_id is None
        node = self.coordinator if self.coordinator is not None else self._lookup.last_known
        if node is not None and dynamic and self.member_id and self.state is not MemberState.CLOSED:
            request = gt.LeaveGroupRequest(
                node, self.config.group_id, self.member_id, None, "consumer closing"
            )
        if self.state is not MemberState.CLOSED:
            self._transition_to(MemberState.CLOSED)
        self.generation_id, self.owned = NO_GENERATION, frozenset()
        self.owned_generation = NO_GENERATION
        return request
