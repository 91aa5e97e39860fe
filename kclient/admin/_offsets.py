"""Offset operations of :class:`~kclient.admin.AsyncAdmin`: partition offsets (to the
partition leaders) and consumer-group offsets (to the group coordinator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kclient.admin import _groups
from kclient.admin._base import AdminBase, expect, finish, one
from kclient.admin._routing import CoordinatorRoute, LeaderRoute
from kclient.admin.results import (
    DeleteRecordsResult,
    GroupOffset,
    ListOffsetsResult,
    OffsetSpec,
    PartitionResult,
)
from kclient.errors import ConfigError
from kclient.structs import OffsetAndMetadata, TopicPartition
from protocol.messages.delete_records import DeleteRecordsRequest, DeleteRecordsResponse
from protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from protocol.messages.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

__all__ = ["OffsetOps"]


def _tp(key: TopicPartition) -> tuple[str, int]:
    return key.topic, key.partition


class OffsetOps(AdminBase):
    # -- partition offsets ----------------------------------------------------------------

    async def list_offsets(
        self,
        specs: Mapping[TopicPartition, OffsetSpec],
        *,
        isolation_level: str = "read_uncommitted",
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, ListOffsetsResult]:
        """Earliest, latest or by-timestamp offsets, asked of each partition's leader."""
        if isolation_level not in ("read_uncommitted", "read_committed"):
            raise ConfigError("isolation_level", "must be read_uncommitted or read_committed")
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, keys: Sequence[TopicPartition]) -> Mapping[TopicPartition, Any]:
            wanted = {k: specs[k] for k in keys}
            response = await self._call(
                node,
                ListOffsetsRequest,
                lambda v: _groups.list_offsets_request(wanted, isolation_level, v),
                deadline,
            )
            return _groups.list_offsets_outcomes(expect(response, ListOffsetsResponse), keys)

        raw = await self._r.fan_out(specs, LeaderRoute(self._r, _tp), send, deadline)
        return finish(raw, lambda _k, e: ListOffsetsResult(error=e))

    async def delete_records(
        self, before: Mapping[TopicPartition, int], *, timeout_ms: float | None = None
    ) -> dict[TopicPartition, DeleteRecordsResult]:
        """Delete the records before the given offsets (-1: the high watermark)."""
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, keys: Sequence[TopicPartition]) -> Mapping[TopicPartition, Any]:
            wanted = {k: before[k] for k in keys}
            timeout = self._broker_timeout(deadline)
            response = await self._call(
                node,
                DeleteRecordsRequest,
                lambda v: _groups.delete_records_request(wanted, timeout),
                deadline,
            )
            return _groups.delete_records_outcomes(expect(response, DeleteRecordsResponse), keys)

        raw = await self._r.fan_out(before, LeaderRoute(self._r, _tp), send, deadline)
        return finish(raw, lambda _k, e: DeleteRecordsResult(error=e))

    # -- consumer-group offsets -----------------------------------------------------------

    async def list_consumer_group_offsets(
        self,
        group_id: str,
        partitions: Sequence[TopicPartition] | None = None,
        *,
        with_lag: bool = True,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, GroupOffset]:
        """Committed offsets of a group (all its partitions by default) and their lag.

        A group-level error (unknown coordinator within the timeout, authorization)
        raises; partition-level errors are reported per partition.
        """
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, groups: Sequence[str]) -> Mapping[str, Any]:
            response = await self._call(
                node,
                OffsetFetchRequest,
                lambda v: _groups.offset_fetch_request(group_id, partitions, v),
                deadline,
            )
            return {
                group_id: _groups.offset_fetch_outcome(
                    expect(response, OffsetFetchResponse), group_id
                )
            }

        route = CoordinatorRoute(self._r, lambda g: g)
        offsets: dict[TopicPartition, GroupOffset] = one(
            await self._r.fan_out([group_id], route, send, deadline), group_id
        )
        if not with_lag or not offsets:
            return offsets
        ends = await self.list_offsets(
            {tp: OffsetSpec.latest() for tp in offsets},
            timeout_ms=max(1.0, deadline - self._now()),
        )
        return _groups.with_end_offsets(offsets, ends)

    async def alter_consumer_group_offsets(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
        *,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, PartitionResult]:
        """Set a group's committed offsets. The group must have no active members."""
        deadline = self._r.deadline(timeout_ms)
        wanted = {
            tp: o if isinstance(o, OffsetAndMetadata) else OffsetAndMetadata(o)
            for tp, o in offsets.items()
        }

        async def send(node: int, groups: Sequence[str]) -> Mapping[str, Any]:
            response = await self._call(
                node,
                OffsetCommitRequest,
                lambda v: _groups.offset_commit_request(group_id, wanted, v),
                deadline,
            )
            return {
                group_id: _groups.offset_commit_outcome(
                    expect(response, OffsetCommitResponse), group_id
                )
            }

        route = CoordinatorRoute(self._r, lambda g: g)
        result: dict[TopicPartition, PartitionResult] = one(
            await self._r.fan_out([group_id], route, send, deadline), group_id
        )
        return result

    async def delete_consumer_group_offsets(
        self,
        group_id: str,
        partitions: Sequence[TopicPartition],
        *,
        timeout_ms: float | None = None,
    ) -> dict[TopicPartition, PartitionResult]:
        """Delete a group's committed offsets (OffsetDelete, Kafka 2.4+)."""
        deadline = self._r.deadline(timeout_ms)

        async def send(node: int, groups: Sequence[str]) -> Mapping[str, Any]:
            response = await self._call(
                node,
                OffsetDeleteRequest,
                lambda v: _groups.offset_delete_request(group_id, partitions),
                deadline,
            )
            return {
                group_id: _groups.offset_delete_outcome(
                    expect(response, OffsetDeleteResponse), group_id
                )
            }

        route = CoordinatorRoute(self._r, lambda g: g)
        result: dict[TopicPartition, PartitionResult] = one(
            await self._r.fan_out([group_id], route, send, deadline), group_id
        )
        return result
