"""``GroupTransactSession``: the blocking twin of
:class:`~kclient.eos.session.AsyncGroupTransactSession`.

    with Consumer(group_id="copy", isolation_level="read_committed",
                  enable_auto_commit=False, ...) as consumer, \\
         Producer(transactional_id="copy-1", ...) as producer, \\
         GroupTransactSession(consumer, producer) as session:
        consumer.subscribe(["in"])
        while True:
            for tp, records in session.getmany(timeout_ms=500).items():
                for r in records:
                    producer.send("out", r.value, key=r.key)
            session.commit()

Every method forwards to the async session's method of the same name through the
shared portal; the async session drives the async twins of ``consumer`` and
``producer`` (which live on that portal). Leaving the ``with`` block aborts an open
transaction. ``run(transform)`` calls ``transform`` in a worker thread (not on the
portal's loop thread), so it may use the sync producer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio.to_thread

from kclient.eos.session import AsyncGroupTransactSession, Batches, StopSignal
from kclient.structs import TopicPartition
from kclient.sync._portal import PortalClient
from kclient.sync.consumer import Consumer
from kclient.sync.producer import Producer

__all__ = ["GroupTransactSession"]

K = TypeVar("K")
V = TypeVar("V")


class GroupTransactSession(PortalClient[AsyncGroupTransactSession[K, V]], Generic[K, V]):
    """``with GroupTransactSession(consumer, producer) as session:`` (sync clients)."""

    _async_name = "AsyncGroupTransactSession"

    def __init__(
        self,
        consumer: Consumer[K, V],
        producer: Producer,
        *,
        end_timeout_ms: float | None = None,
    ) -> None:
        if not isinstance(consumer, Consumer):
            raise TypeError(f"consumer must be a sync Consumer, got {type(consumer).__name__}")
        if not isinstance(producer, Producer):
            raise TypeError(f"producer must be a sync Producer, got {type(producer).__name__}")
        self._open(
            functools.partial(
                AsyncGroupTransactSession[K, V],
                consumer._impl,
                producer._impl,
                end_timeout_ms=end_timeout_ms,
            )
        )

    @property
    def in_transaction(self) -> bool:
        return self._impl.in_transaction

    @property
    def committed_transactions(self) -> int:
        return self._impl.committed_transactions

    @property
    def aborted_transactions(self) -> int:
        return self._impl.aborted_transactions

    def getmany(
        self, *partitions: TopicPartition, timeout_ms: float = 0, max_records: int | None = None
    ) -> Batches[K, V]:
        return self._call(
            self._impl.getmany, *partitions, timeout_ms=timeout_ms, max_records=max_records
        )

    def commit(self) -> bool:
        return self._call(self._impl.commit)

    def abort(self) -> None:
        return self._call(self._impl.abort)

    def run(
        self,
        transform: Callable[[Batches[K, V]], object],
        *,
        timeout_ms: float = 500,
        max_records: int | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        """The async ``run`` loop; ``stop`` (e.g. a ``threading.Event``) is checked
        before each poll."""

        async def in_thread(batches: Batches[K, V]) -> object:
            return await anyio.to_thread.run_sync(transform, batches)

        return self._call(self._impl.run, in_thread, timeout_ms=timeout_ms,
                          max_records=max_records, stop=stop)  # fmt: skip
