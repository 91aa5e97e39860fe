"""ListOffsets for the consumer: offset resets, beginning/end offsets, offsets_for_times.

Pure request building and response reading, plus :func:`list_offsets`, the one awaiting
helper that groups partitions by leader, sends, and retries partitions whose leader
moved (refreshing metadata) until the caller's deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

import anyio

from kclient._clock import now_ms
from kclient.cluster.refresher import MetadataManager
from kclient.consumer._errors import broker_error
from kclient.consumer._rpc import send
from kclient.errors import KafkaError, KafkaTimeoutError
from kclient.net.pool import ConnectionPool
from kclient.structs import TopicPartition
from protocol.messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)

__all__ = [
    "EARLIEST",
    "LATEST",
    "OffsetTimestamp",
    "build_request",
    "list_offsets",
    "read_response",
]

log = logging.getLogger("kclient.consumer.list_offsets")

EARLIEST = -2
LATEST = -1


class OffsetTimestamp(NamedTuple):
    offset: int
    timestamp: int
    leader_epoch: int = -1


def build_request(
    timestamps: Mapping[TopicPartition, int], read_committed: bool
) -> ListOffsetsRequest:
    topics: dict[str, list[ListOffsetsPartition]] = {}
    for tp, ts in sorted(timestamps.items()):
        topics.setdefault(tp.topic, []).append(
            ListOffsetsPartition(partition_index=tp.partition, timestamp=ts)
        )
    return ListOffsetsRequest(
        replica_id=-1,
        isolation_level=1 if read_committed else 0,
        topics=[ListOffsetsTopic(name=t, partitions=ps) for t, ps in topics.items()],
    )


def read_response(
    response: ListOffsetsResponse,
) -> tuple[dict[TopicPartition, OffsetTimestamp | None], dict[TopicPartition, int]]:
    """(answers, errors): an answer of None means "no such offset" (offsets_for_times past
    the last record); errors maps partitions to their error codes."""
    found: dict[TopicPartition, OffsetTimestamp | None] = {}
    errors: dict[TopicPartition, int] = {}
    for topic in response.topics:
        for p in topic.partitions:
            tp = TopicPartition(topic.name, p.partition_index)
            if p.error_code:
                errors[tp] = p.error_code
            elif p.offset < 0:
                found[tp] = None
            else:
                found[tp] = OffsetTimestamp(p.offset, p.timestamp, p.leader_epoch)
    return found, errors


_RETRIABLE_CODES = frozenset({3, 5, 6, 7, 56, 74, 75})  # leader moved / not ready yet


async def list_offsets(
    pool: ConnectionPool,
    metadata: MetadataManager,
    timestamps: Mapping[TopicPartition, int],
    *,
    read_committed: bool,
    timeout_ms: float,
) -> dict[TopicPartition, OffsetTimestamp | None]:
    """Look offsets up on each partition's leader; raise KafkaTimeoutError at the deadline."""
    deadline = now_ms() + timeout_ms
    todo = dict(timestamps)
    result: dict[TopicPartition, OffsetTimestamp | None] = {}
    attempt = 0
    while todo:
        remaining = deadline - now_ms()
        if remaining <= 0:
            raise KafkaTimeoutError(f"offsets for {sorted(todo)} not found within {timeout_ms} ms")
        snapshot = await metadata.wait_for_topics({tp.topic for tp in todo}, remaining)
        by_node: dict[int, dict[TopicPartition, int]] = {}
        for tp, ts in todo.items():
            leader = snapshot.leader_for(tp.topic, tp.partition)
            if leader is None:
                if snapshot.partitions_for(tp.topic) is not None and tp.partition not in (
                    snapshot.partitions_for(tp.topic) or ()
                ):
                    raise broker_error(3, f"{tp} does not exist")
                continue
            by_node.setdefault(leader.node_id, {})[tp] = ts
        for node, wanted in by_node.items():
            await _ask_node(pool, node, wanted, read_committed, remaining, todo, result)
        if todo:
            attempt += 1
            metadata.request_update()
            await anyio.sleep(min(0.05 * attempt, 0.5))
    return result


async def _ask_node(
    pool: ConnectionPool,
    node: int,
    wanted: dict[TopicPartition, int],
    read_committed: bool,
    timeout_ms: float,
    todo: dict[TopicPartition, int],
    result: dict[TopicPartition, OffsetTimestamp | None],
) -> None:
    try:
        response, _ = await send(
            pool, node, build_request(wanted, read_committed), timeout_ms=timeout_ms
        )
    except KafkaError as exc:
        if not exc.retriable:
            raise
        log.debug("ListOffsets to node %d failed: %s", node, exc)
        return
    assert isinstance(response, ListOffsetsResponse)
    found, errors = read_response(response)
    for tp, answer in found.items():
        if tp in todo:
            result[tp] = answer
            del todo[tp]
    for tp, code in errors.items():
        if code not in _RETRIABLE_CODES:
            raise broker_error(code, f"ListOffsets for {tp}")
