"""The API versions the mock serves and advertises in ApiVersions.

Every version the codec supports, except where a newer version changes the
semantics in a way the mock does not implement (its ceiling is lowered so
clients negotiate down instead of being misled).
"""

from __future__ import annotations

from protocol.messages import REGISTRY, ApiKey

__all__ = ["SUPPORTED"]

_CEILINGS = {
    ApiKey.ADD_PARTITIONS_TO_TXN: 3,  # v4+: broker-side batched verification (KIP-890)
    ApiKey.END_TXN: 4,  # v5: epoch bump on every EndTxn (KIP-890 part 2)
    ApiKey.FETCH: 16,  # v17: replica directory ids, for followers only
}

_SERVED = (
    ApiKey.PRODUCE,
    ApiKey.FETCH,
    ApiKey.LIST_OFFSETS,
    ApiKey.METADATA,
    ApiKey.OFFSET_COMMIT,
    ApiKey.OFFSET_FETCH,
    ApiKey.FIND_COORDINATOR,
    ApiKey.JOIN_GROUP,
    ApiKey.HEARTBEAT,
    ApiKey.LEAVE_GROUP,
    ApiKey.SYNC_GROUP,
    ApiKey.DESCRIBE_GROUPS,
    ApiKey.LIST_GROUPS,
    ApiKey.API_VERSIONS,
    ApiKey.CREATE_TOPICS,
    ApiKey.DELETE_TOPICS,
    ApiKey.DELETE_RECORDS,
    ApiKey.INIT_PRODUCER_ID,
    ApiKey.OFFSET_FOR_LEADER_EPOCH,
    ApiKey.ADD_PARTITIONS_TO_TXN,
    ApiKey.ADD_OFFSETS_TO_TXN,
    ApiKey.END_TXN,
    ApiKey.TXN_OFFSET_COMMIT,
    ApiKey.CREATE_PARTITIONS,
    ApiKey.DELETE_GROUPS,
)

SUPPORTED: dict[int, tuple[int, int]] = {
    int(key): (
        REGISTRY[key][0].MIN_VERSION,
        min(REGISTRY[key][0].MAX_VERSION, _CEILINGS.get(key, 99)),
    )
    for key in _SERVED
}
