"""The state half of :class:`~kclient.consumer.membership.GroupMember`.

:class:`MemberCore` holds the member's fields and the only code that moves it between
states (``_transition_to``, guarded by ``_TRANSITIONS``) or gives up membership
(fatal failure, lost partitions, generation reset, coordinator loss). The planner and
the response handlers in ``membership.py`` build on these moves, so every path that
loses partitions or resets the generation goes through the same few lines here.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Collection

from kclient.consumer import group_types as gt
from kclient.consumer._coordinator_lookup import CoordinatorLookup
from kclient.consumer._errors import IllegalStateError
from kclient.structs import TopicPartition
from protocol._errors_base import KafkaError

__all__ = ["NO_GENERATION", "NO_MEMBER_ID", "MemberCore", "MemberState"]

NO_GENERATION = -1
NO_MEMBER_ID = ""


class MemberState(enum.Enum):
    UNJOINED = "unjoined"
    PREPARING_REBALANCE = "preparing_rebalance"
    COMPLETING_REBALANCE = "completing_rebalance"
    STABLE = "stable"
    FATAL = "fatal"
    CLOSED = "closed"


_S = MemberState
_P, _C = _S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE
_TRANSITIONS: dict[MemberState, frozenset[MemberState]] = {
    _S.UNJOINED: frozenset({_S.PREPARING_REBALANCE, _S.FATAL, _S.CLOSED}),
    _P: frozenset({_P, _C, _S.UNJOINED, _S.FATAL, _S.CLOSED}),
    _C: frozenset({_S.STABLE, _P, _S.UNJOINED, _S.FATAL, _S.CLOSED}),
    _S.STABLE: frozenset({_S.PREPARING_REBALANCE, _S.UNJOINED, _S.FATAL, _S.CLOSED}),
    _S.FATAL: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}


class MemberCore:
    """Fields and state moves of a group member; see ``membership.py``."""

    def __init__(
        self,
        config: gt.MemberConfig,
        protocol: gt.GroupProtocol,
        *,
        now: int,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._protocol = protocol
        self._backoff = gt.ExponentialBackoff(
            config.retry_backoff_ms, config.retry_backoff_max_ms, rng or random.Random()
        )
        self.state = MemberState.UNJOINED
        self._lookup = CoordinatorLookup(config.group_id, self._backoff)
        self.generation_id = NO_GENERATION
        self.member_id = NO_MEMBER_ID
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.owned: frozenset[TopicPartition] = frozenset()
        #: Generation whose SyncGroup handed us ``owned`` (sent with them in JoinGroup,
        #: KIP-792). Not ``generation_id``: a JoinGroup answer whose SyncGroup then fails
        #: confirmed nothing, and claiming the owned partitions under it would both
        #: overstate the claim (the sticky assignors rank claims by generation) and make
        #: the rejoin's metadata differ from what the coordinator holds, which on Tansu
        #: starts yet another rebalance (docs/design-notes/tansu-quirks.md).
        self.owned_generation = NO_GENERATION
        self.topics: frozenset[str] = frozenset()
        self.join_count = 0  # JoinGroup requests built; tests assert on it
        self._fatal: KafkaError | None = None
        self._events: list[gt.RebalanceEvent] = []
        self._rejoin_reason: str | None = "initial join"
        self._join_prepared = False
        self._join_in_flight: gt.JoinGroupRequest | None = None
        self._sync_in_flight: gt.SyncGroupRequest | None = None
        self._hb_in_flight: gt.HeartbeatRequest | None = None
        self._hb_sent_at = 0
        self._join_not_before = 0
        self._join_failures = 0
        self._next_heartbeat = 0
        self._alive_at = now  # send time of the latest request that proved membership
        self._last_app_poll = now
        self._poll_expired = False
        self._pending_sync: gt.SyncGroupRequest | None = None
        self._pending_leave: gt.LeaveGroupRequest | None = None
        #: Set by the driver while a REVOKED event waits for the application's next poll
        #: (revocation runs between batches, as Java's poll does): no JoinGroup goes out
        #: (the group would hand the partitions on before they were given up), heartbeats
        #: continue, and the max.poll.interval timer runs (the wait is bounded by it).
        self.hold_join = False

    # -- state machine plumbing ---------------------------------------------------------

    def _transition_to(self, new: MemberState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalStateError(f"illegal member transition {self.state.name} -> {new.name}")
        self.state = new

    def _fail(self, error: KafkaError) -> None:
        if self.state is MemberState.CLOSED:
            return
        self._fatal = error
        self._lose_partitions()
        if self.state is not MemberState.FATAL:
            self._transition_to(MemberState.FATAL)

    def _emit(self, kind: gt.RebalanceEventKind, partitions: Collection[TopicPartition]) -> None:
        if partitions:
            self._events.append(gt.RebalanceEvent(kind, frozenset(partitions), self.generation_id))

    def _lose_partitions(self) -> None:
        self._emit(gt.RebalanceEventKind.LOST, self.owned)
        self.owned = frozenset()
        self.owned_generation = NO_GENERATION

    def _reset_generation(self, *, reset_member_id: bool) -> None:
        """Membership is gone: partitions are lost, join again from scratch."""
        self._lose_partitions()
        self.generation_id = NO_GENERATION
        if reset_member_id:
            self.member_id = NO_MEMBER_ID
        self._join_in_flight = self._sync_in_flight = self._hb_in_flight = None
        self._pending_sync = None
        self._join_prepared = False
        if self.state in (
            MemberState.PREPARING_REBALANCE,
            MemberState.COMPLETING_REBALANCE,
            MemberState.STABLE,
        ):
            self._transition_to(MemberState.UNJOINED)
        self.request_rejoin("membership lost")

    def _mark_coordinator_unknown(self, now: int) -> None:
        self._lookup.mark_unknown(now)
        # Whatever was in flight went to the old coordinator; its answer is meaningless.
        if self._join_in_flight is not None or self._sync_in_flight is not None:
            self._join_in_flight = self._sync_in_flight = None
            self._pending_sync = None
            if self.state is MemberState.COMPLETING_REBALANCE:
                self._transition_to(MemberState.PREPARING_REBALANCE)
            self._join_prepared = True
            self.request_rejoin("coordinator moved during rebalance")
        self._hb_in_flight = None

    @property
    def coordinator(self) -> int | None:
        """Node id of the group coordinator, None while unknown."""
        return self._lookup.node_id

    def request_rejoin(self, reason: str) -> None:
        if self._rejoin_reason is None:
            self._rejoin_reason = reason
