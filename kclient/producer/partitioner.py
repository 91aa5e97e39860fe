"""Choosing a partition for a record: key hash, uniform sticky, explicit, custom.

Keyed records go to ``(murmur2(key) & 0x7fffffff) % len(all_partitions)``,
bit-for-bit the Java client's ``BuiltInPartitioner.partitionForKey``, so that
records produced by this client, the Java client, librdkafka's
``murmur2_random`` and kafka-python with the same key land on the same
partition. Note the modulus is over *all* partitions, available or not: a key
must never move because a leader is briefly missing.

Keyless records use the uniform sticky partitioner of KIP-794: every record of
a topic goes to one partition until about ``batch_size`` bytes were appended
there, then the partitioner moves on. That fills whole batches (fewer, larger
requests) while spreading load evenly over time. When it moves it picks among
the *available* partitions (leader known and reachable, as the caller decides);
with a ``load`` function it prefers partitions with fewer queued bytes
(KIP-794's adaptive mode), so a slow broker whose queues grow gets fewer new
records.

Cost model: the keyless fast path is one dict lookup; hashing a key is a
handful of integer operations per 4 bytes. Nothing here allocates per record.
"""

from __future__ import annotations

import random
import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Protocol

__all__ = [
    "DefaultPartitioner",
    "KeyHashes",
    "LoadFunction",
    "Partitioner",
    "StickyPartitioner",
    "StickyState",
    "murmur2",
    "partition_for_key",
]

_MASK32 = 0xFFFFFFFF
_M = 0x5BD1E995  # murmur2 multiplier
_SEED = 0x9747B28C  # the seed the Java client hard-codes
_unpack_from = struct.unpack_from


class Partitioner(Protocol):
    """A custom partitioner: return the partition for a record.

    ``key`` is the serialized key (None for keyless records); ``all_partitions``
    lists every partition id of the topic, ``available_partitions`` those whose
    leader is currently known (possibly empty).
    """

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
        /,
    ) -> int: ...


# (topic, candidate partitions) -> queued bytes per candidate, same order.
LoadFunction = Callable[[str, Sequence[int]], Sequence[int]]


# Word decoders for keys up to 64 bytes, made once (a format string per call costs
# about as much as hashing a short key).
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(17)]


def _murmur2_u32(data: bytes) -> int:
    """MurmurHash2 (32-bit, Kafka's seed) as an unsigned 32-bit int."""
    length = len(data)
    h = _SEED ^ length
    nblocks = length >> 2
    if nblocks:
        # One C call decodes every little-endian word; the loop only mixes.
        words = _WORDS[nblocks](data) if nblocks <= 16 else _unpack_from(f"<{nblocks}I", data)
        for k in words:
            k = (k * _M) & _MASK32
            k ^= k >> 24
            h = ((h * _M) & _MASK32) ^ ((k * _M) & _MASK32)
    tail = length & 3
    if tail:
        i = nblocks << 2
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    return h ^ (h >> 15)


def murmur2(data: bytes) -> int:
    """The Java client's ``Utils.murmur2``: a *signed* 32-bit hash of ``data``."""
    h = _murmur2_u32(data)
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's default partitioner picks for ``key``."""
    return (_murmur2_u32(key) & 0x7FFFFFFF) % num_partitions


class KeyHashes:
    """``partition_for_key`` with the hashes of recently seen short keys kept.

    Keys repeat (user ids, entity ids), and murmur2 in Python costs 1-2 us per short
    key where a dict lookup costs ~30 ns. Bounded: only keys up to 64 bytes are kept,
    at most ``limit`` of them (the table is emptied when full), so it holds a few MB
    at most whatever the key stream.
    """

    __slots__ = ("_hashes", "_limit")

    def __init__(self, limit: int = 16384) -> None:
        self._hashes: dict[bytes, int] = {}
        self._limit = limit

    def partition(self, key: bytes, num_partitions: int) -> int:
        h = self._hashes.get(key)
        if h is None:
            h = _murmur2_u32(key) & 0x7FFFFFFF
            if len(key) <= 64:
                if len(self._hashes) >= self._limit:
                    self._hashes.clear()
                self._hashes[key] = h
        return h % num_partitions


class StickyState:
    """Where keyless records of one topic currently go."""

    __slots__ = ("partition", "produced")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.produced = 0  # bytes appended to `partition` since the last switch


class StickyPartitioner:
    """KIP-794 uniform sticky partitioner for keyless records.

    The caller reports appended bytes with :meth:`on_append`; after
    ``batch_size`` bytes the next :meth:`partition` call picks a new partition.
    Call :meth:`invalidate` when metadata changes so a partition whose leader
    vanished is not kept until the next switch.
    """

    __slots__ = ("_batch_size", "_load", "_rng", "_states")

    def __init__(
        self,
        batch_size: int,
        *,
        load: LoadFunction | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # batch_size 0 (batching off) would switch on every record; 1 keeps that meaning.
        self._batch_size = max(batch_size, 1)
        self._load = load
        self._rng = rng if rng is not None else random.Random()
        self._states: dict[str, StickyState] = {}

    def partition(
        self, topic: str, all_partitions: Sequence[int], available_partitions: Sequence[int]
    ) -> int:
        state = self._states.get(topic)
        if state is not None:
            return state.partition
        chosen = self._choose(topic, all_partitions, available_partitions)
        self._states[topic] = StickyState(chosen)
        return chosen

    def state(
        self, topic: str, all_partitions: Sequence[int], available_partitions: Sequence[int]
    ) -> StickyState:
        """The topic's current choice (made now if there is none). The producer's hot
        paths keep it and count ``produced`` themselves (see ``on_append``), and read
        :attr:`states` directly, so that a keyless record costs no call here."""
        state = self._states.get(topic)
        if state is None:
            self.partition(topic, all_partitions, available_partitions)
            state = self._states[topic]
        return state

    @property
    def batch_size(self) -> int:
        """Bytes appended to a partition after which the next choice is made."""
        return self._batch_size

    @property
    def states(self) -> dict[str, StickyState]:
        """topic -> current choice; the same dict for the partitioner's lifetime."""
        return self._states

    def on_append(self, topic: str, partition: int, nbytes: int) -> None:
        """Count ``nbytes`` appended to ``partition``; switch once a batch is full."""
        state = self._states.get(topic)
        if state is None or state.partition != partition:
            return  # an explicit or keyed record; it does not move the sticky choice
        state.produced += nbytes
        if state.produced >= self._batch_size:
            # Dropping the state makes the next keyless record choose afresh.
            del self._states[topic]

    def invalidate(self, topic: str | None = None) -> None:
        """Forget the sticky choice (of ``topic``, or of all topics)."""
        if topic is None:
            self._states.clear()
        else:
            self._states.pop(topic, None)

    def _choose(
        self,
        topic: str,
        all_partitions: Sequence[int],
        available: Sequence[int],
    ) -> int:
        candidates = available if available else all_partitions
        if not candidates:
            raise ValueError(f"topic {topic!r} has no partitions")
        if len(candidates) == 1:
            return candidates[0]
        if self._load is None:
            return candidates[self._rng.randrange(len(candidates))]
        return self._choose_by_load(topic, candidates)

    def _choose_by_load(self, topic: str, candidates: Sequence[int]) -> int:
        loads = self._load(topic, candidates) if self._load is not None else ()
        if len(loads) != len(candidates):
            raise ValueError("load function must return one value per candidate")
        heaviest = max(loads)
        # Weight = headroom below the heaviest queue, plus one batch so that
        # queues within a batch of each other are treated as about equal and
        # even the heaviest partition keeps a small chance.
        weights = [heaviest - load + self._batch_size for load in loads]
        cumulative = list(accumulate(weights))
        pick = self._rng.random() * cumulative[-1]
        return candidates[min(bisect_right(cumulative, pick), len(candidates) - 1)]


class DefaultPartitioner:
    """The default: murmur2 for keyed records, uniform sticky for keyless ones.

    Satisfies :class:`Partitioner`, so it can be wrapped or replaced by a custom
    callable. With ``ignore_keys`` (``partitioner_ignore_keys``) keyed records
    are spread like keyless ones.
    """

    __slots__ = ("ignore_keys", "sticky")

    def __init__(self, sticky: StickyPartitioner, *, ignore_keys: bool = False) -> None:
        self.sticky = sticky
        self.ignore_keys = ignore_keys

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        all_partitions: Sequence[int],
        available_partitions: Sequence[int],
    ) -> int:
        if key is not None and not self.ignore_keys:
            # The partition *id* is the hash modulo the count, as in Java; the
            # ids of a topic are always 0..n-1.
            return (_murmur2_u32(key) & 0x7FFFFFFF) % len(all_partitions)
        return self.sticky.partition(topic, all_partitions, available_partitions)
