"""Exactly-once consume-transform-produce: a consumer group tied to a transactional producer.

    async with AsyncGroupTransactSession(consumer, producer) as session:
        while True:
            batches = await session.getmany(timeout_ms=500)   # a transaction is open
            for tp, records in batches.items():
                for r in records:
                    await producer.send("out", transform(r.value), key=r.key)
            committed = await session.commit()   # offsets + EndTxn(commit), or abort+rewind

or ``await session.run(transform_batch)`` for that loop.

Theory of operation. The session opens a transaction before it hands out records (an
empty transaction costs nothing on the wire: the producer registers partitions only
when a record is sent, and ends an empty transaction locally). ``commit()`` asks the
pure :class:`~kclient.eos.state.SessionState` whether the transaction may commit: not
if an abortable error doomed it, nor if the consumer's generation or member id changed
since its first records were handed out, nor if one of its partitions is no longer
assigned. Then it sends the offsets of what was handed out with the group's identity
(TxnOffsetCommit, KIP-447: the group coordinator rejects a member of an older
generation) and commits; otherwise it aborts and *rewinds*: every consumed partition
still assigned is sought back to the group's committed offset (the first offset handed
out in the transaction when the group has none), so the aborted input is read again.

Rebalances wait for the transaction. The consumer runs a revocation (and its
listener) inside the application's next poll, holding its JoinGroup until then; in the
poll-produce-commit loop that poll comes after the commit, so an eager rebalance never
interrupts a transaction: its TxnOffsetCommit still carries the valid generation.
A transaction that spans polls can see a rebalance complete in the middle; it aborts.
A membership lost in the background (session timeout, max.poll.interval) changes the
generation, so the commit aborts too; if the loss happens after the offsets were
accepted, the new owner's OffsetFetch (require_stable) waits for our EndTxn.

Errors. An abortable error (a failed record, a fenced generation on TxnOffsetCommit)
aborts, rewinds and makes ``commit()`` return False. An unknown EndTxn outcome is
settled by the abort (the producer re-initialises its id, which makes the coordinator
finish the transaction) before the rewind reads the committed offsets, which then say
what happened. A fatal error (fenced producer) is raised and the session is unusable
afterwards. Cancellation aborts the open transaction (shielded, bounded by the
producer's ``max_block_ms``), so a restart resumes at the last committed transaction;
a commit already under way is waited for instead, since it cannot be withdrawn.

All I/O is here; every decision is in ``state.py``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import anyio

from kclient.config import ConsumerConfig, ProducerConfig
from kclient.consumer.consumer import AsyncConsumer
from kclient.eos.state import EndDecision, GroupIdentity, Phase, SessionState
from kclient.errors import (
    ConfigError,
    IllegalStateError,
    KafkaError,
    TransactionAbortableError,
    TransactionFatalError,
    TransactionOutcomeUnknownError,
)
from kclient.producer.producer import AsyncProducer
from kclient.structs import ConsumerRecord, TopicPartition

__all__ = ["AsyncGroupTransactSession", "Batches", "StopSignal", "check_configs"]

log = logging.getLogger("kclient.eos")

K = TypeVar("K")
V = TypeVar("V")
Batches = dict[TopicPartition, list[ConsumerRecord[K, V]]]


class StopSignal(Protocol):
    """What ``run(stop=...)`` checks before each poll: ``anyio.Event``,
    ``threading.Event``, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


def check_configs(consumer: ConsumerConfig, producer: ProducerConfig) -> None:
    """Raise :class:`ConfigError` naming the key when the pair cannot give exactly-once."""
    if consumer.group_id is None:
        raise ConfigError("group_id", "the session commits offsets for a group: set group_id")
    if consumer.enable_auto_commit:
        raise ConfigError(
            "enable_auto_commit",
            "must be False: offsets are committed inside the transactions, and an "
            "auto-commit outside them would skip input whose transaction aborts",
        )
    if consumer.isolation_level != "read_committed":
        raise ConfigError(
            "isolation_level",
            "must be 'read_committed': under read_uncommitted the session would copy "
            "records of aborted upstream transactions",
        )
    if producer.transactional_id is None:
        raise ConfigError("transactional_id", "the producer must be transactional")


class AsyncGroupTransactSession(Generic[K, V]):
    """See the module docstring. Use it in ``async with``; one task at a time."""

    def __init__(
        self,
        consumer: AsyncConsumer[K, V],
        producer: AsyncProducer,
        *,
        end_timeout_ms: float | None = None,
    ) -> None:
        if not isinstance(consumer, AsyncConsumer):
            raise TypeError(f"consumer must be an AsyncConsumer, got {type(consumer).__name__}")
        if not isinstance(producer, AsyncProducer):
            raise TypeError(f"producer must be an AsyncProducer, got {type(producer).__name__}")
        check_configs(consumer.config, producer.config)
        self.consumer = consumer
        self.producer = producer
        limit = producer.config.max_block_ms if end_timeout_ms is None else end_timeout_ms
        if limit <= 0:
            raise ValueError("end_timeout_ms must be > 0")
        # Bound on the shielded abort (or commit) that runs when the task is cancelled.
        self._end_timeout_s = limit / 1000
        self._state = SessionState()
        self._entered = False
        self._closed = False
        self.committed_transactions = 0  # transactions this session committed
        self.aborted_transactions = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncGroupTransactSession[K, V]:
        if self._entered:
            raise IllegalStateError("the session can be entered once")
        self._entered = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """An open transaction is aborted: nothing commits without ``commit()``."""
        if self._closed:
            return
        self._closed = True
        if self._state.fatal is not None or self._state.phase is Phase.IDLE:
            return
        reason = (
            "the session closed"
            if exc_type is None
            else f"the session ended by {exc_type.__name__}"
        )
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._end_timeout_s):
            try:
                await self._end_quietly(reason)
            except KafkaError as error:
                log.warning("ending the open transaction (%s) failed: %s", reason, error)

    @property
    def in_transaction(self) -> bool:
        return self._state.phase is not Phase.IDLE

    def _check(self) -> SessionState:
        state = self._state
        if state.fatal is not None:
            raise state.fatal
        if self._closed:
            raise IllegalStateError("the session is closed")
        if not self._entered:
            raise IllegalStateError("use the session in `async with`")
        return state

    def _identity(self) -> GroupIdentity:
        gm = self.consumer.group_metadata()
        return gm.generation_id, gm.member_id

    def _fail(self, error: TransactionFatalError) -> None:
        self._state.failed(error)
        self._closed = True

    # -- polling ---------------------------------------------------------------------------

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: float = 0, max_records: int | None = None
    ) -> Batches[K, V]:
        """``AsyncConsumer.getmany`` inside the transaction: opens one first if none is,
        and finishes a pending abort and rewind before handing anything out."""
        state = self._check()
        await self._settle()
        if state.phase is Phase.IDLE:
            try:
                await self.producer.begin_transaction()
            except TransactionFatalError as error:
                self._fail(error)
                raise
            state.begun()
        got = await self.consumer.getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        if got:
            # No await between the poll's return and this: the identity is the one the
            # records were handed out under.
            spans = {tp: (rs[0].offset, rs[-1].offset) for tp, rs in got.items() if rs}
            state.handed_out(spans, self._identity())
        return got

    async def _settle(self) -> None:
        """Finish what an earlier call left undone: an abort, then a rewind."""
        state = self._state
        if state.phase is Phase.ENDING:
            decision = state.decision
            assert decision is not None
            if decision.commit and state.doomed is None:
                raise IllegalStateError(
                    "an earlier commit() did not finish; call commit() (or abort()) again"
                )
            # An abort decided earlier (or a commit doomed on the way) whose abort failed.
            await self._abort(state.doomed or decision.reason)
        await self._rewind()

    # -- ending ----------------------------------------------------------------------------

    async def commit(self) -> bool:
        """Commit the offsets of every record handed out in this transaction together
        with what was produced. Returns False when the transaction was aborted instead
        (a rebalance or lost membership moved the group, or an abortable error): its
        input was rewound and will be handed out again. True also when no transaction
        was open. Raises fatal errors, and errors that leave the end undecided (a
        timeout): call ``commit()`` or ``abort()`` again then."""
        state = self._check()
        if state.phase is Phase.IDLE:
            await self._rewind()
            return True
        decision = state.decide_end(self._identity(), self.consumer.assignment(), commit=True)
        if not decision.commit:
            await self._abort(decision.reason)
            return False
        try:
            await self._commit(decision)
        except TransactionFatalError as error:
            self._fail(error)
            raise
        except TransactionOutcomeUnknownError as error:
            state.doom(f"the commit's outcome is unknown ({error})")
        except TransactionAbortableError as error:
            state.doom(f"abortable error: {error}")
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._end_timeout_s):
                try:
                    await self._end_quietly("the task was cancelled")
                except KafkaError as error:
                    log.warning("ending the transaction after cancellation failed: %s", error)
            raise
        if state.doomed is not None:
            await self._abort(state.doomed)
            return False
        state.ended(committed=True)
        self.committed_transactions += 1
        return True

    async def _commit(self, decision: EndDecision) -> None:
        state = self._state
        if decision.offsets and not state.offsets_sent:
            await self.producer.send_offsets_to_transaction(
                decision.offsets, self.consumer.group_metadata()
            )
            state.offsets_sent = True
        state.commit_started = True
        await self.producer.commit_transaction()

    async def abort(self) -> None:
        """Abort the open transaction and rewind its input (e.g. after the application's
        own processing failed mid-batch: the partial output must not commit)."""
        state = self._check()
        if state.phase is not Phase.IDLE:
            decision = state.decide_end(self._identity(), self.consumer.assignment(), commit=False)
            await self._abort(decision.reason)
        await self._rewind()

    async def _abort(self, reason: str, *, rewind: bool = True) -> None:
        log.info("aborting the transaction: %s", reason)
        try:
            await self.producer.abort_transaction()
        except TransactionFatalError as error:
            self._fail(error)
            raise
        self._state.ended(committed=False)
        self.aborted_transactions += 1
        if rewind:
            await self._rewind()

    async def _end_quietly(self, reason: str) -> None:
        """End the open transaction when the session stops (closing or cancelled): a
        commit already started is waited for; anything else aborts. No rewind: nothing
        more is handed out."""
        state = self._state
        if state.phase is Phase.IDLE:
            return
        if state.commit_started and state.doomed is None:
            try:
                await self.producer.commit_transaction()
            except TransactionAbortableError as error:
                state.doom(str(error))
            else:
                state.ended(committed=True)
                self.committed_transactions += 1
                return
        await self._abort(reason, rewind=False)

    async def _rewind(self) -> None:
        """Seek the aborted transaction's partitions back to the committed offsets."""
        plan = self._state.rewind_plan()
        if plan is None:
            return
        asked = [tp for tp in plan if tp in self.consumer.assignment()]
        committed = await self.consumer.committed_offsets(*asked) if asked else {}
        assigned = self.consumer.assignment()  # it may have changed during the lookup
        for tp in asked:
            if tp in assigned:
                found = committed.get(tp)
                self.consumer.seek(tp, plan[tp] if found is None else found.offset)
        # Partitions no longer assigned need nothing: a new owner (or this consumer,
        # assigned them again) starts at the committed offset.
        self._state.rewound(plan)

    # -- the loop --------------------------------------------------------------------------

    async def run(
        self,
        transform: Callable[[Batches[K, V]], Awaitable[object] | object],
        *,
        timeout_ms: float = 500,
        max_records: int | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        """Poll, ``transform(batches)`` (which sends with ``session.producer``; plain or
        ``async``), commit; until ``stop`` is set (or forever). An abortable error from
        the transform aborts and rewinds, and the loop goes on; any other error aborts
        and is raised."""
        while stop is None or not stop.is_set():
            batches = await self.getmany(timeout_ms=timeout_ms, max_records=max_records)
            if not batches:
                continue
            try:
                result = transform(batches)
                if inspect.isawaitable(result):
                    await result
            except TransactionFatalError as error:
                self._fail(error)
                raise
            except TransactionAbortableError as error:
                log.info("transform hit an abortable error: %s", error)
                self._state.doom(f"abortable error: {error}")
                await self.abort()
                continue
            except BaseException as error:
                await self._abort_after(error)
                raise
            await self.commit()

    async def _abort_after(self, error: BaseException) -> None:
        cancelled = isinstance(error, anyio.get_cancelled_exc_class())
        with anyio.CancelScope(shield=cancelled), anyio.move_on_after(self._end_timeout_s):
            try:
                await self._abort(f"the transform raised {error!r}", rewind=not cancelled)
            except KafkaError as failed:
                log.warning("aborting after %r failed: %s", error, failed)
