"""KIP-219 client-side throttling: how long to hold back the next request to a broker.

Since KIP-219 a broker that throttles a client answers at once with
``throttle_time_ms`` > 0 and then mutes the channel; the client is expected not
to send anything to that broker before the time is over. Older response
versions were delayed by the broker itself, so honouring their throttle time
too would wait twice. The first "answer first, then throttle" version per API
comes from the comments in the Kafka message specs ("Starting in version N, on
quota violation, brokers send out responses before throttling"); APIs added
after Kafka 2.0 (key >= 43) behave that way from v0. Pure functions only.
"""

from __future__ import annotations

from protocol.api import Response

__all__ = ["KIP219_FIRST_VERSION", "client_throttle_ms"]

# api key -> first response version whose throttle the client must honour.
KIP219_FIRST_VERSION: dict[int, int] = {
    0: 6,  # Produce
    1: 8,  # Fetch
    2: 3,  # ListOffsets
    3: 6,  # Metadata
    8: 4,  # OffsetCommit
    9: 4,  # OffsetFetch
    10: 2,  # FindCoordinator
    11: 3,  # JoinGroup
    12: 2,  # Heartbeat
    13: 2,  # LeaveGroup
    14: 2,  # SyncGroup
    15: 2,  # DescribeGroups
    16: 2,  # ListGroups
    18: 2,  # ApiVersions
    19: 3,  # CreateTopics
    20: 2,  # DeleteTopics
    21: 1,  # DeleteRecords
    22: 1,  # InitProducerId
    23: 2,  # OffsetForLeaderEpoch: throttle field added after KIP-219
    24: 1,
    25: 1,
    26: 1,
    28: 1,
    29: 1,
    30: 1,
    31: 1,
    32: 2,  # DescribeConfigs
    33: 1,
    34: 1,
    35: 1,
    37: 1,
    38: 1,
    39: 1,
    40: 1,
    41: 1,
    42: 1,  # DeleteGroups
}
_POST_KIP219_KEY = 43
_MAX_THROTTLE_MS = 2**31 - 1  # an int32 on the wire; never trust more


def client_throttle_ms(response: Response, version: int) -> int:
    """Milliseconds the client must wait before its next request to this broker."""
    throttle = getattr(response, "throttle_time_ms", 0)
    if not isinstance(throttle, int) or throttle <= 0:
        return 0
    first = KIP219_FIRST_VERSION.get(response.API_KEY)
    if first is None and response.API_KEY < _POST_KIP219_KEY:
        return 0  # no client throttling defined for it (e.g. SASL, internal APIs)
    if version < (first or 0):
        return 0  # the broker already delayed this response
    return min(throttle, _MAX_THROTTLE_MS)
