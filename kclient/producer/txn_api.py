"""The transactional half of :class:`~kclient.producer.producer.AsyncProducer`.

    async with AsyncProducer(bootstrap_servers=..., transactional_id="copier-1") as producer:
        async with producer.transaction():      # begin; commit on success, abort on error
            await producer.send("out", b"v")
            await producer.send_offsets_to_transaction(offsets, consumer.group_metadata())

Each call changes the pure :class:`TransactionManager` at once (a refused call raises
there and then: commit without begin, begin twice, anything after a fatal error) and
waits for the :class:`TxnOperation` it returns; the Sender's :class:`TxnDriver` does the
requests. Waiting is bounded by ``max_block_ms``: a :class:`KafkaTimeoutError` leaves the
operation running, and calling the same method again keeps waiting for it (the Java
client's rule), instead of being refused as "already committing".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio

from kclient.config import ProducerConfig
from kclient.errors import (
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    TransactionAbortableError,
    TransactionOutcomeUnknownError,
)
from kclient.producer.accumulator import RecordAccumulator
from kclient.producer.transactions import TransactionManager, TxnState
from kclient.producer.txn_plans import TxnOperation
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import OffsetAndMetadata, TopicPartition

if TYPE_CHECKING:
    from kclient.producer.sender import Sender

__all__ = ["AsyncProducerTransaction", "TransactionalProducer"]

log = logging.getLogger("kclient.producer.transactions")


def _offsets(
    offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
) -> dict[tuple[str, int], OffsetAndMetadata]:
    if not isinstance(offsets, Mapping):
        raise TypeError(f"offsets must be a mapping of TopicPartition to offset, got {offsets!r}")
    out: dict[tuple[str, int], OffsetAndMetadata] = {}
    for tp, value in offsets.items():
        if not (isinstance(tp, tuple) and len(tp) == 2):
            raise TypeError(f"offsets keys must be TopicPartition, got {tp!r}")
        topic, partition = tp
        if not isinstance(topic, str) or type(partition) is not int or partition < 0:
            raise ValueError(f"invalid partition {tp!r}")
        om = OffsetAndMetadata(value) if type(value) is int else value
        if not isinstance(om, OffsetAndMetadata) or type(om.offset) is not int or om.offset < 0:
            raise ValueError(f"offset for {tp!r} must be an int >= 0 or OffsetAndMetadata")
        out[TopicPartition(topic, partition)] = om
    return out


def _group(group_metadata: ConsumerGroupMetadata | str) -> ConsumerGroupMetadata:
    if isinstance(group_metadata, str):
        return ConsumerGroupMetadata(group_metadata)  # no generation: no KIP-447 fencing
    if not isinstance(group_metadata, ConsumerGroupMetadata):
        raise TypeError(
            "group_metadata must be ConsumerGroupMetadata (consumer.group_metadata()) or a "
            f"group id, got {type(group_metadata).__name__}"
        )
    return group_metadata


class TransactionalProducer:
    """Transaction methods mixed into AsyncProducer (which sets these attributes)."""

    config: ProducerConfig
    _txn: TransactionManager | None
    _sender: Sender | None
    _acc: RecordAccumulator
    _closed: bool
    _txn_ops: dict[str, TxnOperation]

    def _manager(self) -> TransactionManager:
        if self._txn is None:
            raise IllegalStateError("not a transactional producer: set transactional_id")
        if self._closed:
            raise IllegalStateError("the producer is closed")
        if self._sender is None:
            raise IllegalStateError("the producer is not started; use `async with` or start()")
        return self._txn

    async def init_transactions(self) -> None:
        """Get the producer id and epoch for ``transactional_id``, fencing older
        instances and aborting their open transaction. Runs on start; calling it
        again afterwards does nothing."""
        manager = self._manager()
        if "init" not in self._txn_ops and manager.state is not TxnState.UNINITIALIZED:
            error = manager.fatal_error()
            if error is not None:
                raise error
            return
        await self._wait(self._op("init", manager.init_transactions), "init")

    async def begin_transaction(self) -> None:
        """Start a transaction. After a commit whose outcome was unknown this first
        re-initialises the producer id (which settles the old transaction)."""
        await self._wait(self._op("begin", self._manager().begin_transaction), "begin")

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
        group_metadata: ConsumerGroupMetadata | str,
    ) -> None:
        """Commit the consumer's ``offsets`` (next offsets to read) as part of the
        transaction: AddOffsetsToTxn, then TxnOffsetCommit at the group coordinator
        with the group's generation and member id (a zombie is fenced, KIP-447)."""
        converted, group = _offsets(offsets), _group(group_metadata)
        manager = self._manager()
        pending = self._txn_ops.get("send_offsets")
        if pending is not None:  # a timed-out earlier call: let it finish first
            await self._wait(pending, "send_offsets")
        op = self._op("send_offsets", lambda: manager.send_offsets_to_transaction(converted, group))
        await self._wait(op, "send_offsets")

    async def commit_transaction(self) -> None:
        """Send everything queued, then commit. Raises :class:`TransactionAbortableError`
        (never success) if any record of the transaction failed or expired."""
        op = self._op("commit", self._manager().commit_transaction)
        self._acc.begin_flush()  # no lingering: the commit waits for these batches
        try:
            await self._wait(op, "commit")
        finally:
            self._acc.end_flush()

    async def abort_transaction(self) -> None:
        """Drop what is still queued, wait for what is in flight, and abort."""
        await self._wait(self._op("abort", self._manager().abort_transaction), "abort")

    def transaction(self) -> AsyncProducerTransaction:
        """``async with producer.transaction():`` begins; commits when the block ends,
        aborts (and re-raises) when it raises or is cancelled."""
        self._manager()
        return AsyncProducerTransaction(self)

    def _op(self, kind: str, start: Callable[[], TxnOperation]) -> TxnOperation:
        """The operation of ``kind`` still awaited by a timed-out call, else a new one
        (``start`` raises if the manager refuses). Finished operations nobody came
        back for are forgotten when a new one starts."""
        op = self._txn_ops.get(kind)
        if op is None:
            for stale in [k for k, o in self._txn_ops.items() if o.done]:
                del self._txn_ops[stale]
            op = self._txn_ops[kind] = start()
        return op

    async def _wait(self, op: TxnOperation, kind: str) -> None:
        sender = self._sender
        assert sender is not None and sender.txn_driver is not None
        driver = sender.txn_driver
        driver.signal()
        sender.wake()
        limit = self.config.max_block_ms
        with anyio.move_on_after(limit / 1000):
            while not op.done:
                await driver.changed.wait()
        if not op.done:
            raise KafkaTimeoutError(
                f"{kind} did not complete within max_block_ms={limit}; it goes on, and "
                "calling the same method again waits for it"
            )
        if self._txn_ops.get(kind) is op:
            del self._txn_ops[kind]
        if op.error is not None:
            raise op.error


class AsyncProducerTransaction:
    """The ``async with producer.transaction():`` block (see
    :meth:`TransactionalProducer.transaction`). Cleanup after an error or a cancellation
    is shielded and bounded by ``max_block_ms``."""

    def __init__(self, producer: TransactionalProducer) -> None:
        self._producer = producer
        self._timeout_s = producer.config.max_block_ms / 1000

    async def __aenter__(self) -> None:
        await self._producer.begin_transaction()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if exc_type is None:
            await self._commit()
            return False
        cancelled = issubclass(exc_type, anyio.get_cancelled_exc_class())
        await self._abort(shield=cancelled, reason=exc)
        return False  # re-raise

    async def _commit(self) -> None:
        try:
            await self._producer.commit_transaction()
        except TransactionOutcomeUnknownError:
            raise  # nothing to abort: the next begin re-initialises
        except TransactionAbortableError as exc:
            await self._abort(shield=False, reason=exc)
            raise
        except anyio.get_cancelled_exc_class():
            # The commit is under way and cannot be withdrawn: let it end (bounded),
            # then abort if it failed, so the producer is left ready for the next one.
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout_s):
                try:
                    await self._producer.commit_transaction()
                except TransactionAbortableError as failed:
                    await self._abort(shield=True, reason=failed)
                except KafkaError as failed:
                    log.warning("commit after cancellation failed: %s", failed)
            raise

    async def _abort(self, *, shield: bool, reason: BaseException | None) -> None:
        with anyio.CancelScope(shield=shield), anyio.move_on_after(self._timeout_s):
            try:
                await self._producer.abort_transaction()
            except KafkaError as failed:
                # The original error is what the caller must see; this one is logged.
                log.warning("aborting the transaction (after %r) failed: %s", reason, failed)
