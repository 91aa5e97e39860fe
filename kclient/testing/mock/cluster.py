"""MockCluster: the public face of the in-process Kafka cluster and its control API.

    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("t", partitions=6)
        ...  # any client, bootstrap_servers=cluster.bootstrap_servers
        cluster.fail_next(ApiKey.PRODUCE, error=Err.NOT_LEADER_OR_FOLLOWER)

Each broker listens on its own 127.0.0.1 port (advertised as 127.0.0.1, which
librdkafka needs), and ``connect(node_id)`` hands out an in-memory byte stream
to the same connection loop for socket-free tests. Time-driven behaviour
(session timeouts, rebalance timeouts, transaction timeouts) follows the
injected clock: real monotonic time by default, or a :class:`ManualClock`
moved with :meth:`advance`.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import StapledByteStream

from kclient.testing.mock.clock import Clock, ManualClock, SystemClock
from kclient.testing.mock.faults import (
    DelayRule,
    DropRule,
    DropWhen,
    ErrorRule,
    FaultPlan,
    RecordedRequest,
    ResponseRewrite,
    RewriteRule,
)
from kclient.testing.mock.memory import memory_stream_pair
from kclient.testing.mock.server import MockCore, serve_connection
from kclient.testing.mock.state import ClusterState, Topic

__all__ = ["MockCluster"]


class MockCluster:
    def __init__(
        self,
        brokers: int = 1,
        *,
        clock: Clock | None = None,
        auto_create_topics: bool = True,
        default_partitions: int = 1,
        tick_interval: float = 0.01,
        listen: bool = True,
    ) -> None:
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        self.clock: Clock = clock or SystemClock()
        self.state = ClusterState(
            list(range(1, brokers + 1)),
            auto_create_topics=auto_create_topics,
            default_partitions=default_partitions,
        )
        self.faults = FaultPlan()
        self.tick_interval = tick_interval
        self._listen = listen
        self._core: MockCore | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._listeners: dict[int, anyio.abc.SocketListener] = {}
        self._scopes: dict[int, anyio.CancelScope] = {}  # per broker: listener + its TCP conns
        self._memory_scopes: dict[int, set[anyio.CancelScope]] = {}
        self._memory_clients: set[StapledByteStream] = set()  # closed with the cluster

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> MockCluster:
        self._core = MockCore(self.state, self.faults, self.clock)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            for node_id in self.state.brokers:
                await self._start_broker(node_id, port=0)
            self._tg.start_soon(self._ticker)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        for listener in self._listeners.values():
            await listener.aclose()
        self._listeners.clear()
        for client in self._memory_clients:
            await anyio.aclose_forcefully(client)
        self._memory_clients.clear()
        self._tg = None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{b.host}:{b.port}" for b in self.state.brokers.values() if b.up)

    def listen_address(self, node_id: int) -> str:
        """Where broker ``node_id`` really listens (put a ChaosProxy in front of this)."""
        return f"127.0.0.1:{self.state.brokers[node_id].listen_port}"

    def advertise(self, node_id: int, address: str) -> None:
        """Advertise another address for a broker, e.g. a ChaosProxy in front of it,
        so clients reach the broker only through it after bootstrap."""
        host, _, port = address.rpartition(":")
        info = self.state.brokers[node_id]
        info.host, info.port, info.advertised_override = host, int(port), True

    @property
    def broker_ids(self) -> list[int]:
        return list(self.state.brokers)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside handlers (mock bugs); tests should expect none."""
        return self._running_core().errors

    def _running_core(self) -> MockCore:
        if self._core is None:
            raise RuntimeError("MockCluster is not running; use 'async with'")
        return self._core

    async def _start_broker(self, node_id: int, port: int) -> None:
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._scopes[node_id] = scope
        if not self._listen:
            return
        multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        listener = multi.listeners[0]  # one address family: IPv4 loopback
        assert isinstance(listener, anyio.abc.SocketListener)
        self._listeners[node_id] = listener
        info = self.state.brokers[node_id]
        info.listen_port = int(listener.extra(SocketAttribute.local_port))
        if not info.advertised_override:
            info.port = info.listen_port
        self._tg.start_soon(self._serve, node_id, listener, scope)

    async def _serve(
        self,
        node_id: int,
        listener: anyio.abc.SocketListener,
        scope: anyio.CancelScope,
    ) -> None:
        # Our own accept loop instead of listener.serve(): a connection accepted
        # just before the broker is taken down must still be closed, and
        # serve() can drop a stream whose handler task never got to run.
        accepted: set[anyio.abc.SocketStream] = set()

        async def handle(stream: anyio.abc.SocketStream) -> None:
            host = stream.extra(SocketAttribute.remote_address)
            try:
                await serve_connection(self._running_core(), node_id, stream, f"/{host[0]}")
            finally:
                accepted.discard(stream)

        with scope:
            try:
                async with anyio.create_task_group() as tg:
                    while True:
                        try:
                            stream = await listener.accept()
                        except anyio.ClosedResourceError:
                            return  # broker_down() closed the listener

                        accepted.add(stream)
                        tg.start_soon(handle, stream)
            finally:
                for stream in list(accepted):
                    await anyio.aclose_forcefully(stream)

    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.tick_interval)
            self._running_core().tick()

    # -- connections -------------------------------------------------------------

    async def connect(self, node_id: int) -> StapledByteStream:
        """An in-memory connection to broker ``node_id`` (no sockets involved)."""
        broker = self.state.brokers.get(node_id)
        if broker is None or not broker.up:
            raise ConnectionRefusedError(f"mock broker {node_id} is down or unknown")
        client, server = memory_stream_pair()
        self._memory_clients.add(client)
        assert self._tg is not None
        scope = anyio.CancelScope()
        scopes = self._memory_scopes.setdefault(node_id, set())
        scopes.add(scope)

        async def run() -> None:
            try:
                with scope:
                    await serve_connection(self._running_core(), node_id, server, "/memory")
            finally:
                scopes.discard(scope)

        self._tg.start_soon(run)
        return client

    # -- topics and time ---------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int = 1, replication_factor: int = 1, **configs: str
    ) -> Topic:
        return self.state.create_topic(name, partitions, replication_factor, configs)

    def create_partitions(self, topic: str, total: int) -> None:
        """Grow ``topic`` to ``total`` partitions (as CreatePartitions would)."""
        error = self.state.create_partitions(topic, total)
        if error:
            raise ValueError(f"cannot grow {topic!r} to {total} partitions: {error.name}")

    def delete_records(self, topic: str, partition: int, offset: int = -1) -> int:
        """Move the log start offset (-1: to the high watermark); returns the new start."""
        part = self.state.partition(topic, partition)
        if part is None:
            raise KeyError(f"{topic}-{partition}")
        return part.log.delete_records(offset)

    def truncate_log(
        self, topic: str, partition: int, offset: int, new_leader_epoch: int | None = None
    ) -> None:
        """Truncate the partition's log at ``offset`` (a batch boundary) and bump its
        leader epoch (default: by one), as a leader change onto a replica that missed the
        tail does. Consumers past ``offset`` must notice it (OffsetForLeaderEpoch)."""
        part = self.state.partition(topic, partition)
        if part is None:
            raise KeyError(f"{topic}-{partition}")
        epoch = part.log.leader_epoch + 1 if new_leader_epoch is None else new_leader_epoch
        part.log.truncate(offset, epoch)

    def advance(self, ms: int) -> None:
        """Move a ManualClock forward and let timeouts fire."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs MockCluster(clock=ManualClock())")
        self.clock.advance(ms)
        self._running_core().tick()

    # -- fault injection ---------------------------------------------------------

    def fail_next(
        self,
        api_key: int,
        error: int,
        count: int = 1,
        *,
        broker: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``error``."""
        self.faults.errors.append(ErrorRule(api_key, count, broker, topic, partition, error))

    def delay_next(
        self, api_key: int, seconds: float, count: int = 1, *, broker: int | None = None
    ) -> None:
        self.faults.delays.append(DelayRule(api_key, count, broker, None, None, seconds))

    def drop_next(
        self,
        api_key: int,
        when: DropWhen | str = DropWhen.BEFORE,
        count: int = 1,
        *,
        broker: int | None = None,
    ) -> None:
        """Close the connection before applying the request, or after (answer lost)."""
        rule = DropRule(api_key, count, broker, None, None, DropWhen(when))
        self.faults.drops.append(rule)

    def rewrite_next(
        self, api_key: int, rewrite: ResponseRewrite, count: int = 1, *, broker: int | None = None
    ) -> None:
        """Apply the next ``count`` matching requests as usual, then pass each response
        through ``rewrite`` (which may mutate it or return another) before it is sent."""
        self.faults.rewrites.append(RewriteRule(api_key, count, broker, None, None, rewrite))

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (for assertions)."""
        return self.faults.journal

    def requests_of(self, api_key: int, broker: int | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.faults.journal
            if r.api_key == api_key and (broker is None or r.broker == broker)
        ]

    # -- topology ------------------------------------------------------------------

    def move_leader(self, topic: str, partition: int, broker: int) -> None:
        """Make ``broker`` the leader (bumps the leader epoch)."""
        self.state.move_leader(topic, partition, broker)

    def leader_of(self, topic: str, partition: int) -> int:
        part = self.state.partition(topic, partition)
        if part is None:
            raise KeyError(f"{topic}-{partition}")
        return part.leader

    def move_group_coordinator(self, group_id: str, broker: int) -> None:
        self._check_broker(broker)
        self.state.group_coordinators[group_id] = broker

    def move_txn_coordinator(self, transactional_id: str, broker: int) -> None:
        self._check_broker(broker)
        self.state.txn_coordinators[transactional_id] = broker

    def group_coordinator(self, group_id: str) -> int:
        return self.state.group_coordinator(group_id)

    def txn_coordinator(self, transactional_id: str) -> int:
        return self.state.txn_coordinator(transactional_id)

    def _check_broker(self, broker: int) -> None:
        if broker not in self.state.brokers:
            raise KeyError(f"no broker {broker}")

    async def broker_down(self, broker: int) -> None:
        """Stop a broker: close its listener and every connection to it."""
        self._check_broker(broker)
        info = self.state.brokers[broker]
        if not info.up:
            return
        info.up = False
        self._scopes[broker].cancel()
        for scope in self._memory_scopes.pop(broker, set()):
            scope.cancel()
        listener = self._listeners.pop(broker, None)
        if listener is not None:
            await listener.aclose()

    async def broker_up(self, broker: int, *, new_port: bool = False) -> None:
        """Restart a stopped broker on the same port, or with ``new_port`` on a fresh one
        (a broker replaced on another host: same node id, new address in metadata)."""
        self._check_broker(broker)
        info = self.state.brokers[broker]
        if info.up:
            return
        info.up = True
        await self._start_broker(broker, port=0 if new_port else info.listen_port)

    def partitions_led_by(self, broker: int) -> Iterable[tuple[str, int]]:
        for topic in self.state.topics.values():
            for p in topic.partitions:
                if p.leader == broker:
                    yield topic.name, p.index
