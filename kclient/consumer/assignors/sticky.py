"""Sticky assignor (Java ``StickyAssignor``, eager protocol).

Under the eager protocol a member revokes everything before it joins, so its
subscription carries no owned partitions. The previous assignment therefore travels
in the user data, in Java's ``StickyAssignorUserData`` layout so that mixed groups
(Java, librdkafka) read each other:

    V1: previous_assignment: ARRAY(topic: STRING, partitions: ARRAY(INT32)),
        generation: INT32
    V0: the same without ``generation``

ARRAY is an int32 count, STRING an int16 length plus UTF-8. There is no version
prefix; a reader tries V1 and falls back to V0 (as Java does).
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

from kclient.consumer.assignors._sticky_core import Claim, sticky_assign
from kclient.consumer.assignors.base import (
    AbstractPartitionAssignor,
    Assignment,
    RebalanceProtocol,
    Subscription,
    finish,
    sorted_members,
)
from kclient.structs import TopicPartition

__all__ = ["StickyAssignor", "decode_sticky_user_data", "encode_sticky_user_data"]

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def encode_sticky_user_data(
    partitions: Collection[TopicPartition], generation: int | None
) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    out = bytearray(_I32.pack(len(by_topic)))
    for topic, parts in by_topic.items():
        name = topic.encode()
        out += _I16.pack(len(name)) + name + _I32.pack(len(parts))
        for p in parts:
            out += _I32.pack(p)
    if generation is not None:
        out += _I32.pack(generation)
    return bytes(out)


def decode_sticky_user_data(data: bytes) -> tuple[list[TopicPartition], int | None]:
    """Return (previous partitions, generation or None for V0). Malformed -> ([], None):
    bad user data from another client must not break the leader's assignment."""
    try:
        partitions, pos = _read_assignment(data)
    except (struct.error, UnicodeDecodeError, ValueError):
        return [], None
    if len(data) - pos == 4:
        return partitions, _I32.unpack_from(data, pos)[0]
    if pos == len(data):
        return partitions, None
    return [], None


def _read_assignment(data: bytes) -> tuple[list[TopicPartition], int]:
    (topics,), pos = _I32.unpack_from(data, 0), 4
    if topics < 0 or topics > len(data):
        raise ValueError("bad topic count")
    out: list[TopicPartition] = []
    for _ in range(topics):
        (length,) = _I16.unpack_from(data, pos)
        if length < 0 or pos + 2 + length > len(data):
            raise ValueError("bad topic name length")
        topic = data[pos + 2 : pos + 2 + length].decode()
        pos += 2 + length
        (count,) = _I32.unpack_from(data, pos)
        pos += 4
        if count < 0 or pos + 4 * count > len(data):
            raise ValueError("bad partition count")
        for p in struct.unpack_from(f">{count}i", data, pos):
            out.append(TopicPartition(topic, p))
        pos += 4 * count
    return out, pos


class StickyAssignor(AbstractPartitionAssignor):
    name = "sticky"
    supported_protocols = (RebalanceProtocol.EAGER,)

    #: Generation used for claims that carry none (V0 user data), below every real one.
    DEFAULT_GENERATION = -1

    def __init__(self) -> None:
        self._previous: tuple[TopicPartition, ...] = ()
        self._generation: int | None = None

    def metadata(self, topics: Collection[str]) -> bytes | None:
        return encode_sticky_user_data(self._previous, self._generation)

    def on_assignment(self, assignment: Assignment, generation_id: int) -> None:
        self._previous = assignment.partitions
        self._generation = generation_id

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        claims = {m: self._claim(sub) for m, sub in subscriptions.items()}
        member_topics = {m: frozenset(sub.topics) for m, sub in subscriptions.items()}
        order = sorted_members(subscriptions)
        return finish(sticky_assign(partitions_per_topic, member_topics, claims, order))

    def _claim(self, sub: Subscription) -> Claim:
        if sub.user_data:
            partitions, generation = decode_sticky_user_data(sub.user_data)
            if partitions:
                gen = self.DEFAULT_GENERATION if generation is None else generation
                return Claim(gen, tuple(partitions))
        # A cooperative-capable peer may send owned partitions instead of user data.
        return Claim(sub.generation_id, sub.owned_partitions)
