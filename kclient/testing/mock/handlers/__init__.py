"""Request handlers, one module per API family; ``HANDLERS`` maps API key -> handler.

Join and Sync are absent from ``HANDLERS``: they take a wait token and may
park, so the server calls them through ``PARKING_HANDLERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kclient.testing.mock.groups import Reply
from kclient.testing.mock.handlers import admin, fetch, groups, produce, txn
from kclient.testing.mock.handlers.common import Ctx, Handler, Parked
from kclient.testing.mock.handlers.versions import SUPPORTED
from protocol.messages import ApiKey

__all__ = ["HANDLERS", "PARKING_HANDLERS", "SUPPORTED"]

HANDLERS: dict[int, Handler] = {
    ApiKey.API_VERSIONS: admin.handle_api_versions,
    ApiKey.METADATA: admin.handle_metadata,
    ApiKey.CREATE_TOPICS: admin.handle_create_topics,
    ApiKey.DELETE_TOPICS: admin.handle_delete_topics,
    ApiKey.CREATE_PARTITIONS: admin.handle_create_partitions,
    ApiKey.DELETE_RECORDS: admin.handle_delete_records,
    ApiKey.FIND_COORDINATOR: admin.handle_find_coordinator,
    ApiKey.PRODUCE: produce.handle_produce,
    ApiKey.FETCH: fetch.handle_fetch,
    ApiKey.LIST_OFFSETS: fetch.handle_list_offsets,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: fetch.handle_offset_for_leader_epoch,
    ApiKey.HEARTBEAT: groups.handle_heartbeat,
    ApiKey.OFFSET_COMMIT: groups.handle_offset_commit,
    ApiKey.OFFSET_FETCH: groups.handle_offset_fetch,
    ApiKey.LIST_GROUPS: groups.handle_list_groups,
    ApiKey.DESCRIBE_GROUPS: groups.handle_describe_groups,
    ApiKey.DELETE_GROUPS: groups.handle_delete_groups,
    ApiKey.INIT_PRODUCER_ID: txn.handle_init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: txn.handle_add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: txn.handle_add_offsets_to_txn,
    ApiKey.END_TXN: txn.handle_end_txn,
    ApiKey.TXN_OFFSET_COMMIT: txn.handle_txn_offset_commit,
    ApiKey.LEAVE_GROUP: groups.handle_leave_group,
}

PARKING_HANDLERS: dict[int, Callable[[Ctx, Any, object], tuple[Parked, list[Reply]]]] = {
    ApiKey.JOIN_GROUP: groups.handle_join_group,
    ApiKey.SYNC_GROUP: groups.handle_sync_group,
}
