"""``Producer``: the blocking twin of :class:`~kclient.producer.producer.AsyncProducer`.

Every method forwards to the async method of the same name and signature through the
shared portal (``_portal.py``). The producer starts in the constructor (the twin of
``AsyncProducer.start()``). ``send`` returns a ``concurrent.futures.Future`` of the
:class:`~kclient.structs.RecordMetadata`: ``.result(timeout)`` blocks for the delivery,
and callbacks added with ``add_done_callback`` run on the portal's event-loop thread
(they must not call this client). One ``send`` is one portal hop; ``send_many`` sends a
whole batch in one.

Transactions: the same methods as ``AsyncProducer`` (``begin_transaction``, ...), and
``with producer.transaction():`` whose enter and exit run the async block's
``__aenter__``/``__aexit__`` on the loop (commit on success, abort on an exception,
including a KeyboardInterrupt in the block).

``close(timeout)`` runs ``AsyncProducer.close(timeout)`` in the task that opened the
producer (its task group must be left there), so records accepted before a Ctrl-C are
still delivered when a ``with`` block exits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from kclient.config import ProducerConfig
from kclient.net.transport import Transport
from kclient.producer.batch import Headers
from kclient.producer.partitioner import Partitioner
from kclient.producer.producer import AsyncProducer, Serializer
from kclient.producer.txn_api import AsyncProducerTransaction
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.structs import OffsetAndMetadata, RecordMetadata, TopicPartition
from kclient.sync._portal import PortalClient, returns_future, returns_futures

__all__ = ["Producer", "ProducerTransaction"]


class Producer(PortalClient[AsyncProducer]):
    """``with Producer(bootstrap_servers=...) as p: p.send("t", b"v").result(10)``

    Keyword arguments are :class:`~kclient.config.ProducerConfig` keys.
    """

    _async_name = "AsyncProducer"

    def __init__(
        self,
        config: ProducerConfig | None = None,
        *,
        key_serializer: Serializer | None = None,
        value_serializer: Serializer | None = None,
        partitioner: Partitioner | None = None,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        self._open(
            functools.partial(
                AsyncProducer,
                config,
                key_serializer=key_serializer,
                value_serializer=value_serializer,
                partitioner=partitioner,
                transport=transport,
                **settings,
            )
        )

    @property
    def config(self) -> ProducerConfig:
        return self._impl.config

    def close(self, timeout: float | None = None) -> None:
        """Send everything queued and stop (``timeout`` in seconds, then undelivered
        records fail); calls blocked in other threads end. A second call does nothing."""
        self._shutdown(functools.partial(self._impl.close, timeout))

    def stop(self) -> None:
        self._shutdown()

    def partitions_for(self, topic: str) -> set[int]:
        return self._call(self._impl.partitions_for, topic)

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> Future[RecordMetadata]:
        return self._call(
            returns_future(self._impl.send), topic, value, key, partition, timestamp_ms, headers
        )

    def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> RecordMetadata:
        return self._call(
            self._impl.send_and_wait, topic, value, key, partition, timestamp_ms, headers
        )

    def send_many(
        self,
        topic: str,
        values_or_records: Iterable[Any],
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> Sequence[Future[RecordMetadata]]:  # a list; typed as the async side's result
        return self._call(
            returns_futures(self._impl.send_many),
            topic, values_or_records,
            key=key, partition=partition, timestamp_ms=timestamp_ms, headers=headers,
        )  # fmt: skip

    def flush(self, timeout: float | None = None) -> None:
        return self._call(self._impl.flush, timeout)

    # -- transactions (kclient/producer/txn_api.py) ------------------------------------------

    def init_transactions(self) -> None:
        return self._call(self._impl.init_transactions)

    def begin_transaction(self) -> None:
        return self._call(self._impl.begin_transaction)

    def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
        group_metadata: ConsumerGroupMetadata | str,
    ) -> None:
        return self._call(self._impl.send_offsets_to_transaction, offsets, group_metadata)

    def commit_transaction(self) -> None:
        return self._call(self._impl.commit_transaction)

    def abort_transaction(self) -> None:
        return self._call(self._impl.abort_transaction)

    def transaction(self) -> ProducerTransaction:
        """``with producer.transaction():`` begins; commits when the block ends, aborts
        (and re-raises) when it raises."""
        return ProducerTransaction(self, self._call_sync(self._impl.transaction))


class ProducerTransaction:
    """The blocking twin of :class:`~kclient.producer.txn_api.AsyncProducerTransaction`."""

    def __init__(self, client: Producer, block: AsyncProducerTransaction) -> None:
        self._client = client
        self._block = block

    def __enter__(self) -> None:
        self._client._call(self._block.__aenter__)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        return self._client._call(self._block.__aexit__, exc_type, exc, tb)
