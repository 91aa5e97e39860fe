"""The Sender task: the only producer code that awaits.

Theory of operation
-------------------
One loop (``run``), woken by appends that start or fill a batch, by responses, by
freed connections and by a short poll while something waits on metadata or a
connection::

    InitProducerId when the IdempotenceManager asks (first id, or a bump once nothing
        is in flight); the queued batches then drop their old sequences
    expire(now)                         -> failed batches, reported to the manager
    ready(leader_for, now)              -> nodes with something sendable
    keep nodes that are connected and below max_in_flight requests (connect the others
        in the background)
    drain(nodes, ...)                   -> one ProduceRequest per node, written *here*,
        in drain order (see _wire.py), each answered in its own small task
    per partition of a response: IdempotenceManager.handle_produce_result (pure) ->
        complete / requeue / split / fail / release / fatal, then wake the loop

A partition missing from a response is treated as NO_RESPONSE (ambiguous, retried
under the same sequence), never as success. A connection error before the write is
NOT_SENT (retried, not possibly persisted); after it, NO_RESPONSE.

acks=0: the request is written with ``send_without_response`` and its batches complete
at once with offset -1.

Epoch bump (reliability.md 1.5 rule 4): InitProducerId carrying the current
producer id and epoch (KIP-360, v3+). A broker that rejects that (Tansu 0.6 answers
UNKNOWN_SERVER_ERROR) or only speaks v0-v2 gets a request for a fresh producer id,
which resets every sequence just the same.

Abort (fatal error, ``close(timeout=)`` running out): every batch fails, and responses
still out are ignored (``_generation``).

Transactions (``transactional_id``; docs/design-notes/transactions.md): the
:class:`TxnDriver` is stepped once per loop and sends the TransactionManager's requests
(its InitProducerId replaces the idempotent one above). A partition's batches are held
(reported under the pseudo leader ``_HELD``, never drained) until AddPartitionsToTxn
added it; while the transaction aborts, queued batches fail as
:class:`TransactionAbortedError`; every failed, expired or epoch-bumping produce result
is reported to the manager, which makes the transaction abortable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.abc

from kclient._clock import now_ms
from kclient.cluster.metadata import ClusterSnapshot
from kclient.cluster.refresher import MetadataManager
from kclient.config import ProducerConfig
from kclient.errors import (
    DeliveryTimeoutError,
    KafkaConnectionError,
    KafkaError,
    ProducerClosedError,
    TransactionAbortedError,
)
from kclient.net.backoff import Backoff
from kclient.net.pool import ConnectionPool
from kclient.producer import _wire
from kclient.producer.accumulator import RecordAccumulator
from kclient.producer.batch import BatchEncoder, DeliveryState, ProducerBatch
from kclient.producer.idempotence import (
    NO_RESPONSE,
    NOT_SENT,
    Action,
    Decision,
    IdempotenceManager,
)
from kclient.producer.transactions import TransactionManager, TxnState
from kclient.producer.txn_driver import TxnDriver
from kclient.producer.txn_plans import RECORD_EXPIRED
from protocol.api import Response
from protocol.errors import error_for_code
from protocol.messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from protocol.messages.produce import (
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)

__all__ = ["Sender", "delivery_error"]

log = logging.getLogger("kclient.producer.sender")

TP = tuple[str, int]
_MIN_BUMP_VERSION = 3  # InitProducerId with producer id/epoch (KIP-360)
_POLL_MS = 250.0  # re-check cadence while anything is pending (expiry, lost wake-ups)
_HELD = -1  # pseudo leader of a partition not yet added to the transaction: never drained
# Produce outcomes that doom the open transaction (reliability.md 1.5 rule 5).
_TXN_FAILURES = frozenset(
    {Action.FAIL, Action.BUMP_EPOCH_AND_FAIL, Action.BUMP_EPOCH_AND_RETRY, Action.FATAL}
)
_OPEN_TXN = (TxnState.IN_TRANSACTION, TxnState.ABORTABLE_ERROR)


def delivery_error(code: int, state: DeliveryState, batch: ProducerBatch) -> BaseException:
    """The broker's error class for ``code``, carrying ``delivery_state``.

    Our pseudo codes (no response, not sent) only end a batch when its delivery
    timeout has passed, so they become :class:`DeliveryTimeoutError`.
    """
    if code in (NO_RESPONSE, NOT_SENT):
        return DeliveryTimeoutError(
            f"no acknowledgement for {batch.topic}-{batch.partition} within the delivery "
            "timeout (the last attempt got no response)",
            state,
        )
    exc = error_for_code(code)(f"producing to {batch.topic}-{batch.partition}")
    exc.delivery_state = state  # type: ignore[attr-defined]
    return exc


class Sender:
    """Drives a :class:`RecordAccumulator` and :class:`IdempotenceManager` over the pool."""

    def __init__(
        self,
        config: ProducerConfig,
        pool: ConnectionPool,
        metadata: MetadataManager,
        accumulator: RecordAccumulator,
        idempotence: IdempotenceManager,
        encoder: BatchEncoder,
        *,
        clock: Callable[[], float] = now_ms,
        transactions: TransactionManager | None = None,
    ) -> None:
        self._config = config
        self._pool = pool
        self._metadata = metadata
        self._acc = accumulator
        self._idem = idempotence
        self._encoder = encoder
        self._clock = clock
        self._acks = int(config.acks)
        self._timeout_ms = config.request_timeout_ms
        self._max_request_size = config.max_request_size
        self._max_in_flight = config.max_in_flight_requests_per_connection
        self._inflight: dict[int, int] = {}  # node -> produce requests awaiting a response
        self._connecting: set[int] = set()
        self._leaders: dict[TP, int] = {}
        self._leaders_of: ClusterSnapshot | None = None
        self._init_backoff = Backoff(config.retry_backoff_ms, config.retry_backoff_max_ms)
        self._bump_supported = True
        self._generation = 0
        self._closing = False
        self._wake: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self.fatal_error: BaseException | None = None
        self.stopped = anyio.Event()
        self._forced = False  # abort() ran: stop without waiting for transactional work
        self._txn = transactions
        self._txn_deadline: float | None = None
        self.txn_driver: TxnDriver | None = None
        if transactions is not None:
            self.txn_driver = TxnDriver(
                transactions,
                pool,
                metadata,
                request_timeout_ms=config.request_timeout_ms,
                clock=clock,
                on_producer_id=self._on_producer_id,
                on_fatal=self._fail_fatally,
                wake=self.wake,
            )

    # -- control (called by the facade) -------------------------------------------------

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        """Send everything queued, then stop once nothing is queued or in flight."""
        self._closing = True
        self._acc.close()
        txn = self._txn
        if txn is not None and txn.state in _OPEN_TXN:
            txn.abort_transaction()  # as Java's producer: an open transaction is aborted
        self.wake()

    def abort(self, error: BaseException | None = None) -> None:
        """Fail every queued and in-flight batch now; later responses are ignored."""
        self._generation += 1
        self._forced = True

        def factory(batch: ProducerBatch, state: DeliveryState) -> BaseException:
            if error is not None:
                return error
            return ProducerClosedError(
                f"producer closed before {batch.topic}-{batch.partition} was delivered", state
            )

        self._acc.abort_all(factory)
        self.wake()

    # -- the loop -----------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self._wake = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                while not self._finished():
                    await self._run_once()
                tg.cancel_scope.cancel()  # connect attempts still running
        except Exception as exc:
            log.exception("producer sender crashed")
            self._fail_fatally(exc)
            raise
        finally:
            self.stopped.set()

    def _finished(self) -> bool:
        acc = self._acc
        if self.fatal_error is not None:
            return acc.in_flight_count == 0 and not acc.has_queued
        if not self._closing or acc.in_flight_count or acc.has_queued:
            return False
        return self._txn is None or self._forced or not self._txn.busy

    async def _run_once(self) -> None:
        now = self._clock()
        if self._idem.needs_init(self._acc.in_flight_count) and self.fatal_error is None:
            await self._init_producer_id()
            return
        self._expire(now)
        leader_for = self._leader_lookup()
        if self._txn is not None:
            self._step_transactions(now)
            leader_for = self._held(leader_for)
        ready = self._acc.ready(leader_for, now)
        if ready.unknown_leader_topics:
            self._metadata.add_topics(ready.unknown_leader_topics)
            self._metadata.request_update()
        nodes = {node for node in ready.nodes if node != _HELD and self._can_send_to(node)}
        if nodes:
            drained = self._acc.drain(nodes, leader_for, self._max_request_size, now)
            for node, batches in drained.items():
                await self._send(node, batches)
            if drained:
                return
        await self._sleep(self._wait_ms(ready.next_check_ms, bool(ready.unknown_leader_topics)))

    def _wait_ms(self, next_check_ms: float, awaiting_metadata: bool) -> float:
        if self._txn_deadline is not None:  # a transactional retry's backoff ends then
            next_check_ms = min(next_check_ms, max(0.0, self._txn_deadline - self._clock()))
        if not (self._acc.has_queued or self._acc.in_flight_count > 0):
            return next_check_ms
        # Expiry and metadata refreshes have no wake-up of their own: poll (responses,
        # appends and connection attempts do wake the loop).
        poll = self._config.retry_backoff_ms if awaiting_metadata else _POLL_MS
        return min(next_check_ms, poll)

    async def _sleep(self, wait_ms: float) -> None:
        assert self._wake is not None
        if wait_ms > 0 and not self._wake.is_set():
            with anyio.move_on_after(wait_ms / 1000):
                await self._wake.wait()
        else:
            await anyio.lowlevel.checkpoint()
        self._wake = anyio.Event()

    # -- routing and connections --------------------------------------------------------

    def _leader_lookup(self) -> Callable[[TP], int | None]:
        snapshot = self._metadata.snapshot
        if snapshot is not self._leaders_of:
            self._leaders_of = snapshot
            self._leaders = {
                (name, p.partition): p.leader
                for name, info in snapshot.topics.items()
                for p in info.partitions
                if p.leader >= 0
            }
        return self._leaders.get

    def _can_send_to(self, node: int) -> bool:
        if self._inflight.get(node, 0) >= self._max_in_flight:
            return False
        if self._pool.is_connected(node):
            return True
        if node not in self._connecting:
            self._connecting.add(node)
            assert self._tg is not None
            self._tg.start_soon(self._connect, node)
        return False

    async def _connect(self, node: int) -> None:
        try:
            await self._pool.get(node)  # honours the node's reconnect backoff
        except KafkaError as exc:
            log.debug("producer cannot reach node %d: %s", node, exc)
            self._metadata.request_update()
        finally:
            self._connecting.discard(node)
            self.wake()

    # -- produce ------------------------------------------------------------------------

    def _build_request(self, batches: Iterable[ProducerBatch]) -> ProduceRequest:
        topics: dict[str, list[PartitionProduceData]] = {}
        encoder, transactional = self._encoder, self._txn is not None
        for batch in batches:
            records = batch.build(encoder, transactional=transactional)
            data = PartitionProduceData(index=batch.partition, records=records)
            topics.setdefault(batch.topic, []).append(data)
        return ProduceRequest(
            transactional_id=self._config.transactional_id,
            acks=self._acks,
            timeout_ms=self._timeout_ms,
            topic_data=[TopicProduceData(name=t, partition_data=p) for t, p in topics.items()],
        )

    async def _send(self, node: int, batches: list[ProducerBatch]) -> None:
        request = self._build_request(batches)
        generation = self._generation
        try:
            if not self._pool.is_connected(node):
                # Closed while earlier requests were written: never connect inline here.
                raise KafkaConnectionError(f"node {node} disconnected", request_sent=False)
            conn = await self._pool.get(node)  # connected: returns without waiting
            assert conn.versions is not None
            version = conn.versions.version_for(ProduceRequest)
            if self._acks == 0:
                await _wire.send_and_forget(conn, request, version)
            else:
                waiter = await _wire.write_request(conn, request, version)
        except KafkaError as exc:
            sent = isinstance(exc, KafkaConnectionError) and exc.request_sent is False
            self._on_failure(batches, NOT_SENT if sent else NO_RESPONSE, exc)
            return
        if self._acks == 0:
            for batch in batches:
                self._apply(batch, self._idem.handle_produce_result(batch, 0, self._clock()), -1)
            return
        self._inflight[node] = self._inflight.get(node, 0) + 1
        assert self._tg is not None
        self._tg.start_soon(self._await_response, node, conn, waiter, batches, generation)

    async def _await_response(
        self, node: int, conn: Any, waiter: Any, batches: list[ProducerBatch], generation: int
    ) -> None:
        response: Response | KafkaError
        try:
            response = await _wire.wait_response(conn, waiter, self._timeout_ms)
        except KafkaError as exc:
            response = exc
        finally:
            self._inflight[node] -= 1
        if generation == self._generation:
            if isinstance(response, ProduceResponse):
                self._on_response(batches, response)
            else:
                assert isinstance(response, KafkaError)
                self._on_failure(batches, NO_RESPONSE, response)
        self.wake()

    def _on_failure(self, batches: list[ProducerBatch], code: int, exc: KafkaError) -> None:
        log.debug("produce request failed (%s): %s", "not sent" if code == NOT_SENT else "", exc)
        self._metadata.request_update()
        now = self._clock()
        for batch in batches:
            self._apply(batch, self._idem.handle_produce_result(batch, code, now), -1)

    def _on_response(self, batches: list[ProducerBatch], response: ProduceResponse) -> None:
        results: dict[TP, PartitionProduceResponse] = {}
        for topic in response.responses:
            for part in topic.partition_responses:
                results[(topic.name, part.index)] = part
        now = self._clock()
        for batch in batches:
            found = results.get(batch.tp)
            if found is None:
                # A partition the broker did not answer for: unknown outcome, never success.
                decision = self._idem.handle_produce_result(batch, NO_RESPONSE, now)
                self._apply(batch, decision, -1)
                continue
            decision = self._idem.handle_produce_result(batch, found.error_code, now)
            self._apply(batch, decision, found.base_offset, found.log_append_time_ms)

    def _apply(
        self, batch: ProducerBatch, decision: Decision, base_offset: int, append_time: int = -1
    ) -> None:
        action, acc = decision.action, self._acc
        if action is Action.COMPLETE:
            # DUPLICATE_SEQUENCE_NUMBER carries the original offset on brokers that
            # know it (the mock); others answer -1, reported as offset -1.
            implicit = decision.error_code not in (0, 46)
            acc.complete(batch, -1 if implicit or base_offset < 0 else base_offset, append_time)
        elif action is Action.RETRY or action is Action.BUMP_EPOCH_AND_RETRY:
            acc.requeue(batch, self._clock())
        elif action is Action.SPLIT:
            acc.split(batch, self._clock())
        elif action is Action.IGNORE:
            acc.release(batch)
        else:
            state = decision.final_state or DeliveryState.POSSIBLY_PERSISTED
            error = delivery_error(decision.error_code or -1, state, batch)
            acc.fail(batch, error, state)
            if action is Action.FATAL:
                self._fail_fatally(error)
        if decision.refresh_metadata:
            self._metadata.request_update()
        if self._txn is not None and action in _TXN_FAILURES:
            self._txn_record_failed(decision.error_code or -1, action is not Action.FAIL)

    def _expire(self, now: float) -> None:
        timeout = self._config.delivery_timeout_ms

        def factory(batch: ProducerBatch, state: DeliveryState) -> BaseException:
            return DeliveryTimeoutError(
                f"{batch.record_count} record(s) for {batch.topic}-{batch.partition} not "
                f"acknowledged within delivery_timeout_ms={timeout}",
                state,
            )

        for batch in self._acc.expire(now, factory):
            decision = self._idem.handle_expired(batch)
            if self._txn is not None:
                bump = decision.action is Action.BUMP_EPOCH_AND_FAIL
                self._txn_record_failed(RECORD_EXPIRED, bump)

    def _fail_fatally(self, error: BaseException) -> None:
        if self.fatal_error is None:
            self.fatal_error = error
            log.error("producer failed fatally: %s", error)
            if isinstance(error, KafkaError) and hasattr(error, "errno"):
                self._idem.fail_fatally(int(error.errno))
            self.abort(error)

    # -- transactions (docs/design-notes/transactions.md) --------------------------------

    def _step_transactions(self, now: float) -> None:
        txn, driver, acc = self._txn, self.txn_driver, self._acc
        assert txn is not None and driver is not None and self._tg is not None
        if not txn.accepts_records and acc.has_queued:  # aborting (by EndTxn or a bump)
            for batch in acc.fail_queued(self._aborted_error):
                if self._idem.handle_expired(batch).action is Action.BUMP_EPOCH_AND_FAIL:
                    txn.request_bump()  # a sequence hole: the abort must bump the epoch
        if self.fatal_error is None:
            pending = acc.in_flight_count > 0 or acc.has_queued
            self._txn_deadline = driver.step(self._tg, now, records_pending=pending)

    def _held(self, leader_for: Callable[[TP], int | None]) -> Callable[[TP], int | None]:
        """``leader_for`` that hides partitions not yet added to the transaction."""
        added = self._txn.partition_ready if self._txn is not None else None
        assert added is not None

        def lookup(tp: TP) -> int | None:
            leader = leader_for(tp)
            return leader if leader is None or added(tp) else _HELD

        return lookup

    def _txn_record_failed(self, code: int, bump: bool) -> None:
        txn, driver = self._txn, self.txn_driver
        assert txn is not None and driver is not None
        txn.on_record_failed(code)
        if bump:
            txn.request_bump()
        error = txn.fatal_error()
        if error is not None:
            self._fail_fatally(error)
        driver.signal()  # a commit waiting for its records now fails

    def _on_producer_id(self, producer_id: int, epoch: int) -> None:
        """The transaction coordinator gave a (new) id/epoch: sequences restart."""
        self._idem.adopt_producer_id(producer_id, epoch)
        self._acc.reset_producer_state(self._reset_error)

    @staticmethod
    def _aborted_error(batch: ProducerBatch, state: DeliveryState) -> BaseException:
        return TransactionAbortedError(
            f"the transaction was aborted before {batch.topic}-{batch.partition} was sent",
            state,
        )

    # -- producer id ----------------------------------------------------------------------

    def _init_node(self) -> int:
        """A broker for InitProducerId (any broker serves an idempotent producer)."""
        known = sorted(self._metadata.snapshot.brokers)
        connected = [n for n in known if self._pool.is_connected(n)]
        if connected:
            return connected[0]
        return known[0] if known else self._pool.bootstrap[0].node_id

    async def _init_producer_id(self) -> None:
        wait = self._init_backoff.remaining_ms(self._clock())
        if wait > 0:
            await self._sleep(wait)
            return
        pid, epoch = self._idem.begin_init()
        try:
            conn = await self._pool.get(self._init_node())
            assert conn.versions is not None
            version = conn.versions.version_for(InitProducerIdRequest)
            if pid >= 0 and (version < _MIN_BUMP_VERSION or not self._bump_supported):
                pid, epoch = -1, -1  # no KIP-360 here: a fresh producer id resets all the same
            request = InitProducerIdRequest(
                transactional_id=None,
                transaction_timeout_ms=self._config.transaction_timeout_ms,
                producer_id=pid,
                producer_epoch=epoch,
            )
            response = await conn.request(request, version=version)
        except KafkaError as exc:
            self._init_failed(-1, retriable=exc.retriable, detail=str(exc), error=exc)
            return
        assert isinstance(response, InitProducerIdResponse)
        self._init_done(response, bumping=pid >= 0)

    def _init_done(self, response: InitProducerIdResponse, *, bumping: bool) -> None:
        code = response.error_code
        if code == 0:
            self._init_backoff.record_success()
            self._idem.on_init_success(response.producer_id, response.producer_epoch)
            self._acc.reset_producer_state(self._reset_error)
            log.debug("producer id %d epoch %d", response.producer_id, response.producer_epoch)
            self.wake()
            return
        retriable = error_for_code(code).retriable
        if bumping and not retriable:
            # The broker does not take KIP-360 bumps (Tansu 0.6: UNKNOWN_SERVER_ERROR):
            # ask for a fresh producer id instead, right away.
            log.info("InitProducerId epoch bump refused (error %d); using a new id", code)
            self._bump_supported = False
            self._idem.on_init_failure(code, fatal=False)
            return
        self._init_failed(code, retriable=retriable, detail=f"error code {code}")

    def _init_failed(
        self, code: int, *, retriable: bool, detail: str, error: KafkaError | None = None
    ) -> None:
        log.info("InitProducerId failed: %s", detail)
        self._idem.on_init_failure(code, fatal=not retriable)
        if retriable:
            self._init_backoff.record_failure(self._clock(), 0.5)
            self._metadata.request_update()
        else:
            self._fail_fatally(error or error_for_code(code)(f"InitProducerId failed: {detail}"))

    @staticmethod
    def _reset_error(batch: ProducerBatch, state: DeliveryState) -> BaseException:
        return delivery_error(47, state, batch)  # INVALID_PRODUCER_EPOCH: its epoch is gone
