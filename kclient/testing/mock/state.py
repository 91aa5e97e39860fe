"""The whole mock cluster's state: brokers, topics, partition leaders, coordinators.

Pure: every method takes ``now`` (ms) where time matters and never awaits. The
server layer (``server.py``) is the only place that does I/O; handlers read and
mutate this object between awaits, so no locking is needed.

Coordinators: a group or transactional id maps to ``hash(id) % brokers`` unless
a test moved it; requests for it at any other broker get NOT_COORDINATOR.
Leaders: partition p of a new topic is led by broker ``p % brokers`` (in
broker-id order). A down broker keeps its leaderships (clients see connection
errors and LEADER_NOT_AVAILABLE in metadata) until a test moves them.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field

from kclient.testing.mock.codes import Err
from kclient.testing.mock.fetch_sessions import FetchSessions
from kclient.testing.mock.groups import CommittedOffset, Group, GroupState, Reply
from kclient.testing.mock.log import PartitionLog
from kclient.testing.mock.txn import EndTxnEffect, TxnCoordinator

__all__ = ["BrokerInfo", "ClusterState", "Partition", "Topic"]


@dataclass(slots=True)
class BrokerInfo:
    node_id: int
    host: str = "127.0.0.1"  # advertised in Metadata / FindCoordinator
    port: int = 0  # advertised; equals listen_port unless a test advertises a proxy
    rack: str | None = None
    up: bool = True
    listen_port: int = 0
    advertised_override: bool = False


@dataclass(slots=True)
class Partition:
    index: int
    leader: int
    replicas: list[int]
    log: PartitionLog = field(default_factory=PartitionLog)


@dataclass(slots=True)
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: list[Partition]
    configs: dict[str, str] = field(default_factory=dict)


class ClusterState:
    def __init__(
        self,
        broker_ids: list[int],
        *,
        cluster_id: str = "kclient-mock",
        auto_create_topics: bool = True,
        default_partitions: int = 1,
    ) -> None:
        self.brokers: dict[int, BrokerInfo] = {b: BrokerInfo(b) for b in broker_ids}
        self.cluster_id = cluster_id
        self.controller_id = broker_ids[0]
        self.auto_create_topics = auto_create_topics
        self.default_partitions = default_partitions
        self.topics: dict[str, Topic] = {}
        self.groups: dict[str, Group] = {}
        self.txn = TxnCoordinator()
        self.group_coordinators: dict[str, int] = {}
        self.txn_coordinators: dict[str, int] = {}
        self.fetch_sessions: dict[int, FetchSessions] = {}

    # -- topics ----------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int = 1,
        configs: dict[str, str] | None = None,
    ) -> Topic:
        if name in self.topics:
            raise ValueError(f"topic {name!r} already exists")
        count = self.default_partitions if partitions is None or partitions < 1 else partitions
        topic = Topic(name, uuid.uuid4(), [], dict(configs or {}))
        self._add_partitions(topic, count, replication_factor)
        self.topics[name] = topic
        return topic

    def _add_partitions(self, topic: Topic, total: int, replication_factor: int = 1) -> None:
        ids = sorted(self.brokers)
        rf = max(1, min(replication_factor, len(ids)))
        for p in range(len(topic.partitions), total):
            leader = ids[p % len(ids)]
            replicas = [ids[(p + k) % len(ids)] for k in range(rf)]
            topic.partitions.append(Partition(p, leader, replicas))

    def create_partitions(self, name: str, total: int) -> Err:
        topic = self.topics.get(name)
        if topic is None:
            return Err.UNKNOWN_TOPIC_OR_PARTITION
        if total <= len(topic.partitions):
            return Err.INVALID_PARTITIONS
        self._add_partitions(topic, total, len(topic.partitions[0].replicas))
        return Err.NONE

    def delete_topic(self, name: str) -> Err:
        if self.topics.pop(name, None) is None:
            return Err.UNKNOWN_TOPIC_OR_PARTITION
        return Err.NONE

    def topic_by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return next((t for t in self.topics.values() if t.topic_id == topic_id), None)

    def partition(self, topic: str, index: int) -> Partition | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= index < len(t.partitions):
            return None
        return t.partitions[index]

    def leader_check(self, topic: str, index: int, broker: int) -> tuple[int, Partition | None]:
        """Whether ``broker`` may serve requests for this partition."""
        part = self.partition(topic, index)
        if part is None:
            return Err.UNKNOWN_TOPIC_OR_PARTITION, None
        if part.leader != broker:
            return Err.NOT_LEADER_OR_FOLLOWER, part
        return Err.NONE, part

    def move_leader(self, topic: str, index: int, broker: int) -> None:
        part = self.partition(topic, index)
        if part is None or broker not in self.brokers:
            raise KeyError(f"no partition {topic}-{index} or broker {broker}")
        part.leader = broker
        if broker not in part.replicas:
            part.replicas.append(broker)
        part.log.new_leader_epoch()

    # -- coordinators ----------------------------------------------------------

    def _hashed(self, key: str) -> int:
        ids = sorted(self.brokers)
        return ids[zlib.crc32(key.encode()) % len(ids)]

    def group_coordinator(self, group_id: str) -> int:
        return self.group_coordinators.get(group_id, self._hashed(group_id))

    def txn_coordinator(self, transactional_id: str) -> int:
        return self.txn_coordinators.get(transactional_id, self._hashed(transactional_id))

    def group(self, group_id: str, create: bool = True) -> Group | None:
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            if not create:
                return None
            group = Group(group_id)
            self.groups[group_id] = group
        return group

    def delete_group(self, group_id: str) -> Err:
        group = self.group(group_id, create=False)
        if group is None:
            return Err.GROUP_ID_NOT_FOUND
        if group.state is not GroupState.EMPTY:
            return Err.NON_EMPTY_GROUP
        group.mark_dead()
        del self.groups[group_id]
        return Err.NONE

    # -- transactions ----------------------------------------------------------

    def apply_end_txn(self, effect: EndTxnEffect, now: int) -> None:
        """Write END_TXN markers and move (or drop) the transaction's group offsets."""
        for topic, index in effect.partitions:
            part = self.partition(topic, index)
            if part is not None:
                part.log.write_marker(effect.producer_id, effect.epoch, effect.commit, 0, now)
        for group_id in effect.groups:
            group = self.groups.get(group_id)
            if group is None:
                continue
            pending = group.txn_offsets.pop(effect.producer_id, {})
            if effect.commit:
                group.offsets.update(pending)

    def txn_offset_commit(
        self, group_id: str, producer_id: int, offsets: dict[tuple[str, int], CommittedOffset]
    ) -> None:
        group = self.group(group_id)
        assert group is not None
        group.txn_offsets.setdefault(producer_id, {}).update(offsets)

    def has_pending_txn_offset(self, group: Group, topic: str, index: int) -> bool:
        return any((topic, index) in offsets for offsets in group.txn_offsets.values())

    # -- time ------------------------------------------------------------------

    def tick(self, now: int) -> list[Reply]:
        replies: list[Reply] = []
        for group in list(self.groups.values()):
            replies += group.tick(now)
        for effect in self.txn.expired(now):
            self.apply_end_txn(effect, now)
        return replies
