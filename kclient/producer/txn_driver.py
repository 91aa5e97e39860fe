"""The transactional requests' I/O: what the Sender does for a TransactionManager.

The Sender calls :meth:`TxnDriver.step` once per loop. ``step`` asks the pure
:class:`~kclient.producer.transactions.TransactionManager` for its next request
(one at a time) and, when there is one, starts a task that sends it and hands the
answer to the matching ``handle_*``. Everything the answer means is decided there;
this module only routes and translates:

* FindCoordinator goes to any broker (connected ones first, then one not in
  reconnect backoff, rotating so a dead broker is not asked forever); the rest go
  to the coordinator the manager names (the group coordinator for TxnOffsetCommit).
* A request that surely never left (no connection) is answered for the manager as
  COORDINATOR_NOT_AVAILABLE: it forgets the coordinator, backs off and finds it
  again. A request written but not answered (timeout, connection lost) is answered
  as NO_RESPONSE: an EndTxn(commit) then has an unknown outcome (T2).
* InitProducerId carrying the current id/epoch (KIP-360) that the broker refuses as
  unknown (Tansu answers UNKNOWN_SERVER_ERROR) is sent again at once asking for a
  fresh id; later re-initialisations ask for a fresh id directly.

After each answer the driver reports a new producer id/epoch to the Sender (the
idempotence layer restarts sequences), a fatal state (the Sender fails every
batch), and wakes whoever waits on :attr:`changed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.abc

from kclient.cluster.refresher import MetadataManager
from kclient.errors import KafkaConnectionError, KafkaError, UnsupportedVersionForApiError
from kclient.net.connection import BrokerConnection
from kclient.net.pool import ConnectionPool
from kclient.producer.idempotence import NO_RESPONSE
from kclient.producer.transactions import TransactionManager
from kclient.producer.txn_plans import (
    AddOffsetsPlan,
    AddPartitionsPlan,
    EndTxnPlan,
    FindCoordinatorPlan,
    InitProducerIdPlan,
    TxnAction,
    TxnDecision,
    TxnOffsetCommitPlan,
    TxnRequest,
)
from kclient.producer.txn_requests import (
    MAX_VERSIONS,
    MIN_BUMP_VERSION,
    MIN_VERSIONS,
    Coordinator,
    build_request,
    coordinator_of,
    offset_commit_codes,
    partition_codes,
    request_class,
)
from protocol.api import Response
from protocol.messages.add_offsets_to_txn import AddOffsetsToTxnResponse
from protocol.messages.add_partitions_to_txn import AddPartitionsToTxnResponse
from protocol.messages.end_txn import EndTxnResponse
from protocol.messages.find_coordinator import FindCoordinatorResponse
from protocol.messages.init_producer_id import InitProducerIdResponse
from protocol.messages.txn_offset_commit import TxnOffsetCommitResponse

__all__ = ["TxnDriver"]

log = logging.getLogger("kclient.producer.transactions")

_COORDINATOR_NOT_AVAILABLE = 15
_UNSUPPORTED_VERSION = 35
# InitProducerId answers that mean "no KIP-360 bump here" rather than a real failure.
_BUMP_REFUSED = frozenset({-1, 42, _UNSUPPORTED_VERSION})

# What came back: a response, or a pseudo code for a request without one.
Answer = Response | int


class TxnDriver:
    """Sends the manager's requests; one at a time, each in its own small task."""

    def __init__(
        self,
        manager: TransactionManager,
        pool: ConnectionPool,
        metadata: MetadataManager,
        *,
        request_timeout_ms: float,
        clock: Callable[[], float],
        on_producer_id: Callable[[int, int], None],
        on_fatal: Callable[[BaseException], None],
        wake: Callable[[], None],
    ) -> None:
        self.manager = manager
        self._pool = pool
        self._metadata = metadata
        self._timeout_ms = request_timeout_ms
        self._clock = clock
        self._on_producer_id = on_producer_id
        self._on_fatal = on_fatal
        self._wake = wake
        self._bump_supported = True
        self._rotation = 0
        self.changed = anyio.Event()  # set (and replaced) after every answer

    def signal(self) -> None:
        """Wake the facade's waiters (after an answer or a local state change)."""
        self.changed.set()
        self.changed = anyio.Event()

    def step(self, tg: anyio.abc.TaskGroup, now: float, *, records_pending: bool) -> float | None:
        """Start the next transactional request if one is due. Returns the absolute
        time (ms) to call again when nothing else wakes the Sender, or None."""
        polled = self.manager.poll(now, records_pending=records_pending)
        if polled.request is not None:
            tg.start_soon(self._exchange, polled.request)
        return polled.next_deadline_ms

    # -- one exchange -------------------------------------------------------------------

    async def _exchange(self, plan: TxnRequest) -> None:
        answer = await self._roundtrip(plan, bump=self._bump_supported)
        if self._bump_refused(plan, answer):
            log.info("InitProducerId epoch bump refused; asking for a fresh producer id")
            self._bump_supported = False
            answer = await self._roundtrip(plan, bump=False)
        decision = self._handle(plan, answer)
        if decision.action is not TxnAction.DONE and decision.action is not TxnAction.IGNORED:
            log.debug("%s answered %d: %s", type(plan).__name__, decision.error_code,
                      decision.action.value)  # fmt: skip
        if decision.action is TxnAction.FATAL:
            error = self.manager.fatal_error()
            if error is not None:
                self._on_fatal(error)
        self.signal()
        self._wake()

    def _bump_refused(self, plan: TxnRequest, answer: Answer) -> bool:
        return (
            isinstance(plan, InitProducerIdPlan)
            and plan.producer_id >= 0
            and isinstance(answer, InitProducerIdResponse)
            and answer.error_code in _BUMP_REFUSED
        )

    async def _roundtrip(self, plan: TxnRequest, *, bump: bool) -> Answer:
        node = self._any_node() if isinstance(plan, FindCoordinatorPlan) else plan.node_id
        cls = request_class(plan)
        try:
            conn = await self._pool.get(node)
            assert conn.versions is not None
            version = conn.versions.version_for(
                cls, min_version=MIN_VERSIONS.get(cls), max_version=MAX_VERSIONS.get(cls)
            )
        except UnsupportedVersionForApiError:
            return _UNSUPPORTED_VERSION
        except KafkaError as exc:
            log.debug("%s not sent to node %d: %s", cls.__name__, node, exc)
            self._metadata.request_update()
            return _COORDINATOR_NOT_AVAILABLE
        if isinstance(plan, InitProducerIdPlan) and version < MIN_BUMP_VERSION:
            bump = False
        return await self._send(conn, plan, version, bump)

    async def _send(
        self, conn: BrokerConnection, plan: TxnRequest, version: int, bump: bool
    ) -> Answer:
        request = build_request(plan, version, bump=bump)
        try:
            return await conn.request(request, version=version, timeout_ms=self._timeout_ms)
        except KafkaError as exc:
            self._metadata.request_update()
            if isinstance(exc, KafkaConnectionError) and exc.request_sent is False:
                return _COORDINATOR_NOT_AVAILABLE
            log.debug("%s got no answer: %s", type(request).__name__, exc)
            return NO_RESPONSE

    def _any_node(self) -> int:
        known = sorted(self._metadata.snapshot.brokers)
        if not known:
            return self._pool.bootstrap[0].node_id
        connected = [n for n in known if self._pool.is_connected(n)]
        if connected:
            return connected[0]
        now = self._clock()
        usable = [n for n in known if self._pool.backoff_remaining_ms(n, now) <= 0] or known
        self._rotation += 1
        return usable[self._rotation % len(usable)]

    # -- answers to the manager ----------------------------------------------------------

    def _handle(self, plan: TxnRequest, answer: Answer) -> TxnDecision:
        m, now = self.manager, self._clock()
        if isinstance(plan, FindCoordinatorPlan):
            found = Coordinator(answer) if isinstance(answer, int) else None
            if found is None:
                assert isinstance(answer, FindCoordinatorResponse)
                found = coordinator_of(plan, answer)
            if found.error_code == 0:
                self._pool.update_brokers({found.node_id: (found.host, found.port)})
            return m.handle_find_coordinator(plan, found.error_code, found.node_id, now)
        if isinstance(plan, InitProducerIdPlan):
            return self._handle_init(plan, answer, now)
        if isinstance(plan, AddPartitionsPlan):
            if isinstance(answer, int):
                return m.handle_add_partitions(plan, {tp: answer for tp in plan.partitions}, now)
            assert isinstance(answer, AddPartitionsToTxnResponse)
            return m.handle_add_partitions(plan, partition_codes(answer), now, answer.error_code)
        if isinstance(plan, TxnOffsetCommitPlan):
            if isinstance(answer, int):
                codes = {tp: answer for tp, _ in plan.offsets}
            else:
                assert isinstance(answer, TxnOffsetCommitResponse)
                codes = offset_commit_codes(answer)
            return m.handle_txn_offset_commit(plan, codes, now)
        if isinstance(plan, AddOffsetsPlan):
            code = answer if isinstance(answer, int) else _code(answer, AddOffsetsToTxnResponse)
            return m.handle_add_offsets(plan, code, now)
        assert isinstance(plan, EndTxnPlan)
        code = answer if isinstance(answer, int) else _code(answer, EndTxnResponse)
        return m.handle_end_txn(plan, code, now)

    def _handle_init(self, plan: InitProducerIdPlan, answer: Answer, now: float) -> TxnDecision:
        if isinstance(answer, int):
            return self.manager.handle_init_producer_id(plan, answer, -1, -1, now)
        assert isinstance(answer, InitProducerIdResponse)
        decision = self.manager.handle_init_producer_id(
            plan, answer.error_code, answer.producer_id, answer.producer_epoch, now
        )
        if decision.action is TxnAction.DONE:
            log.debug("transactional producer id %d epoch %d",
                      answer.producer_id, answer.producer_epoch)  # fmt: skip
            self._on_producer_id(answer.producer_id, answer.producer_epoch)
        return decision


def _code(response: Response, cls: type[AddOffsetsToTxnResponse | EndTxnResponse]) -> int:
    assert isinstance(response, cls)
    return response.error_code
