"""SubscriptionState: what the consumer reads and where it stands in each partition.

Theory of operation
-------------------
One object, owned by the consumer and mutated only from the event loop (never across
an ``await`` in the middle of an update), holds:

* the subscription *type* -- NONE, AUTO_TOPICS, AUTO_PATTERN or USER_ASSIGNED. Mixing
  ``subscribe`` and ``assign`` raises :class:`IllegalStateError` (Java rule); going back
  to NONE needs ``unsubscribe``.
* the assignment: a dict ``TopicPartition -> PartitionState``. Removing a partition
  drops its state, so everything keyed on it (positions, pause, reset) goes with it.
* per partition, three positions:

  - ``fetch_offset`` -- next offset to *request* from the broker. The fetcher prefetches,
    so this runs ahead.
  - ``position`` -- next offset to *hand to the application* (what ``position()``
    returns and what ``commit()`` commits: everything below it was delivered).
  - ``consumed`` -- ``position`` as it was when the application last called poll again.
    Calling poll again is the only signal that the previous batch was processed, so
    auto-commit commits ``consumed``, never ``position`` (reliability C1, auto-commit
    variant: a background commit must not cover records the handler is still on).

* ``epoch`` -- a per-partition counter bumped by every seek, reset and (re)assignment.
  The fetcher tags requests and buffered batches with the epoch it saw; data whose tag
  no longer matches is stale (the user sought away, or the partition was revoked and
  re-assigned) and is dropped. This is what makes a stale OFFSET_OUT_OF_RANGE harmless
  (C8) and keeps revoked data from being returned (C7).

Nothing here does I/O or reads a clock; times are passed in as ``now`` (ms).

One exception to "only from the event loop": the sync facade's ``for record in consumer``
moves ``position`` on the application's thread (``handout.py``). ``lock`` makes that and
``seek`` exclusive, so a record is never counted against a position a seek replaced.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from kclient.consumer._errors import IllegalStateError
from kclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "OffsetResetStrategy",
    "PartitionState",
    "SubscriptionState",
    "SubscriptionType",
]


class SubscriptionType(enum.Enum):
    NONE = "none"
    AUTO_TOPICS = "topics"
    AUTO_PATTERN = "pattern"
    USER_ASSIGNED = "assigned"


class OffsetResetStrategy(enum.Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    NONE = "none"  # no automatic reset: the fetcher raises OffsetOutOfRange / NoOffset


@dataclass(slots=True)
class PartitionState:
    """Everything the consumer knows about one assigned partition."""

    position: int | None = None
    position_epoch: int = -1
    fetch_offset: int | None = None
    fetch_epoch: int = -1
    consumed: int | None = None
    consumed_epoch: int = -1
    paused: bool = False
    reset_strategy: OffsetResetStrategy | None = None
    reset_not_before: int = 0
    pending_revocation: bool = False
    preferred_read_replica: int | None = None
    replica_expires_at: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    epoch: int = 0
    # Leader-epoch validation (validation.py): the highest leader epoch metadata showed,
    # the one the position was last checked under, and "truncated below the position
    # with no reset policy" (not fetched until the application seeks).
    leader_epoch: int = -1
    validated_epoch: int = -1
    truncated: bool = False

    @property
    def awaiting_reset(self) -> bool:
        return self.reset_strategy is not None

    @property
    def awaiting_validation(self) -> bool:
        """Read under an older leader epoch than the current one and not checked yet (or
        found truncated): not fetchable until validation.py settles it."""
        if self.truncated:
            return True
        return (
            self.position is not None
            and 0 <= self.position_epoch < self.leader_epoch
            and self.validated_epoch < self.leader_epoch
        )

    @property
    def has_position(self) -> bool:
        return self.position is not None and self.reset_strategy is None


class SubscriptionState:
    """See the module docstring."""

    def __init__(self, default_reset: OffsetResetStrategy = OffsetResetStrategy.LATEST) -> None:
        self.default_reset = default_reset
        self.type = SubscriptionType.NONE
        self._topics: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._group_topics: frozenset[str] = frozenset()
        self._assignment: dict[TopicPartition, PartitionState] = {}
        # Bumped on every assignment change so the fetcher can cheaply notice one.
        self.assignment_version = 0
        self._next_epoch = 1
        # Held by seek() and by Handout (records handed out on another thread): see the
        # module docstring. Reentrant: validation reads a position and seeks to it under it.
        self.lock = threading.RLock()

    # -- subscription ---------------------------------------------------------------

    def _set_type(self, kind: SubscriptionType) -> None:
        if self.type not in (SubscriptionType.NONE, kind):
            raise IllegalStateError(
                "subscribe(topics), subscribe(pattern) and assign() are mutually exclusive"
            )
        self.type = kind

    def subscribe(self, topics: Iterable[str]) -> bool:
        """Subscribe to a topic list; returns True when the topic set changed."""
        wanted = frozenset(topics)
        if any(not t for t in wanted):
            raise ValueError("topic names must be non-empty")
        self._set_type(SubscriptionType.AUTO_TOPICS)
        changed = wanted != self._topics
        self._topics = wanted
        return changed

    def subscribe_pattern(self, pattern: str | re.Pattern[str]) -> None:
        self._set_type(SubscriptionType.AUTO_PATTERN)
        self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._topics = frozenset()

    def update_matched_topics(
        self, cluster_topics: Iterable[str], internal: Collection[str] = ()
    ) -> bool:
        """Pattern subscriptions: re-match against the topics in fresh metadata.

        Internal topics (``__consumer_offsets``...) never match (Java's default
        ``exclude.internal.topics``). Returns True when the matched set changed, which
        means the member must rejoin.
        """
        if self.type is not SubscriptionType.AUTO_PATTERN or self._pattern is None:
            return False
        match = self._pattern.fullmatch
        matched = frozenset(t for t in cluster_topics if t not in internal and match(t))
        changed = matched != self._topics
        self._topics = matched
        return changed

    def unsubscribe(self) -> None:
        self.type = SubscriptionType.NONE
        self._topics = frozenset()
        self._pattern = None
        self._group_topics = frozenset()
        self._set_assignment(())

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    def subscription(self) -> frozenset[str]:
        """The topics this member subscribes to (for a pattern: the current matches)."""
        return self._topics

    def set_group_topics(self, topics: Iterable[str]) -> None:
        """Leader only: every topic any member subscribes to, so metadata covers them."""
        self._group_topics = frozenset(topics)

    def metadata_topics(self) -> frozenset[str]:
        """Topics whose metadata the consumer needs."""
        if self.type is SubscriptionType.USER_ASSIGNED:
            return frozenset(tp.topic for tp in self._assignment)
        return self._topics | self._group_topics

    # -- assignment -----------------------------------------------------------------

    def assign_from_user(self, partitions: Iterable[TopicPartition]) -> None:
        self._set_type(SubscriptionType.USER_ASSIGNED)
        self._set_assignment(partitions)

    def assign_from_subscribed(self, partitions: Iterable[TopicPartition]) -> None:
        """Eager protocol: replace the whole assignment. Partitions kept keep their state."""
        if self.type not in (SubscriptionType.AUTO_TOPICS, SubscriptionType.AUTO_PATTERN):
            raise IllegalStateError("not subscribed to topics")
        self._set_assignment(partitions)

    def add_assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Cooperative protocol: add newly assigned partitions, keep the rest untouched."""
        for tp in partitions:
            if tp not in self._assignment:
                self._assignment[tp] = PartitionState(epoch=self._new_epoch())
        self.assignment_version += 1

    def remove_assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Revoked or lost partitions go, with all their state."""
        for tp in partitions:
            self._assignment.pop(tp, None)
        self.assignment_version += 1

    def mark_pending_revocation(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching and delivering these while the revoke listener runs (Java KIP-429:
        the listener may commit, but no new records may be handed out for them)."""
        for tp in partitions:
            state = self._assignment.get(tp)
            if state is not None:
                state.pending_revocation = True
                state.epoch = self._new_epoch()

    def _set_assignment(self, partitions: Iterable[TopicPartition]) -> None:
        old = self._assignment
        new: dict[TopicPartition, PartitionState] = {}
        for tp in partitions:
            new[tp] = old.get(tp) or PartitionState(epoch=self._new_epoch())
        self._assignment = new
        self.assignment_version += 1

    def _new_epoch(self) -> int:
        self._next_epoch += 1
        return self._next_epoch

    def assigned_partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self._assignment)

    def is_assigned(self, tp: TopicPartition) -> bool:
        return tp in self._assignment

    def state(self, tp: TopicPartition) -> PartitionState:
        try:
            return self._assignment[tp]
        except KeyError:
            raise IllegalStateError(f"{tp} is not assigned to this consumer") from None

    # -- pause / resume -------------------------------------------------------------

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.state(tp).paused = True

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.state(tp).paused = False

    def paused(self) -> frozenset[TopicPartition]:
        return frozenset(tp for tp, s in self._assignment.items() if s.paused)

    # -- positions ------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int, leader_epoch: int = -1) -> None:
        """Move both positions; anything fetched or in flight for ``tp`` becomes stale."""
        if offset < 0:
            raise ValueError("offset must be >= 0")
        state = self.state(tp)
        with self.lock:
            state.position = state.fetch_offset = offset
            state.position_epoch = state.fetch_epoch = leader_epoch
            state.reset_strategy = None
            state.truncated = False
            state.epoch = self._new_epoch()

    def position(self, tp: TopicPartition) -> int | None:
        """Next offset the application will see; None until initialised."""
        state = self.state(tp)
        return state.position if state.reset_strategy is None else None

    def request_offset_reset(
        self, tp: TopicPartition, strategy: OffsetResetStrategy | None = None
    ) -> None:
        state = self.state(tp)
        state.reset_strategy = strategy or self.default_reset
        state.reset_not_before = 0
        state.truncated = False
        state.epoch = self._new_epoch()

    def partitions_needing_reset(self, now: int) -> dict[TopicPartition, OffsetResetStrategy]:
        """Partitions to look up with ListOffsets now (backoff respected)."""
        return {
            tp: s.reset_strategy
            for tp, s in self._assignment.items()
            if s.reset_strategy is not None and s.reset_not_before <= now
        }

    def reset_backoff(self, partitions: Iterable[TopicPartition], not_before: int) -> None:
        """A ListOffsets attempt failed: do not retry these before ``not_before``."""
        for tp in partitions:
            state = self._assignment.get(tp)
            if state is not None and state.reset_strategy is not None:
                state.reset_not_before = not_before

    def complete_reset(
        self, tp: TopicPartition, strategy: OffsetResetStrategy, offset: int, leader_epoch: int = -1
    ) -> bool:
        """Apply a ListOffsets answer unless the reset was superseded meanwhile (a seek or
        a different reset). Returns whether it was applied."""
        state = self._assignment.get(tp)
        if state is None or state.reset_strategy is not strategy:
            return False
        self.seek(tp, offset, leader_epoch)
        return True

    def initializing_partitions(self) -> list[TopicPartition]:
        """Assigned partitions with no position and no reset pending: the coordinator
        fetches their committed offsets."""
        return sorted(
            tp
            for tp, s in self._assignment.items()
            if s.position is None and s.reset_strategy is None
        )

    def apply_committed(self, committed: Mapping[TopicPartition, OffsetAndMetadata | None]) -> None:
        """Initialise positions from OffsetFetch; no committed offset -> default reset.
        Partitions that meanwhile got a position (user seek) are left alone."""
        for tp, offset in committed.items():
            state = self._assignment.get(tp)
            if state is None or state.position is not None or state.reset_strategy is not None:
                continue
            if offset is None:
                self.request_offset_reset(tp)
            else:
                self.seek(tp, offset.offset, offset.leader_epoch)

    def has_all_positions(self) -> bool:
        return all(s.has_position for s in self._assignment.values())

    # -- fetching and delivery --------------------------------------------------------

    def fetchable_partitions(self) -> list[TopicPartition]:
        """Partitions the fetcher may request now: positioned, not paused, not being
        reset or revoked. Sorted, so request building is deterministic."""
        return sorted(
            tp
            for tp, s in self._assignment.items()
            if s.fetch_offset is not None
            and s.reset_strategy is None
            and not s.paused
            and not s.pending_revocation
            and not s.awaiting_validation
        )

    def is_current(self, tp: TopicPartition, epoch: int) -> bool:
        """Was data tagged with ``epoch`` fetched for the current position of ``tp``?"""
        state = self._assignment.get(tp)
        return state is not None and state.epoch == epoch and not state.pending_revocation

    def advance_fetch(
        self, tp: TopicPartition, epoch: int, next_offset: int, leader_epoch: int
    ) -> bool:
        """The fetcher received data up to ``next_offset``; False (and no change) if stale."""
        if not self.is_current(tp, epoch):
            return False
        state = self._assignment[tp]
        state.fetch_offset = next_offset
        state.fetch_epoch = leader_epoch
        return True

    def deliver(self, tp: TopicPartition, epoch: int, next_offset: int, leader_epoch: int) -> bool:
        """Records below ``next_offset`` are being handed to the application. False means
        the batch is stale and must be dropped, not delivered."""
        state = self._assignment.get(tp)
        # Paused is not stale: the caller keeps buffered data of paused partitions.
        if state is None or state.epoch != epoch or state.pending_revocation:
            return False
        state.position = next_offset
        if leader_epoch >= 0:  # legacy batches carry none: keep the last known (C9)
            state.position_epoch = leader_epoch
        return True

    def mark_poll_boundary(self) -> None:
        """The application called poll again: everything delivered so far is processed."""
        for state in self._assignment.values():
            if state.position is not None and state.reset_strategy is None:
                state.consumed = state.position
                state.consumed_epoch = state.position_epoch

    def delivered_offsets(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """What ``commit()`` commits: the position of every positioned partition."""
        return {
            tp: OffsetAndMetadata(s.position, "", s.position_epoch)
            for tp, s in self._assignment.items()
            if s.position is not None and s.reset_strategy is None
        }

    def consumed_offsets(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """What auto-commit commits: positions as of the start of the latest poll."""
        return {
            tp: OffsetAndMetadata(s.consumed, "", s.consumed_epoch)
            for tp, s in self._assignment.items()
            if s.consumed is not None
        }

    def update_watermarks(
        self,
        tp: TopicPartition,
        high_watermark: int,
        last_stable_offset: int,
        log_start_offset: int,
    ) -> None:
        state = self._assignment.get(tp)
        if state is None:
            return
        state.high_watermark = high_watermark
        if last_stable_offset >= 0:
            state.last_stable_offset = last_stable_offset
        if log_start_offset >= 0:
            state.log_start_offset = log_start_offset

    # -- preferred read replica (KIP-392) ----------------------------------------------

    def set_preferred_read_replica(self, tp: TopicPartition, node_id: int, expires_at: int) -> None:
        state = self._assignment.get(tp)
        if state is not None:
            state.preferred_read_replica = node_id
            state.replica_expires_at = expires_at

    def preferred_read_replica(self, tp: TopicPartition, now: int) -> int | None:
        """The follower to fetch from, or None for the leader. Expired entries are cleared
        so the consumer periodically goes back to the leader to learn a better replica."""
        state = self._assignment.get(tp)
        if state is None or state.preferred_read_replica is None:
            return None
        if now >= state.replica_expires_at:
            state.preferred_read_replica = None
            return None
        return state.preferred_read_replica

    def clear_preferred_read_replica(self, tp: TopicPartition) -> None:
        state = self._assignment.get(tp)
        if state is not None:
            state.preferred_read_replica = None
