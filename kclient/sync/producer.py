"""``Producer``: the blocking twin of :class:`~kclient.producer.producer.AsyncProducer`.

Every method forwards to the async method of the same name and signature through the
shared portal (``_portal.py``). The producer starts in the constructor (the twin of
``AsyncProducer.start()``). ``send`` returns a ``concurrent.futures.Future`` of the
:class:`~kclient.structs.RecordMetadata`: ``.result(timeout)`` blocks for the delivery,
and callbacks added with ``add_done_callback`` run on the portal's event-loop thread
(they must not call this client). One ``send`` is one portal hop; ``send_many`` sends a
whole batch in one.

``close(timeout)`` runs ``AsyncProducer.close(timeout)`` in the task that opened the
producer (its task group must be left there), so records accepted before a Ctrl-C are
still delivered when a ``with`` block exits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from kclient.config import ProducerConfig
from kclient.net.transport import Transport
from kclient.producer.batch import Headers
from kclient.producer.partitioner import Partitioner
from kclient.producer.producer import AsyncProducer, Serializer
from kclient.structs import RecordMetadata
from kclient.sync._portal import PortalClient, returns_future, returns_futures

__all__ = ["Producer"]


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
    ) -> list[Future[RecordMetadata]]:
        return self._call(
            returns_futures(self._impl.send_many),
            topic, values_or_records,
            key=key, partition=partition, timestamp_ms=timestamp_ms, headers=headers,
        )  # fmt: skip

    def flush(self, timeout: float | None = None) -> None:
        return self._call(self._impl.flush, timeout)
