"""Immutable cluster metadata and the pure rules for taking a Metadata response.

:func:`apply` merges a MetadataResponse into a :class:`ClusterSnapshot` and
returns the new snapshot plus what still needs a retry. It never awaits and
takes ``now`` instead of reading a clock. Rules (reliability guide 1.5 #9):

* Brokers with an empty host or a port outside 1-65535 are dropped (logged).
* A topic with error 0 but zero partitions "looks like success but isn't": the
  old entry (if any) is kept and the topic is marked for retry.
* On a topic's first load, LEADER_NOT_AVAILABLE (or no live leader) on every
  partition is likewise not taken: retry instead.
* A partition whose leader epoch is older than the cached one comes from a
  stale broker: the cached partition is kept and a retry is requested.
* Retriable topic errors (LEADER_NOT_AVAILABLE, ...) mark the topic for retry;
  UNKNOWN_TOPIC_OR_PARTITION removes it; other errors are reported per topic.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kclient.errors import BrokerResponseError
from protocol.errors import error_for_code
from protocol.messages.metadata import MetadataResponse, MetadataResponsePartition

__all__ = ["BrokerInfo", "ClusterSnapshot", "MetadataUpdate", "PartitionInfo", "TopicInfo", "apply"]

log = logging.getLogger("kclient.cluster.metadata")

_UNKNOWN_TOPIC = 3
_LEADER_NOT_AVAILABLE = 5
_NO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int  # -1: no leader known
    leader_epoch: int
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    offline_replicas: tuple[int, ...] = ()
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: tuple[PartitionInfo, ...]
    is_internal: bool = False

    def partition(self, index: int) -> PartitionInfo | None:
        for p in self.partitions:
            if p.partition == index:
                return p
        return None


@dataclass(frozen=True)
class ClusterSnapshot:
    """What the client knows about the cluster at one moment. Never mutated."""

    brokers: Mapping[int, BrokerInfo] = field(default_factory=lambda: MappingProxyType({}))
    topics: Mapping[str, TopicInfo] = field(default_factory=lambda: MappingProxyType({}))
    cluster_id: str | None = None
    controller_id: int = -1
    updated_at_ms: float = -1.0

    @property
    def loaded(self) -> bool:
        return self.updated_at_ms >= 0

    def leader_for(self, topic: str, partition: int) -> BrokerInfo | None:
        info = self.topics.get(topic)
        part = info.partition(partition) if info else None
        if part is None or part.leader < 0:
            return None
        return self.brokers.get(part.leader)

    def partitions_for(self, topic: str) -> tuple[int, ...] | None:
        info = self.topics.get(topic)
        return None if info is None else tuple(p.partition for p in info.partitions)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        for info in self.topics.values():
            if info.topic_id == topic_id:
                return info
        return None


@dataclass(frozen=True)
class MetadataUpdate:
    snapshot: ClusterSnapshot
    retry_topics: frozenset[str] = frozenset()
    """Topics whose reply was not usable yet (transient errors, anomalies): refresh again soon."""
    topic_errors: Mapping[str, BrokerResponseError] = field(default_factory=dict)
    """Non-retriable per-topic errors (authorization, invalid name) for waiters to raise."""
    dropped_brokers: tuple[str, ...] = ()

    @property
    def needs_retry(self) -> bool:
        return bool(self.retry_topics)


def valid_broker(host: str, port: int) -> bool:
    return bool(host.strip()) and 1 <= port <= 65535


def _brokers(response: MetadataResponse) -> tuple[dict[int, BrokerInfo], list[str]]:
    brokers: dict[int, BrokerInfo] = {}
    dropped: list[str] = []
    for b in response.brokers:
        if valid_broker(b.host, b.port):
            brokers[b.node_id] = BrokerInfo(b.node_id, b.host, b.port, b.rack)
        else:
            dropped.append(f"node {b.node_id} at {b.host!r}:{b.port}")
            log.warning(
                "ignoring broker with invalid address: node %d %r:%d", b.node_id, b.host, b.port
            )
    return brokers, dropped


def _partition(p: MetadataResponsePartition, brokers: Mapping[int, BrokerInfo]) -> PartitionInfo:
    leader = p.leader_id if p.leader_id in brokers else -1
    return PartitionInfo(
        partition=p.partition_index,
        leader=leader,
        leader_epoch=p.leader_epoch,
        replicas=tuple(p.replica_nodes),
        isr=tuple(p.isr_nodes),
        offline_replicas=tuple(p.offline_replicas),
        error_code=p.error_code,
    )


def _merge_partitions(
    new: Iterable[PartitionInfo], old: TopicInfo | None
) -> tuple[tuple[PartitionInfo, ...], bool]:
    """New partitions, keeping cached ones whose leader epoch went backwards."""
    stale = False
    merged = []
    for part in new:
        cached = old.partition(part.partition) if old else None
        if cached is not None and 0 <= part.leader_epoch < cached.leader_epoch:
            merged.append(cached)
            stale = True
        else:
            merged.append(part)
    return tuple(sorted(merged, key=lambda p: p.partition)), stale


def apply(
    snapshot: ClusterSnapshot,
    response: MetadataResponse,
    now: float,
    *,
    requested: Iterable[str] | None = None,
) -> MetadataUpdate:
    """Merge ``response`` into ``snapshot``. ``requested`` None means "all topics" was asked."""
    brokers, dropped = _brokers(response)
    topics: dict[str, TopicInfo] = {} if requested is None else dict(snapshot.topics)
    retry: set[str] = set()
    errors: dict[str, BrokerResponseError] = {}
    for t in response.topics:
        name = t.name
        if name is None:
            continue
        old = snapshot.topics.get(name)
        if t.error_code == _UNKNOWN_TOPIC:
            topics.pop(name, None)
            continue
        if t.error_code != 0:
            error_cls = error_for_code(t.error_code)
            if error_cls.retriable:
                retry.add(name)
                if old is not None:
                    topics[name] = old
            else:
                errors[name] = error_cls(f"topic {name!r}")
                topics.pop(name, None)
            continue
        parts = [_partition(p, brokers) for p in t.partitions]
        if not parts or (old is None and all(p.leader < 0 for p in parts)):
            retry.add(name)  # looks like success but is not (zero partitions / no leaders yet)
            if old is not None:
                topics[name] = old
            continue
        merged, stale = _merge_partitions(parts, old)
        if stale or any(p.leader < 0 for p in merged):
            retry.add(name)
        topic_id = t.topic_id if t.topic_id != _NO_UUID or old is None else old.topic_id
        topics[name] = TopicInfo(name, topic_id, merged, t.is_internal)
    new = ClusterSnapshot(
        brokers=MappingProxyType(brokers),
        topics=MappingProxyType(topics),
        cluster_id=response.cluster_id,
        controller_id=response.controller_id,
        updated_at_ms=now,
    )
    return MetadataUpdate(new, frozenset(retry), errors, tuple(dropped))
