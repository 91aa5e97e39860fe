"""The coordinator driver: group membership, rebalance callbacks, commits, committed offsets.

Loop (``Coordinator.run``; the only code that awaits group traffic)::

    group mode (subscribe):  result = member.poll(now)            (pure GroupMember)
        for event in result.events:   REVOKED / ASSIGNED / LOST, in order, each finished
                                      (listener awaited) before the next poll
        for request in result.requests: child task -> generated message at the
                                      negotiated version -> member.on_<api>_response
    both modes: partitions without a position -> OffsetFetch (child task) -> apply
    auto-commit when due (child task, so heartbeats never wait for a commit)
    sleep until result.deadline, the auto-commit deadline, or a wake-up

Event order for one partition set (eager and cooperative alike):

* REVOKED: auto-commit of consumed offsets (the generation is still valid), then
  ``mark_pending_revocation`` (no more fetching/delivery, buffered data dropped),
  then ``on_partitions_revoked`` (may commit), then the partitions leave the assignment.
* LOST: as REVOKED but without the commit (it would fail), with ``on_partitions_lost``.
* ASSIGNED: partitions join the assignment, then ``on_partitions_assigned`` (may seek).

Manual assignment with a ``group_id`` uses no membership: commits go out with
generation -1 to a coordinator found by a plain FindCoordinator.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Mapping

import anyio
import anyio.abc
import anyio.lowlevel

from kclient._clock import now_ms
from kclient.cluster.refresher import MetadataManager
from kclient.config import ConsumerConfig
from kclient.consumer import _group_wire as wire
from kclient.consumer import group_types as gt
from kclient.consumer._errors import CommitFailedError
from kclient.consumer._rpc import all_topics, any_node, send
from kclient.consumer.assignors import (
    CooperativeStickyAssignor,
    PartitionAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
)
from kclient.consumer.fetch_task import FetchTask
from kclient.consumer.fetcher import FetchBuffer
from kclient.consumer.group_protocol import ConsumerGroupProtocol, group_subscription
from kclient.consumer.listener import invoke
from kclient.consumer.membership import NO_GENERATION, GroupMember
from kclient.consumer.offsets import (
    AutoCommitTimer,
    Outcome,
    build_commit_request,
    build_offset_fetch_request,
    commit_transport_failure,
    handle_commit_response,
    handle_offset_fetch_response,
    offsets_to_auto_commit,
)
from kclient.consumer.subscription import SubscriptionState, SubscriptionType
from kclient.errors import KafkaError, KafkaTimeoutError
from kclient.net.pool import ConnectionPool
from kclient.structs import OffsetAndMetadata, TopicPartition
from protocol.messages import find_coordinator as fc
from protocol.messages import offset_commit as oc
from protocol.messages import offset_fetch as of
from protocol.messages.join_group import JoinGroupResponse
from protocol.messages.leave_group import LeaveGroupRequest as LeaveMessage

__all__ = ["Coordinator", "make_assignors"]

log = logging.getLogger("kclient.consumer.coordinator")

_ASSIGNORS: dict[str, Callable[[], PartitionAssignor]] = {
    "range": RangeAssignor,
    "roundrobin": RoundRobinAssignor,
    "sticky": StickyAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


def _share(deadline_ms: float, fraction: float) -> float:
    """``fraction`` of the time left until ``deadline_ms``, in ms (never negative)."""
    return max(0.0, (deadline_ms - now_ms()) * fraction)


def make_assignors(names: Collection[str | PartitionAssignor]) -> list[PartitionAssignor]:
    out: list[PartitionAssignor] = []
    for entry in names:
        if isinstance(entry, str):
            try:
                out.append(_ASSIGNORS[entry]())
            except KeyError:
                raise ValueError(f"unknown partition assignor {entry!r}") from None
        else:
            out.append(entry)
    return out


class Coordinator:
    def __init__(
        self,
        config: ConsumerConfig,
        pool: ConnectionPool,
        metadata: MetadataManager,
        subscriptions: SubscriptionState,
        buffer: FetchBuffer,
        fetch_task: FetchTask,
        *,
        assignors: list[PartitionAssignor],
        listener: Callable[[], object | None],
        on_revoke: Callable[[Collection[TopicPartition]], None],
    ) -> None:
        assert config.group_id is not None
        self.group_id: str = config.group_id
        self._config = config
        self._pool = pool
        self._metadata = metadata
        self._subs = subscriptions
        self._buffer = buffer
        self._fetch = fetch_task
        self._assignors = assignors
        self._listener = listener
        self._on_revoke = on_revoke
        self.member = self._new_member()
        self._wake = anyio.Event()
        self._manual_coordinator: int | None = None
        self._offset_fetch_running = False
        self._auto_commit_running = False
        self._auto = (
            AutoCommitTimer(config.auto_commit_interval_ms, int(now_ms()))
            if config.enable_auto_commit
            else None
        )
        self.last_committed: dict[TopicPartition, OffsetAndMetadata] = {}
        self.error: BaseException | None = None  # raised once by the facade
        self._meta_wanted_at = -1.0
        self._counts: dict[str, int] = {}
        self._pattern_checked = -1.0
        self.stable = anyio.Event()
        self._deferred: list[gt.RebalanceEvent] = []

    def _new_member(self) -> GroupMember:
        cfg = self._config
        protocol = ConsumerGroupProtocol(
            self._assignors, self._partition_counts, cfg.client_rack or None
        )
        member_config = gt.MemberConfig(
            self.group_id,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            group_instance_id=cfg.group_instance_id,
            retry_backoff_ms=cfg.retry_backoff_ms,
            retry_backoff_max_ms=cfg.retry_backoff_max_ms,
        )
        return GroupMember(member_config, protocol, now=int(now_ms()), rng=random.Random())

    def _partition_counts(self) -> dict[str, int]:
        return {name: len(t.partitions) for name, t in self._metadata.snapshot.topics.items()}

    def wake(self) -> None:
        self._wake.set()

    @property
    def _group_mode(self) -> bool:
        return self._subs.type in (SubscriptionType.AUTO_TOPICS, SubscriptionType.AUTO_PATTERN)

    # -- the loop ---------------------------------------------------------------------------

    async def run(
        self,
        task_group: anyio.abc.TaskGroup,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        while True:
            self._wake = anyio.Event()
            now = now_ms()
            deadline: float | None = None
            if self._group_mode:
                deadline = await self._group_step(task_group, now)
            self._start_offset_fetch(task_group)
            auto = self._start_auto_commit(task_group, now)
            candidates = [d for d in (deadline, auto) if d is not None]
            delay = (min(candidates) - now) / 1000 if candidates else 1.0
            if delay > 0:
                with anyio.move_on_after(min(delay, 1.0)):
                    await self._wake.wait()
            else:
                await anyio.lowlevel.checkpoint()  # due again at once: still let others run

    async def _group_step(self, tg: anyio.abc.TaskGroup, now: float) -> float | None:
        if not self._group_metadata_ready(tg, now):
            return now + self._config.retry_backoff_ms
        result = self.member.poll(int(now))
        for event in result.events:
            await self._dispatch_event(event)
        if self._deferred and self.member.generation_id == NO_GENERATION:
            await self._lose_deferred()  # membership went while they waited (C6)
        for request in result.requests:
            tg.start_soon(self._send_group, request)
        if self.member.state.name == "STABLE" and not self.stable.is_set():
            self.stable.set()
        return result.deadline

    def _group_metadata_ready(self, tg: anyio.abc.TaskGroup, now: float) -> bool:
        """Join only with metadata of the subscribed topics at hand: the leader assigns
        from the partition counts it knows, and an empty view would assign nothing."""
        if self._subs.type is SubscriptionType.AUTO_PATTERN and (
            self._pattern_checked < 0
            or now - self._pattern_checked >= self._config.metadata_max_age_ms
        ):
            self._pattern_checked = now
            tg.start_soon(self._match_pattern)
        topics = self._subs.metadata_topics()
        self._metadata.add_topics(topics)
        if topics - set(self._metadata.snapshot.topics):
            if self._meta_wanted_at < 0:
                self._meta_wanted_at = now
            if self._metadata.snapshot.updated_at_ms < self._meta_wanted_at:
                return False
        self._meta_wanted_at = -1.0
        self.member.set_subscription(self._subs.subscription())
        counts = {t: n for t, n in self._partition_counts().items() if t in topics}
        if self._counts and counts != self._counts and self.member.state.name == "STABLE":
            self.member.request_rejoin("partition count changed")
        self._counts = counts
        return True

    async def _match_pattern(self) -> None:
        try:
            topics, internal = await all_topics(
                self._pool, self._metadata, self._config.request_timeout_ms
            )
        except KafkaError as exc:
            log.info("listing topics for the pattern subscription failed: %s", exc)
            self._pattern_checked = -1.0
            return
        hidden = internal if self._config.exclude_internal_topics else frozenset()
        if self._subs.update_matched_topics(topics, hidden):
            self.wake()

    # -- rebalance events -------------------------------------------------------------------
    #
    # Revocations wait for the application (docs/design-notes/consumer-revocation.md):
    # a REVOKED event stops fetching and delivery for its partitions at once, but its
    # auto-commit and listener run in the application's next poll (``run_deferred``), so
    # they never race the batch being processed; events behind it wait too, to keep the
    # order. Meanwhile the member holds its JoinGroup and keeps heartbeating, and the wait
    # is bounded by max_poll_interval_ms: past it the member leaves and the waiting
    # revocations become LOST (run here, as losses always are).

    @property
    def has_deferred(self) -> bool:
        return bool(self._deferred)

    async def _dispatch_event(self, event: gt.RebalanceEvent) -> None:
        kind = event.kind
        if kind is gt.RebalanceEventKind.LOST and self._deferred:
            await self._lose_deferred()  # then this loss, in order
        elif kind is gt.RebalanceEventKind.REVOKED or self._deferred:
            if kind is gt.RebalanceEventKind.REVOKED:
                self._subs.mark_pending_revocation(event.partitions)
                self._buffer.clear(dict.fromkeys(event.partitions))
                self._on_revoke(event.partitions)
            self._deferred.append(event)
            self.member.hold_join = True
            self._fetch.notify_application()  # a poll parked waiting for data runs them
            return
        await self._run_event(event)

    async def run_deferred(self, *, auto_commit: bool = True) -> None:
        """Run the waiting rebalance events, in order; called from the application's
        poll (or close). Each event is taken before it runs, so concurrent polls never
        run one twice."""
        while self._deferred:
            event = self._deferred.pop(0)
            await self._run_event(event, auto_commit=auto_commit)
        if self.member.hold_join:
            self.member.hold_join = False
            self.wake()

    async def _lose_deferred(self) -> None:
        """The membership is gone: waiting revocations are losses now (no commit)."""
        self._deferred = [
            gt.RebalanceEvent(gt.RebalanceEventKind.LOST, e.partitions, e.generation_id)
            if e.kind is gt.RebalanceEventKind.REVOKED
            else e
            for e in self._deferred
        ]
        await self.run_deferred()

    async def _run_event(self, event: gt.RebalanceEvent, *, auto_commit: bool = True) -> None:
        parts = event.partitions
        listener = self._listener()
        kind = event.kind
        try:
            if kind is gt.RebalanceEventKind.ASSIGNED:
                self._subs.add_assigned(parts)
                self._fetch.wake()
                await invoke(getattr(listener, "on_partitions_assigned", None), parts)
                return
            if kind is gt.RebalanceEventKind.REVOKED and auto_commit and self._auto is not None:
                await self._commit_quietly(self._subs.consumed_offsets())
            self._subs.mark_pending_revocation(parts)
            self._buffer.clear(dict.fromkeys(parts))
            self._on_revoke(parts)
            name = "on_partitions_revoked"
            if kind is gt.RebalanceEventKind.LOST:
                lost = getattr(listener, "on_partitions_lost", None)
                name = "on_partitions_lost" if lost is not None else name
            await invoke(getattr(listener, name, None), parts)
        except Exception as exc:  # the application's callback: report, keep the group going
            log.exception("rebalance listener failed on %s", kind.value)
            self.error = self.error or exc
        finally:
            if kind is not gt.RebalanceEventKind.ASSIGNED:
                self._subs.remove_assigned(parts)
                for tp in parts:
                    self.last_committed.pop(tp, None)

    async def _commit_quietly(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: float | None = None
    ) -> None:
        if not offsets:
            return
        try:
            timeout = self._config.request_timeout_ms if timeout_ms is None else timeout_ms
            await self.commit(offsets, timeout)
        except KafkaError as exc:
            log.info("auto-commit (revocation or close) failed: %s", exc)

    # -- group requests -------------------------------------------------------------------------

    async def _send_group(self, request: gt.GroupRequest) -> None:
        node = request.node_id
        if node is None:
            node = any_node(self._pool, self._metadata)
        timeout = self._config.request_timeout_ms
        if isinstance(request, gt.JoinGroupRequest):
            timeout += request.rebalance_timeout_ms  # the broker holds JoinGroup that long
        built = (wire.MESSAGE_CLASS[type(request)], lambda v: wire.group_message(request, v))
        member = self.member
        try:
            response, version = await send(self._pool, node, built, timeout_ms=timeout)
        except KafkaError as exc:
            log.info("%s to node %s failed: %s", type(request).__name__, node, exc)
            if member is self.member:
                member.on_request_failed(request, int(now_ms()))
        else:
            if isinstance(request, gt.JoinGroupRequest):
                await self._cover_group_topics(response)
            # An answer for a member that left meanwhile (close, unsubscribe) is moot.
            if member is self.member and member.state.name != "CLOSED":
                self._dispatch(request, response, version)
        finally:
            self.wake()

    async def _cover_group_topics(self, response: object) -> None:
        """Leader only: the assignor needs the partition counts of every member's topics,
        not just of ours, so fetch metadata for the whole group subscription before
        assigning (as Java's leader does). Bounded well inside the session timeout: on
        a timeout or a topic error the assignment goes ahead with what is known, and a
        later partition-count change triggers a rejoin."""
        if not (
            isinstance(response, JoinGroupResponse)
            and response.error_code == 0
            and response.leader == response.member_id
        ):
            return
        wanted = set(group_subscription(m.metadata for m in response.members))
        self._subs.set_group_topics(wanted)
        if wanted <= set(self._metadata.snapshot.topics):
            return
        budget = min(self._config.request_timeout_ms, self._config.session_timeout_ms / 2)
        try:
            await self._metadata.wait_for_topics(wanted, timeout_ms=budget)
        except KafkaError as exc:
            log.info("assigning without metadata for some group topics: %s", exc)

    def _dispatch(self, request: gt.GroupRequest, response: object, version: int) -> None:
        wire.deliver_response(self.member, request, response, version, int(now_ms()))

    # -- committed offsets ----------------------------------------------------------------------

    def _start_offset_fetch(self, tg: anyio.abc.TaskGroup) -> None:
        if self._offset_fetch_running:
            return
        if self._group_mode and self.member.state.name != "STABLE":
            return
        pending = self._subs.initializing_partitions()
        if pending:
            self._offset_fetch_running = True
            tg.start_soon(self._init_positions, pending)

    async def _init_positions(self, partitions: list[TopicPartition]) -> None:
        try:
            committed = await self.fetch_committed(partitions, self._config.request_timeout_ms)
        except KafkaError as exc:
            log.info("fetching committed offsets failed: %s", exc)
            await anyio.sleep(self._config.retry_backoff_ms / 1000)
        else:
            self._subs.apply_committed(committed)
            self._fetch.wake()
        finally:
            self._offset_fetch_running = False
            self.wake()

    async def coordinator_node(self, deadline: float, *, committing: bool = False) -> int:
        """The group coordinator's node id, looking it up if needed (bounded by deadline).

        ``committing``: fail at once (and while waiting) if the membership no longer
        allows a commit; the wait could never end inside a listener callback (C5)."""
        while True:
            if committing and self._group_mode:
                refusal = self.member.commit_refusal()
                if refusal is not None:
                    raise refusal
            if self._group_mode and self.member.coordinator is not None:
                return self.member.coordinator
            if not self._group_mode and self._manual_coordinator is not None:
                return self._manual_coordinator
            if now_ms() >= deadline:
                raise KafkaTimeoutError("group coordinator not found in time")
            if self._group_mode:
                self.wake()
                await anyio.sleep(0.02)
                continue
            await self._find_manual_coordinator(deadline)

    async def _find_manual_coordinator(self, deadline: float) -> None:
        desc = gt.FindCoordinatorRequest(self.group_id)
        built = (fc.FindCoordinatorRequest, lambda v: wire.group_message(desc, v))
        node = any_node(self._pool, self._metadata)
        try:
            response, version = await send(self._pool, node, built, timeout_ms=deadline - now_ms())
        except KafkaError as exc:
            log.info("FindCoordinator failed: %s", exc)
            await anyio.sleep(self._config.retry_backoff_ms / 1000)
            return
        assert isinstance(response, fc.FindCoordinatorResponse)
        code, found = wire.read_find_coordinator(response, version)
        if code == 0 and found >= 0:
            self._manual_coordinator = found
        else:
            await anyio.sleep(self._config.retry_backoff_ms / 1000)

    def _coordinator_moved(self) -> None:
        if self._group_mode:
            self.member.on_commit_error(16, self.member.generation_id, int(now_ms()))
        self._manual_coordinator = None

    async def fetch_committed(
        self, partitions: Collection[TopicPartition], timeout_ms: float
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        deadline = now_ms() + timeout_ms
        todo = list(partitions)
        out: dict[TopicPartition, OffsetAndMetadata | None] = {}
        while todo:
            node = await self.coordinator_node(deadline)
            req = build_offset_fetch_request(node, self.group_id, todo)
            built = (of.OffsetFetchRequest, lambda v, req=req: wire.offset_fetch_message(req, v))
            try:
                response, version = await send(self._pool, node, built, timeout_ms=timeout_ms)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                self._coordinator_moved()
                todo = list(req.partitions)
            else:
                assert isinstance(response, of.OffsetFetchResponse)
                code, found = wire.read_offset_fetch(response, version)
                result = handle_offset_fetch_response(req, code, found)
                if result.outcome is Outcome.FAILED:
                    assert result.error is not None
                    raise result.error
                out.update(result.committed)
                todo = result.retry
                if result.coordinator_moved:
                    self._coordinator_moved()
            if todo:
                if now_ms() >= deadline:
                    raise KafkaTimeoutError(f"committed offsets of {todo} not fetched in time")
                await anyio.sleep(self._config.retry_backoff_ms / 1000)
        return out

    # -- commits ---------------------------------------------------------------------------------

    def _identity(self, node: int) -> gt.GroupIdentity:
        if self._group_mode:
            return self.member.commit_identity()
        return gt.GroupIdentity(node, -1, "", None)

    async def commit(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: float
    ) -> None:
        """Commit ``offsets``; retries only coordinator trouble, never through a rebalance."""
        deadline = now_ms() + timeout_ms
        while True:
            node = await self.coordinator_node(deadline, committing=True)
            req = build_commit_request(self.group_id, self._identity(node), offsets)
            built = (oc.OffsetCommitRequest, lambda v, req=req: wire.commit_message(req, v))
            try:
                response, _ = await send(self._pool, req.node_id, built, timeout_ms=timeout_ms)
            except KafkaError:
                result = commit_transport_failure(req)
            else:
                assert isinstance(response, oc.OffsetCommitResponse)
                result = handle_commit_response(req, wire.read_commit(response))
            if result.member_error is not None:
                if self._group_mode:
                    self.member.on_commit_error(
                        result.member_error, req.generation_id, int(now_ms())
                    )
                else:
                    self._manual_coordinator = None
                self.wake()
            if result.outcome is Outcome.SUCCEEDED:
                self.last_committed.update(result.committed)
                return
            assert result.error is not None
            if result.outcome is Outcome.FAILED or now_ms() >= deadline:
                raise result.error
            await anyio.sleep(self._config.retry_backoff_ms / 1000)

    def _start_auto_commit(self, tg: anyio.abc.TaskGroup, now: float) -> float | None:
        timer = self._auto
        if timer is None:
            return None
        if timer.due(int(now)) and not self._auto_commit_running:
            offsets = offsets_to_auto_commit(self._subs, self.last_committed)
            if offsets and self._can_commit():
                self._auto_commit_running = True
                tg.start_soon(self._auto_commit, offsets)
            else:
                timer.reset(int(now))
        return float(timer.deadline)

    def _can_commit(self) -> bool:
        if not self._group_mode:
            return self._subs.type is SubscriptionType.USER_ASSIGNED
        try:
            self.member.commit_identity()
        except (KafkaError, CommitFailedError):
            return False
        return True

    async def _auto_commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assert self._auto is not None
        try:
            await self.commit(offsets, self._config.request_timeout_ms)
        except KafkaError as exc:
            log.info("auto-commit failed: %s", exc)
            self._auto.retry_after(int(now_ms()), self._config.retry_backoff_ms)
        else:
            self._auto.reset(int(now_ms()))
        finally:
            self._auto_commit_running = False

    # -- leaving ---------------------------------------------------------------------------------

    async def leave(
        self, *, final_commit: bool, processed: bool = True, deadline_ms: float | None = None
    ) -> None:
        """Final commit (auto-commit), revoke callbacks, LeaveGroup, by ``deadline_ms``.

        ``processed=False`` (closing on an exception): the latest poll's records may not
        have been processed, so the final commit covers only earlier polls (``consumed``).

        The budget is shared out so an unresponsive coordinator cannot starve the
        LeaveGroup (C11): the final commit gets at most half of it, the callbacks half
        of the rest, LeaveGroup what remains (at least a quarter). There is at most one
        final commit: the revoke events of closing do not auto-commit again.
        """
        if deadline_ms is None:
            deadline_ms = now_ms() + self._config.request_timeout_ms
        if final_commit and self._auto is not None and (self._can_commit()):
            offsets = self._subs.delivered_offsets() if processed else self._subs.consumed_offsets()
            await self._commit_quietly(offsets, timeout_ms=_share(deadline_ms, 0.5))
        if not self._group_mode:
            return
        with anyio.move_on_after(_share(deadline_ms, 0.5) / 1000):
            if self._deferred and self.member.generation_id == NO_GENERATION:
                await self._lose_deferred()
            await self.run_deferred(auto_commit=False)
            for event in self.member.prepare_close():
                await self._run_event(event, auto_commit=False)
        await self._send_leave(self.member.close(), timeout_ms=max(1.0, deadline_ms - now_ms()))

    def abandon_group(self, task_group: anyio.abc.TaskGroup) -> None:
        """``unsubscribe()``: leave at once (in the background), ready to join afresh."""
        request = self.member.close()
        self.member = self._new_member()
        self.stable = anyio.Event()
        self._deferred = []  # their partitions left with the subscription
        task_group.start_soon(self._send_leave, request)

    async def _send_leave(
        self, request: gt.LeaveGroupRequest | None, timeout_ms: float | None = None
    ) -> None:
        if request is not None:
            built = (LeaveMessage, lambda v: wire.group_message(request, v))
            timeout = self._config.request_timeout_ms if timeout_ms is None else timeout_ms
            try:
                await send(self._pool, request.node_id, built, timeout_ms=timeout)
            except KafkaError as exc:
                log.info("LeaveGroup failed: %s", exc)
