"""A tiny classic-group coordinator and a fault-injecting driver for GroupMember.

The model follows the broker's classic protocol closely enough for the safety check:
JoinGroup is held until every known member has rejoined; the leader's SyncGroup
completes the generation; members are expired ``session_timeout`` after the coordinator
last heard from them unless a JoinGroup/SyncGroup of theirs is pending. Faults: lost
requests, lost responses (the coordinator acted, the member sees a failure),
NOT_COORDINATOR replies, and application stalls beyond ``max_poll_interval``.

Invariant checked after every member step: no partition is owned by two members.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from kclient.consumer._errors import ErrorCode, MaxPollIntervalExceededError
from kclient.consumer.assignors.base import PartitionAssignor
from kclient.consumer.group_protocol import ConsumerGroupProtocol
from kclient.consumer.group_types import (
    FindCoordinatorRequest,
    GroupRequest,
    HeartbeatRequest,
    JoinedMember,
    JoinGroupRequest,
    LeaveGroupRequest,
    MemberConfig,
    SyncGroupRequest,
)
from kclient.consumer.membership import GroupMember
from kclient.structs import TopicPartition

COUNTS = {"t": 6, "u": 3}
CONFIG = MemberConfig(
    group_id="g", session_timeout_ms=3_000, heartbeat_interval_ms=500, max_poll_interval_ms=5_000
)


@dataclass
class Info:
    last_seen: int
    protocols: dict[str, bytes] = field(default_factory=dict)


class ModelCoordinator:
    def __init__(self) -> None:
        self.generation = 0
        self.phase = "Empty"
        self.members: dict[str, Info] = {}
        self.pending_ids: set[str] = set()
        self.joins: dict[str, tuple[GroupMember, JoinGroupRequest]] = {}
        self.syncs: dict[str, tuple[GroupMember, SyncGroupRequest]] = {}
        self.assignments: dict[str, bytes] = {}
        self.leader = ""
        self.protocol = ""
        self._ids = 0

    # Each handler returns a callable that delivers the response (so the driver can
    # drop it), or None when the response is held.
    def join(self, m: GroupMember, req: JoinGroupRequest, now: int) -> Callable[[], None] | None:
        mid = req.member_id
        if mid == "":
            self._ids += 1
            new = f"m{self._ids:03d}"
            self.pending_ids.add(new)
            return lambda: m.on_join_group_response(
                req, now, error_code=ErrorCode.MEMBER_ID_REQUIRED, member_id=new
            )
        if mid not in self.members and mid not in self.pending_ids:
            return lambda: m.on_join_group_response(
                req, now, error_code=ErrorCode.UNKNOWN_MEMBER_ID
            )
        self.pending_ids.discard(mid)
        self.members[mid] = Info(now, dict(req.protocols))
        self.joins[mid] = (m, req)
        self._rebalance()
        return None

    def _rebalance(self) -> None:
        if self.phase == "Completing":
            for m, req in list(self.syncs.values()):
                m.on_sync_group_response(req, 0, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
            self.syncs.clear()
        self.phase = "Preparing" if self.members else "Empty"
        self._maybe_complete_join()

    def _maybe_complete_join(self) -> None:
        if self.phase != "Preparing" or not all(mid in self.joins for mid in self.members):
            return
        self.generation += 1
        self.phase = "Completing"
        self.assignments = {}
        self.leader = min(self.joins)
        names = [set(info.protocols) for info in self.members.values()]
        first = self.joins[self.leader][1].protocols[0][0]
        self.protocol = (
            first if all(first in n for n in names) else sorted(set.intersection(*names))[0]
        )
        joined = [
            JoinedMember(mid, None, self.members[mid].protocols[self.protocol])
            for mid in sorted(self.members)
        ]
        joins, self.joins = self.joins, {}
        for mid, (m, req) in joins.items():
            m.on_join_group_response(
                req,
                0,
                error_code=0,
                generation_id=self.generation,
                protocol_name=self.protocol,
                leader=self.leader,
                member_id=mid,
                members=joined if mid == self.leader else (),
            )

    def sync(self, m: GroupMember, req: SyncGroupRequest, now: int) -> Callable[[], None] | None:
        code = self._check(req.member_id, req.generation_id, now)
        if code is None and self.phase == "Preparing":
            code = ErrorCode.REBALANCE_IN_PROGRESS
        if code is not None:
            err = code
            return lambda: m.on_sync_group_response(req, now, error_code=err)
        if self.phase == "Stable":
            data = self.assignments.get(req.member_id, b"")
            return lambda: m.on_sync_group_response(req, now, error_code=0, assignment=data)
        self.syncs[req.member_id] = (m, req)
        if req.member_id == self.leader:
            self.assignments = dict(req.assignments)
            self.phase = "Stable"
            syncs, self.syncs = self.syncs, {}
            for mid, (mm, rr) in syncs.items():
                mm.on_sync_group_response(
                    rr, now, error_code=0, assignment=self.assignments.get(mid, b"")
                )
        return None

    def heartbeat(self, m: GroupMember, req: HeartbeatRequest, now: int) -> Callable[[], None]:
        code = self._check(req.member_id, req.generation_id, now)
        if code is None:
            code = ErrorCode.REBALANCE_IN_PROGRESS if self.phase == "Preparing" else 0
        err = code
        return lambda: m.on_heartbeat_response(req, now, error_code=err)

    def leave(self, req: LeaveGroupRequest) -> None:
        if self.members.pop(req.member_id, None) is not None:
            self.joins.pop(req.member_id, None)
            self._rebalance()

    def _check(self, mid: str, generation: int, now: int) -> int | None:
        if mid not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self.members[mid].last_seen = now
        if generation != self.generation:
            return ErrorCode.ILLEGAL_GENERATION
        return None

    def expire(self, now: int, session_ms: int) -> None:
        expired = [
            mid
            for mid, info in self.members.items()
            if mid not in self.joins
            and mid not in self.syncs
            and now >= info.last_seen + session_ms
        ]
        for mid in expired:
            del self.members[mid]
        if expired:
            self._rebalance()


class Sim:
    def __init__(self, seed: int, assignor_factory: Callable[[], PartitionAssignor]) -> None:
        self.rng = random.Random(seed)
        self.coordinator = ModelCoordinator()
        self.members = [
            GroupMember(
                CONFIG,
                ConsumerGroupProtocol([assignor_factory()], lambda: COUNTS),
                now=0,
                rng=random.Random(seed * 10 + i),
            )
            for i in range(3)
        ]
        for m in self.members:
            m.set_subscription({"t", "u"})
        self.stalled_until = [0] * len(self.members)
        self.fault_rate = 0.15

    def step(self, now: int) -> None:
        for i, m in enumerate(self.members):
            if now >= self.stalled_until[i]:
                try:
                    m.on_app_poll(now)
                except MaxPollIntervalExceededError:
                    pass
            elif self.fault_rate and self.rng.random() < 0.002:
                pass
            result = m.poll(now)
            for request in result.requests:
                self.deliver(m, request, now)
            check_single_owner(self.members)
        self.coordinator.expire(now, CONFIG.session_timeout_ms)
        check_single_owner(self.members)
        if self.fault_rate and self.rng.random() < 0.003:
            who = self.rng.randrange(len(self.members))
            self.stalled_until[who] = now + self.rng.choice([1_000, 7_000])

    def deliver(self, m: GroupMember, request: GroupRequest, now: int) -> None:
        roll = self.rng.random() if self.fault_rate else 1.0
        if isinstance(request, FindCoordinatorRequest):
            if roll < self.fault_rate:
                m.on_request_failed(request, now)
            else:
                m.on_find_coordinator_response(request, now, error_code=0, node_id=0)
            return
        if isinstance(request, LeaveGroupRequest):
            if roll >= self.fault_rate:
                self.coordinator.leave(request)
            return
        if roll < self.fault_rate / 3:
            m.on_request_failed(request, now)  # lost on the way in
            return
        if roll < 2 * self.fault_rate / 3:
            reply = _not_coordinator(m, request, now)
            reply()
            return
        respond = self._process(m, request, now)
        if roll < self.fault_rate and isinstance(request, HeartbeatRequest):
            m.on_request_failed(request, now)  # processed, but the answer was lost
        elif respond is not None:
            respond()

    def _process(
        self, m: GroupMember, request: GroupRequest, now: int
    ) -> Callable[[], None] | None:
        c = self.coordinator
        if isinstance(request, JoinGroupRequest):
            return c.join(m, request, now)
        if isinstance(request, SyncGroupRequest):
            return c.sync(m, request, now)
        assert isinstance(request, HeartbeatRequest)
        return c.heartbeat(m, request, now)


def _not_coordinator(m: GroupMember, request: GroupRequest, now: int) -> Callable[[], None]:
    code = ErrorCode.NOT_COORDINATOR
    if isinstance(request, JoinGroupRequest):
        return lambda: m.on_join_group_response(request, now, error_code=code)
    if isinstance(request, SyncGroupRequest):
        return lambda: m.on_sync_group_response(request, now, error_code=code)
    assert isinstance(request, HeartbeatRequest)
    return lambda: m.on_heartbeat_response(request, now, error_code=code)


def check_single_owner(members: list[GroupMember]) -> None:
    seen: dict[TopicPartition, int] = {}
    for i, m in enumerate(members):
        for tp in m.owned:
            assert tp not in seen, f"{tp} owned by members {seen[tp]} and {i}"
            seen[tp] = i


def run_simulation(seed: int, assignor_factory: Callable[[], PartitionAssignor]) -> None:
    sim = Sim(seed, assignor_factory)
    now = 0
    for now in range(0, 60_000, 50):
        sim.step(now)
    # Liveness: with faults off, the group settles and every partition has one owner.
    sim.fault_rate = 0.0
    sim.stalled_until = [0] * len(sim.members)
    for later in range(now, now + 40_000, 50):
        sim.step(later)
    owned = sorted(tp for m in sim.members for tp in m.owned)
    assert owned == sorted(TopicPartition(t, p) for t, n in COUNTS.items() for p in range(n))
