"""The metadata refresh driver: the only code here that awaits.

``MetadataManager.run`` loops: sleep until a refresh is due (``metadata_max_age_ms``
elapsed, an update was requested, or a retry backoff ran out), ask one broker
for metadata, fold the reply in with the pure :func:`kclient.cluster.metadata.apply`
and wake everyone waiting. Candidates are the known brokers (connected ones
first) and then, when none answers or nothing is known, the bootstrap servers
again (``metadata_recovery_strategy="rebootstrap"``): a cluster whose brokers
all moved is found again through bootstrap.

Waiters (:meth:`wait_for_topics`, :meth:`refresh`) never poll: they wait on an
event that is replaced after every attempt, bounded by their own timeout.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable

import anyio
import anyio.abc

from kclient._clock import now_ms
from kclient.cluster.metadata import ClusterSnapshot, MetadataUpdate, apply
from kclient.config import CommonConfig
from kclient.errors import KafkaError, KafkaTimeoutError, NoBrokersAvailableError
from kclient.net.backoff import Backoff
from kclient.net.pool import ConnectionPool
from protocol.messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse

__all__ = ["MetadataManager", "next_refresh_delay_ms"]

log = logging.getLogger("kclient.cluster.refresher")


def next_refresh_delay_ms(
    now: float, updated_at_ms: float, max_age_ms: float, update_requested: bool, backoff_ms: float
) -> float:
    """How long the driver sleeps before the next attempt (pure)."""
    if update_requested or updated_at_ms < 0:
        return backoff_ms
    return max(backoff_ms, updated_at_ms + max_age_ms - now)


class MetadataManager:
    def __init__(
        self,
        config: CommonConfig,
        pool: ConnectionPool,
        *,
        all_topics: bool = False,
        auto_create_topics: bool = False,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._pool = pool
        self._all_topics = all_topics
        # Whether named topics that do not exist may be created by the broker (its
        # auto.create.topics.enable decides): producers and subscribing consumers ask,
        # like the Java client; the admin client never does.
        self._auto_create = auto_create_topics
        self._rand = rand
        self.snapshot = ClusterSnapshot()
        # Called (synchronously, no arguments) after each new snapshot: for state that
        # must not outlive the snapshot it was made under (the producer's send lanes).
        self.on_update: list[Callable[[], None]] = []
        self.last_update: MetadataUpdate | None = None
        self.last_error: KafkaError | None = None
        self._topics: set[str] = set()
        self._update_requested = True
        self._wakeup = anyio.Event()
        self._attempted = anyio.Event()
        self._backoff = Backoff(config.retry_backoff_ms, config.retry_backoff_max_ms)

    # -- API for clients -----------------------------------------------------------------

    def add_topics(self, topics: Iterable[str]) -> None:
        new = set(topics) - self._topics
        if new:
            self._topics |= new
            self.request_update()

    def request_update(self) -> None:
        """Ask for a refresh soon (e.g. after a NOT_LEADER or UNKNOWN_TOPIC error)."""
        self._update_requested = True
        self._wakeup.set()

    async def refresh(self, timeout_ms: float | None = None) -> ClusterSnapshot:
        """Force a refresh and return the snapshot after it succeeded."""
        before = self.snapshot.updated_at_ms
        self.request_update()
        timeout = self._config.request_timeout_ms if timeout_ms is None else timeout_ms
        with anyio.move_on_after(timeout / 1000):
            while self.snapshot.updated_at_ms == before:
                await self._attempted.wait()
                self._raise_if_fatal()
            return self.snapshot
        raise self._timeout(f"metadata not refreshed within {timeout:.0f} ms")

    async def wait_for_topics(
        self, topics: Iterable[str], timeout_ms: float | None = None
    ) -> ClusterSnapshot:
        """Wait until every topic has usable metadata; raise its error if it has one."""
        wanted = set(topics)
        self.add_topics(wanted)
        timeout = self._config.request_timeout_ms if timeout_ms is None else timeout_ms
        with anyio.move_on_after(timeout / 1000):
            while True:
                update = self.last_update
                if update is not None:
                    for name in wanted & set(update.topic_errors):
                        raise update.topic_errors[name]
                if wanted <= set(self.snapshot.topics):
                    return self.snapshot
                await self._attempted.wait()
                self._raise_if_fatal()
        missing = sorted(wanted - set(self.snapshot.topics))
        raise self._timeout(f"no usable metadata for topics {missing} within {timeout:.0f} ms")

    def _raise_if_fatal(self) -> None:
        # Called right after an attempt finished: a non-retriable failure (bad
        # certificate, rejected credentials) will not heal by waiting, so the
        # caller hears about it now rather than at its timeout.
        error = self.last_error
        if error is not None and not error.retriable:
            raise error

    def _timeout(self, message: str) -> KafkaTimeoutError:
        if self.last_error is not None:
            message += f"; last error: {self.last_error}"
        return KafkaTimeoutError(message)

    # -- driver -----------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            now = now_ms()
            delay = next_refresh_delay_ms(
                now,
                self.snapshot.updated_at_ms,
                self._config.metadata_max_age_ms,
                self._update_requested,
                self._backoff.remaining_ms(now),
            )
            if delay > 0:
                with anyio.move_on_after(delay / 1000):
                    await self._wakeup.wait()
                if self._backoff.remaining_ms(now_ms()) > 0:
                    continue  # woken early by a request: still honour the backoff
            self._wakeup = anyio.Event()
            await self._attempt()

    async def _attempt(self) -> None:
        self._update_requested = False
        try:
            response = await self._fetch()
        except KafkaError as exc:
            self.last_error = exc
            self._update_requested = True
            wait = self._backoff.record_failure(now_ms(), self._rand())
            log.info("metadata refresh failed: %s (retry in %.0f ms)", exc, wait)
        else:
            self._take(response)
        attempted, self._attempted = self._attempted, anyio.Event()
        attempted.set()

    def _take(self, response: MetadataResponse) -> None:
        requested = None if self._all_topics else sorted(self._topics)
        update = apply(self.snapshot, response, now_ms(), requested=requested)
        self.snapshot, self.last_update = update.snapshot, update
        for callback in self.on_update:
            callback()
        self._pool.update_brokers({n: (b.host, b.port) for n, b in update.snapshot.brokers.items()})
        if update.needs_retry:
            self._update_requested = True
            self._backoff.record_failure(now_ms(), self._rand())
            log.debug("metadata incomplete for %s; retrying", sorted(update.retry_topics))
        else:
            self._backoff.record_success()
            self.last_error = None

    def _candidates(self) -> list[int]:
        known = sorted(self.snapshot.brokers, key=lambda n: not self._pool.is_connected(n))
        use_bootstrap = not known or self._config.metadata_recovery_strategy == "rebootstrap"
        return known + ([a.node_id for a in self._pool.bootstrap] if use_bootstrap else [])

    async def _fetch(self) -> MetadataResponse:
        request = MetadataRequest(
            topics=None
            if self._all_topics
            else [MetadataRequestTopic(name=t) for t in sorted(self._topics)],
            allow_auto_topic_creation=self._auto_create and not self._all_topics,
        )
        errors: list[str] = []
        for node_id in self._candidates():
            if self._pool.backoff_remaining_ms(node_id, now_ms()) > 0 and errors:
                continue  # in backoff and there are other candidates: skip it this round
            try:
                response = await self._pool.request(node_id, request)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                errors.append(str(exc))
                continue
            assert isinstance(response, MetadataResponse)
            return response
        raise NoBrokersAvailableError(
            "no broker answered the metadata request: " + "; ".join(errors[-3:] or ["none tried"])
        )
