"""Classic consumer-group coordinator state machine (JoinGroup/SyncGroup era).

Theory of operation::

    EMPTY --join--> PREPARING_REBALANCE --all joined / rebalance timeout-->
        COMPLETING_REBALANCE --leader's SyncGroup--> STABLE
    any join or leave from COMPLETING/STABLE --> PREPARING_REBALANCE
    last member gone --> EMPTY;  DeleteGroups on EMPTY --> DEAD

JoinGroup and SyncGroup block on the broker until the rebalance reaches the
point that answers them. The state does not await: callers pass an opaque
``token`` with each join or sync, and every call (and ``tick(now)``) returns
the :class:`Reply` objects whose wait is over. The server parks each request
on an event keyed by its token and wakes it from those replies.

Rules kept from the real coordinator:

* A dynamic member's first JoinGroup (v4+) gets MEMBER_ID_REQUIRED with an id
  to use; the id is pending until it rejoins (it must do so within the
  session timeout).
* A rebalance completes when every known member has rejoined, or at the
  rebalance timeout, when members that did not rejoin are removed.
* Members that stop heartbeating for their session timeout are removed
  (members parked in a JoinGroup are exempt: they are waiting on us).
* A static member (group.instance.id) rejoining with a new member id replaces
  the old id, which is then fenced (FENCED_INSTANCE_ID); if the group is
  stable, this does not trigger a rebalance.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

from kclient.testing.mock.codes import Err

__all__ = ["Group", "GroupState", "JoinResult", "Member", "Reply", "SyncResult"]


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_S = GroupState
_TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE, _S.DEAD}),
    _S.PREPARING_REBALANCE: frozenset({_S.COMPLETING_REBALANCE, _S.EMPTY, _S.DEAD}),
    _S.COMPLETING_REBALANCE: frozenset({_S.PREPARING_REBALANCE, _S.STABLE, _S.EMPTY, _S.DEAD}),
    _S.STABLE: frozenset({_S.PREPARING_REBALANCE, _S.EMPTY, _S.DEAD}),
    _S.DEAD: frozenset(),
}

_member_counter = itertools.count(1)


@dataclass(slots=True)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    last_seen: int
    assignment: bytes = b""
    join_token: object | None = None
    sync_token: object | None = None


@dataclass(slots=True, frozen=True)
class JoinResult:
    error: Err
    member_id: str
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()  # only for the leader
    skip_assignment: bool = False


@dataclass(slots=True, frozen=True)
class SyncResult:
    error: Err
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(slots=True, frozen=True)
class Reply:
    token: object
    result: JoinResult | SyncResult


@dataclass(slots=True, frozen=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None


@dataclass
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending_ids: dict[str, int] = field(default_factory=dict)  # id -> deadline
    static_ids: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    rebalance_deadline: int = 0
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    txn_offsets: dict[int, dict[tuple[str, int], CommittedOffset]] = field(default_factory=dict)

    # -- state machine ---------------------------------------------------------

    def _transition_to(self, new: GroupState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"group {self.group_id}: illegal move {self.state} -> {new}")
        self.state = new

    # -- JoinGroup -------------------------------------------------------------

    def join(
        self,
        token: object,
        *,
        member_id: str,
        instance_id: str | None,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        client_id: str,
        client_host: str,
        require_known_member: bool,
        now: int,
    ) -> list[Reply]:
        def fail(error: Err, mid: str = member_id) -> list[Reply]:
            return [Reply(token, JoinResult(error, mid))]

        if self.state is GroupState.DEAD:
            return fail(Err.COORDINATOR_NOT_AVAILABLE)
        if not self._protocols_compatible(protocol_type, protocols):
            return fail(Err.INCONSISTENT_GROUP_PROTOCOL)
        if instance_id is not None:
            member_id = self._static_member_id(instance_id, member_id)
            if member_id == "":
                return fail(Err.FENCED_INSTANCE_ID)
        elif member_id == "":
            member_id = f"{client_id}-{next(_member_counter)}"
            if require_known_member:
                self.pending_ids[member_id] = now + session_timeout_ms
                return fail(Err.MEMBER_ID_REQUIRED, member_id)
        elif member_id not in self.members and member_id not in self.pending_ids:
            return fail(Err.UNKNOWN_MEMBER_ID)
        self.pending_ids.pop(member_id, None)
        member = self.members.get(member_id)
        unchanged = member is not None and member.protocols == protocols
        if member is None:
            member = Member(
                member_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
                now,
            )
            self.members[member_id] = member
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.last_seen = now
        self.protocol_type = protocol_type
        if self.state is GroupState.STABLE and unchanged and member_id != self.leader:
            # A follower rejoining with nothing new (e.g. a static restart) gets the
            # current generation back without disturbing the others.
            return [Reply(token, self._join_result(member))]
        member.join_token = token
        if self.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(now)
        return self._maybe_complete_join(now)

    def _static_member_id(self, instance_id: str, member_id: str) -> str:
        """Resolve a static member's id; returns "" when the request is fenced."""
        known = self.static_ids.get(instance_id)
        if member_id and known is not None and member_id != known:
            return ""
        if member_id and known == member_id:
            return member_id
        new_id = f"{instance_id}-{next(_member_counter)}"
        if known is not None and known in self.members:
            old = self.members.pop(known)
            old.member_id = new_id
            self.members[new_id] = old
            if self.leader == known:
                self.leader = new_id
        self.static_ids[instance_id] = new_id
        return new_id

    def _protocols_compatible(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if not protocols:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        names = {name for name, _ in protocols}
        return all(names & {n for n, _ in m.protocols} for m in self.members.values())

    def _prepare_rebalance(self, now: int) -> None:
        self._transition_to(GroupState.PREPARING_REBALANCE)
        timeout = max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
        self.rebalance_deadline = now + timeout
        # Members waiting in SyncGroup learn that the generation they synced for is over.

    def _maybe_complete_join(self, now: int) -> list[Reply]:
        replies = self._fail_syncs(Err.REBALANCE_IN_PROGRESS)
        waiting = [m for m in self.members.values() if m.join_token is None]
        if waiting and now < self.rebalance_deadline:
            return replies
        for member in waiting:  # rebalance timeout: drop those who did not rejoin
            self._remove(member.member_id)
        if not self.members:
            self.generation += 1
            self.leader = None
            self._transition_to(GroupState.EMPTY)
            return replies
        self.generation += 1
        self.protocol_name = self._choose_protocol()
        if self.leader not in self.members:
            self.leader = next(iter(self.members))
        self._transition_to(GroupState.COMPLETING_REBALANCE)
        for member in self.members.values():
            member.assignment = b""
            member.last_seen = now
            token, member.join_token = member.join_token, None
            replies.append(Reply(token, self._join_result(member)))
        return replies

    def _choose_protocol(self) -> str:
        """The leader's most preferred protocol that every member supports."""
        leader = self.members.get(self.leader or "") or next(iter(self.members.values()))
        for name, _ in leader.protocols:
            if all(any(n == name for n, _ in m.protocols) for m in self.members.values()):
                return name
        return leader.protocols[0][0]

    def _join_result(self, member: Member) -> JoinResult:
        members: tuple[tuple[str, str | None, bytes], ...] = ()
        if member.member_id == self.leader:
            members = tuple(
                (m.member_id, m.instance_id, dict(m.protocols).get(self.protocol_name or "", b""))
                for m in self.members.values()
            )
        return JoinResult(
            Err.NONE,
            member.member_id,
            self.generation,
            self.protocol_type,
            self.protocol_name,
            self.leader or "",
            members,
        )

    # -- SyncGroup -------------------------------------------------------------

    def sync(
        self,
        token: object,
        *,
        member_id: str,
        instance_id: str | None,
        generation: int,
        assignments: dict[str, bytes],
        now: int,
    ) -> list[Reply]:
        error = self.check_member(member_id, instance_id, generation)
        if error is Err.NONE and self.state is GroupState.PREPARING_REBALANCE:
            error = Err.REBALANCE_IN_PROGRESS
        if error is not Err.NONE:
            return [Reply(token, SyncResult(error))]
        member = self.members[member_id]
        member.last_seen = now
        if self.state is GroupState.STABLE:
            return [Reply(token, self._sync_result(member))]
        member.sync_token = token
        if member_id != self.leader:
            return []
        for mid, data in assignments.items():
            if mid in self.members:
                self.members[mid].assignment = data
        self._transition_to(GroupState.STABLE)
        replies: list[Reply] = []
        for m in self.members.values():
            if m.sync_token is not None:
                replies.append(Reply(m.sync_token, self._sync_result(m)))
                m.sync_token = None
        return replies

    def _sync_result(self, member: Member) -> SyncResult:
        return SyncResult(Err.NONE, self.protocol_type, self.protocol_name, member.assignment)

    def _fail_syncs(self, error: Err) -> list[Reply]:
        replies = []
        for m in self.members.values():
            if m.sync_token is not None:
                replies.append(Reply(m.sync_token, SyncResult(error)))
                m.sync_token = None
        return replies

    # -- Heartbeat, LeaveGroup, commits ----------------------------------------

    def check_member(self, member_id: str, instance_id: str | None, generation: int) -> Err:
        if instance_id is not None and self.static_ids.get(instance_id, member_id) != member_id:
            return Err.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return Err.UNKNOWN_MEMBER_ID
        if generation != self.generation:
            return Err.ILLEGAL_GENERATION
        return Err.NONE

    def heartbeat(self, member_id: str, instance_id: str | None, generation: int, now: int) -> Err:
        error = self.check_member(member_id, instance_id, generation)
        if error is not Err.NONE:
            return error
        self.members[member_id].last_seen = now
        if self.state is GroupState.PREPARING_REBALANCE:
            return Err.REBALANCE_IN_PROGRESS
        return Err.NONE

    def leave(self, member_id: str, instance_id: str | None, now: int) -> tuple[Err, list[Reply]]:
        if instance_id is not None:
            known = self.static_ids.get(instance_id)
            if known is None:
                return Err.UNKNOWN_MEMBER_ID, []
            if member_id and member_id != known:
                return Err.FENCED_INSTANCE_ID, []
            member_id = known
        if member_id not in self.members:
            return Err.UNKNOWN_MEMBER_ID, []
        self._remove(member_id)
        return Err.NONE, self._after_departure(now)

    def check_commit(self, member_id: str, instance_id: str | None, generation: int) -> Err:
        if generation < 0 and not member_id:
            # A commit from outside the group (assign() users, admin tools) is only
            # allowed while nobody owns the partitions.
            return Err.NONE if not self.members else Err.ILLEGAL_GENERATION
        error = self.check_member(member_id, instance_id, generation)
        if error is Err.NONE and self.state is GroupState.COMPLETING_REBALANCE:
            return Err.REBALANCE_IN_PROGRESS
        return error

    # -- time ------------------------------------------------------------------

    def tick(self, now: int) -> list[Reply]:
        for mid in [m for m, deadline in self.pending_ids.items() if deadline <= now]:
            del self.pending_ids[mid]
        expired = [
            m.member_id
            for m in self.members.values()
            if m.join_token is None and now - m.last_seen >= m.session_timeout_ms
        ]
        replies: list[Reply] = []
        for mid in expired:
            replies += self._fail_member_waits(self.members[mid])
            self._remove(mid)
        if expired:
            replies += self._after_departure(now)
        elif self.state is GroupState.PREPARING_REBALANCE and now >= self.rebalance_deadline:
            replies += self._maybe_complete_join(now)
        return replies

    def next_deadline(self) -> int | None:
        times = [m.last_seen + m.session_timeout_ms for m in self.members.values()]
        times += list(self.pending_ids.values())
        if self.state is GroupState.PREPARING_REBALANCE:
            times.append(self.rebalance_deadline)
        return min(times, default=None)

    def _fail_member_waits(self, member: Member) -> list[Reply]:
        if member.sync_token is not None:
            return [Reply(member.sync_token, SyncResult(Err.UNKNOWN_MEMBER_ID))]
        return []

    def _remove(self, member_id: str) -> None:
        member = self.members.pop(member_id)
        if member.instance_id is not None and self.static_ids.get(member.instance_id) == member_id:
            del self.static_ids[member.instance_id]

    def _after_departure(self, now: int) -> list[Reply]:
        if self.state is GroupState.PREPARING_REBALANCE:
            return self._maybe_complete_join(now)
        if self.state is GroupState.EMPTY:
            return []
        if not self.members:
            replies = self._fail_syncs(Err.REBALANCE_IN_PROGRESS)
            self.generation += 1
            self.leader = None
            self._transition_to(GroupState.EMPTY)
            return replies
        self._prepare_rebalance(now)
        return self._maybe_complete_join(now)

    def mark_dead(self) -> None:
        self._transition_to(GroupState.DEAD)
