"""The fetch driver: the only consumer code that awaits fetches and offset resets.

Loop (``FetchTask.run``)::

    plan (pure: fetcher.plan_fetches)  -> one child task per node with work and no
                                          fetch in flight (one in flight per broker,
                                          which the fetch session protocol requires)
    resets (pure: partitions_needing_reset) -> one ListOffsets child task per batch
    sleep until woken (a fetch finished, the application drained data, an assignment
    or seek changed, a backoff ran out)

A node's child task connects, picks the Fetch version (<= 12: topic names), builds the
request from the session handler, awaits the answer and folds it into the
:class:`FetchBuffer` with the pure :func:`handle_fetch_response`. Epochs and fetch
offsets are captured together at planning time, so data for a partition that was
sought while the request was out is recognised as stale however long it took.

Consumers without a group initialise positions here (reset policy); group consumers
get them from the coordinator driver (committed offsets first).
"""

from __future__ import annotations

import logging
import random

import anyio
import anyio.abc

from kclient._clock import now_ms
from kclient.cluster.refresher import MetadataManager
from kclient.config import ConsumerConfig
from kclient.consumer import validation
from kclient.consumer._errors import ErrorCode
from kclient.consumer.fetch_session import FetchPartitionData, FetchSessionHandler
from kclient.consumer.fetcher import (
    CompletedFetch,
    FetchBuffer,
    FetchContext,
    build_fetch_request,
    handle_fetch_response,
    plan_fetches,
)
from kclient.consumer.list_offsets import EARLIEST, LATEST, list_offsets
from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState
from kclient.errors import KafkaConnectionError, KafkaError, UnsupportedVersionForApiError
from kclient.net.backoff import Backoff
from kclient.net.pool import ConnectionPool
from kclient.structs import TopicPartition
from protocol.messages.fetch import FetchRequest, FetchResponse
from protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)

__all__ = ["FetchTask"]

log = logging.getLogger("kclient.consumer.fetch")

#: Fetch v13+ names topics by id; v12 is the newest that uses names.
MAX_FETCH_VERSION = 12
_IDLE_RECHECK_S = 1.0


class FetchTask:
    def __init__(
        self,
        config: ConsumerConfig,
        pool: ConnectionPool,
        metadata: MetadataManager,
        subscriptions: SubscriptionState,
        buffer: FetchBuffer,
        *,
        manage_positions: bool,
    ) -> None:
        self._config = config
        self._pool = pool
        self._metadata = metadata
        self._subs = subscriptions
        self._buffer = buffer
        self._manage_positions = manage_positions
        self._sessions: dict[int, FetchSessionHandler] = {}
        self._in_flight: dict[int, object] = {}
        self._backoff: dict[int, Backoff] = {}
        self._resetting: set[TopicPartition] = set()
        self._validating: set[TopicPartition] = set()
        self._observed: tuple[int, int] = (0, -1)
        self._wake = anyio.Event()
        self.data_event = anyio.Event()
        self.fetches_done = 0
        #: Non-retriable reset failure, raised to the application by the facade.
        self.error: KafkaError | None = None

    def wake(self) -> None:
        self._wake.set()

    def notify_application(self) -> None:
        """Wake a poll waiting for data: something else needs it (a rebalance event)."""
        self._signal_data()

    def _signal_data(self) -> None:
        event, self.data_event = self.data_event, anyio.Event()
        event.set()

    async def run(
        self,
        task_group: anyio.abc.TaskGroup,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        while True:
            # A fresh event before planning: a wake-up during planning is not lost.
            self._wake = anyio.Event()
            delay = self._step(task_group, now_ms())
            with anyio.move_on_after(delay):
                await self._wake.wait()

    def _step(self, tg: anyio.abc.TaskGroup, now: float) -> float:
        """Start whatever work is due; return how long to sleep at most (seconds)."""
        self._metadata.add_topics(self._subs.metadata_topics())
        if self._manage_positions:
            for tp in self._subs.initializing_partitions():
                self._subs.request_offset_reset(tp)
        self._start_resets(tg, int(now))
        self._start_validations(tg)
        busy = dict(self._in_flight)
        for node, backoff in self._backoff.items():
            if backoff.remaining_ms(now) > 0:
                busy[node] = backoff
        per_node, leaderless = plan_fetches(
            self._subs, self._buffer, self._leader_of, busy, self._config.max_partition_fetch_bytes
        )
        if leaderless:
            self._metadata.request_update()
        for node, wanted in per_node.items():
            epochs = {tp: self._subs.state(tp).epoch for tp in wanted}
            self._in_flight[node] = wanted
            tg.start_soon(self._fetch, node, wanted, epochs)
        waits = [b.remaining_ms(now) for b in self._backoff.values() if b.remaining_ms(now) > 0]
        if leaderless:
            waits.append(self._config.retry_backoff_ms)
        return min(waits) / 1000 if waits else _IDLE_RECHECK_S

    def _leader_of(self, tp: TopicPartition) -> tuple[int, int] | None:
        info = self._metadata.snapshot.topics.get(tp.topic)
        part = info.partition(tp.partition) if info is not None else None
        if part is None or part.leader < 0:
            return None
        # Fetch under the highest epoch seen: metadata answering -1 (or an older epoch
        # from a lagging broker) must not switch fencing off (C9).
        state = self._subs._assignment.get(tp)
        epoch = part.leader_epoch if state is None else max(part.leader_epoch, state.leader_epoch)
        return part.leader, epoch

    # -- leader-epoch validation (C9; decisions in validation.py) ------------------------------

    def _start_validations(self, tg: anyio.abc.TaskGroup) -> None:
        snapshot = self._metadata.snapshot
        key = (id(snapshot), self._subs.assignment_version)
        if key != self._observed:
            self._observed = key
            for tp in self._subs.assigned_partitions():
                info = snapshot.topics.get(tp.topic)
                part = info.partition(tp.partition) if info is not None else None
                if part is not None:
                    validation.observe_leader_epoch(self._subs.state(tp), part.leader_epoch)
        due: dict[int, dict[TopicPartition, validation.Pending]] = {}
        for tp in self._subs.assigned_partitions():
            if tp in self._validating or not validation.needs_validation(self._subs.state(tp)):
                continue
            leader = self._leader_of(tp)
            if leader is None:
                self._metadata.request_update()
                continue
            due.setdefault(leader[0], {})[tp] = validation.begin(self._subs, tp)
        for node, pending in due.items():
            self._validating |= set(pending)
            tg.start_soon(self._validate, node, pending)

    async def _validate(self, node: int, pending: dict[TopicPartition, validation.Pending]) -> None:
        retry = False
        try:
            conn = await self._pool.get(node)
            assert conn.versions is not None
            try:
                version = conn.versions.version_for(
                    OffsetForLeaderEpochRequest, min_version=validation.MIN_VERSION
                )
            except UnsupportedVersionForApiError:
                # Tansu and old brokers: no way to validate; accept the position.
                for tp, item in pending.items():
                    validation.skip(self._subs, tp, item)
                return
            response = await conn.request(
                validation.build_request(pending),
                version=version,
                timeout_ms=self._config.request_timeout_ms,
            )
        except KafkaError as exc:
            log.info("OffsetForLeaderEpoch to node %d failed: %s", node, exc)
            retry = True
        else:
            assert isinstance(response, OffsetForLeaderEpochResponse)
            retry = self._apply_validation(pending, validation.read_response(response))
        finally:
            if retry:
                self._metadata.request_update()
                with anyio.CancelScope(shield=True):  # the set below must be cleaned up
                    await anyio.sleep(self._config.retry_backoff_ms / 1000)
            self._validating -= set(pending)
            self.wake()

    def _apply_validation(
        self,
        pending: dict[TopicPartition, validation.Pending],
        answers: dict[TopicPartition, validation.EpochAnswer],
    ) -> bool:
        """Apply each partition's decision; True if some must be asked again."""
        retry = False
        missing = validation.EpochAnswer(ErrorCode.REQUEST_TIMED_OUT, -1, -1)
        for tp, item in pending.items():
            decision = validation.decide(
                tp, item.position, answers.get(tp, missing), self._subs.default_reset
            )
            if not validation.apply(self._subs, tp, item, decision):
                continue  # sought, reset or revoked meanwhile
            action = decision.action
            if action is validation.Action.RETRY:
                retry = True
            elif action is validation.Action.FAIL:
                assert decision.error is not None
                entry = CompletedFetch.failed(tp, item.token, item.position, decision.error)
                self._buffer.add(entry)
                self._signal_data()
            elif action is not validation.Action.VALID:
                log.warning(
                    "%s: log truncated below position %d (leader epoch %d -> %d): %s",
                    tp, item.position, item.position_epoch, item.leader_epoch,
                    f"seek to {decision.offset}" if action is validation.Action.SEEK
                    else "reset by auto_offset_reset",
                )  # fmt: skip
        return retry

    # -- fetching ---------------------------------------------------------------------------

    async def _fetch(
        self,
        node: int,
        wanted: dict[TopicPartition, FetchPartitionData],
        epochs: dict[TopicPartition, int],
    ) -> None:
        ctx: FetchContext | None = None
        try:
            conn = await self._pool.get(node)
            assert conn.versions is not None
            version = conn.versions.version_for(FetchRequest, max_version=MAX_FETCH_VERSION)
            session = self._session(node, version)
            request_ = session.build(wanted)
            offsets = {tp: d.fetch_offset for tp, d in wanted.items()}
            ctx = FetchContext(node, request_, epochs, offsets)
            timeout = self._config.request_timeout_ms + self._config.fetch_max_wait_ms
            response = await conn.request(
                build_fetch_request(ctx, self._config, version), version=version, timeout_ms=timeout
            )
        except KafkaError as exc:
            self._fetch_failed(node, ctx, exc)
        else:
            assert isinstance(response, FetchResponse)
            self._fetch_done(node, ctx, response)
        finally:
            self._in_flight.pop(node, None)
            self.wake()

    def _session(self, node: int, version: int) -> FetchSessionHandler:
        session = self._sessions.get(node)
        if session is None:
            session = self._sessions[node] = FetchSessionHandler(node, use_sessions=version >= 7)
        return session

    def _fetch_failed(self, node: int, ctx: FetchContext | None, exc: KafkaError) -> None:
        if ctx is not None:
            self._sessions[node].handle_error(ctx.session_request)
        backoff = self._backoff.setdefault(
            node, Backoff(self._config.retry_backoff_ms, self._config.retry_backoff_max_ms)
        )
        backoff.record_failure(now_ms(), random.random())
        if isinstance(exc, KafkaConnectionError) or exc.retriable:
            self._metadata.request_update()
        log.info("fetch from node %d failed: %s", node, exc)

    def _fetch_done(self, node: int, ctx: FetchContext, response: FetchResponse) -> None:
        backoff = self._backoff.get(node)
        if backoff is not None:
            backoff.record_success()
        outcome = handle_fetch_response(
            ctx, response, self._sessions[node], self._subs, self._config
        )
        self.fetches_done += 1
        for entry in outcome.completed:
            self._buffer.add(entry)
        if outcome.completed:
            self._signal_data()
        if outcome.refresh_metadata:
            self._metadata.request_update()

    # -- offset resets ------------------------------------------------------------------------

    def _start_resets(self, tg: anyio.abc.TaskGroup, now: int) -> None:
        due: dict[TopicPartition, OffsetResetStrategy] = {
            tp: strategy
            for tp, strategy in self._subs.partitions_needing_reset(now).items()
            if tp not in self._resetting and strategy is not OffsetResetStrategy.NONE
        }
        if due:
            self._resetting |= set(due)
            tg.start_soon(self._reset, due)

    async def _reset(self, due: dict[TopicPartition, OffsetResetStrategy]) -> None:
        timestamps = {
            tp: EARLIEST if s is OffsetResetStrategy.EARLIEST else LATEST for tp, s in due.items()
        }
        try:
            found = await list_offsets(
                self._pool,
                self._metadata,
                timestamps,
                read_committed=self._config.isolation_level == "read_committed",
                timeout_ms=self._config.request_timeout_ms,
            )
        except KafkaError as exc:
            log.info("offset reset for %s failed: %s", sorted(due), exc)
            if not exc.retriable:
                self.error = exc
            self._subs.reset_backoff(due, int(now_ms()) + self._config.retry_backoff_ms)
        else:
            for tp, answer in found.items():
                if answer is not None:
                    self._subs.complete_reset(tp, due[tp], answer.offset, answer.leader_epoch)
        finally:
            self._resetting -= set(due)
            self.wake()
