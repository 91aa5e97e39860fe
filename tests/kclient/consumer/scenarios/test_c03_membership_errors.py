"""C3: membership errors (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID on heartbeat, commit and
SyncGroup; MEMBER_ID_REQUIRED on the first JoinGroup).

Must hold (reliability.md C3): the generation is reset (the member id too, for unknown
member); ``on_partitions_lost`` runs; buffered records of those partitions are dropped
(the next record delivered is the committed offset, not the buffered continuation); a
commit raises ``CommitFailedError``; the consumer rejoins (same id after
ILLEGAL_GENERATION, a fresh one after UNKNOWN_MEMBER_ID). MEMBER_ID_REQUIRED costs exactly
one extra JoinGroup, carrying the returned id.

"A late response carrying the old generation does not reset the new one" needs a reply
held while the same connection carries the next generation's traffic, which the mock
cannot do (one request at a time per connection); it is covered on the pure member by
``tests/kclient/unit/test_membership.py::test_late_response_from_old_generation_is_ignored``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kclient import ConsumerRebalanceListener, TopicPartition
from kclient.consumer._errors import CommitFailedError
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce, wait_for

pytestmark = pytest.mark.anyio

TOPIC, GROUP = "c3", "c3-group"
TP = TopicPartition(TOPIC, 0)
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID = 22, 25


@dataclass
class Watch(ConsumerRebalanceListener):
    consumer: Any = None
    lost: list[dict[str, Any]] = field(default_factory=list)
    assigned: int = 0

    async def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> None:
        c = self.consumer
        member = c._coord.member
        seen: dict[str, Any] = {
            "partitions": lost,
            "generation": member.generation_id,
            "member_id": member.member_id,
            "buffered": c._buffer.buffered_partitions() & lost,
        }
        try:
            await c.commit({tp: 0 for tp in lost})
        except CommitFailedError:
            seen["commit"] = "CommitFailed"
        else:
            seen["commit"] = "succeeded"
        self.lost.append(seen)

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.assigned += 1


def join_member_ids(cluster: MockCluster) -> list[str]:
    return [r.request.member_id for r in cluster.requests_of(ApiKey.JOIN_GROUP)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("api", [ApiKey.HEARTBEAT, ApiKey.OFFSET_COMMIT])
@pytest.mark.parametrize("error", [ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID])
async def test_membership_error_loses_partitions_and_rejoins(api: int, error: int) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 100, per_batch=20)
        watch = Watch()
        async with make_consumer(cluster, group_id=GROUP, max_partition_fetch_bytes=1 << 20) as c:
            watch.consumer = c
            c.subscribe([TOPIC], listener=watch)
            first = await c.getmany(timeout_ms=5000, max_records=10)
            assert [r.offset for r in first[TP]] == list(range(10))
            await c.commit({TP: 5})
            # The rest of the log sits fetched-but-undelivered in the buffer.
            await wait_for(lambda: TP in c._buffer.buffered_partitions())
            member = c._coord.member  # type: ignore[union-attr]
            old_id, old_generation = member.member_id, member.generation_id
            joins = len(cluster.requests_of(ApiKey.JOIN_GROUP))
            cluster.fail_next(api, error)
            if api == ApiKey.OFFSET_COMMIT:
                with pytest.raises(CommitFailedError):
                    await c.commit({TP: 10})
            await wait_for(lambda: bool(watch.lost))
            (lost,) = watch.lost
            assert lost["partitions"] == {TP}
            assert lost["generation"] == -1
            assert lost["member_id"] == ("" if error == UNKNOWN_MEMBER_ID else old_id)
            assert lost["buffered"] == set()
            assert lost["commit"] == "CommitFailed"
            # Rejoined; delivery restarts at the committed offset, not at the buffer's 10.
            again = await collect(c, 95)
            assert [r.offset for r in again] == list(range(5, 100))
            assert member.generation_id > old_generation
            rejoin = join_member_ids(cluster)[joins]
            assert rejoin == ("" if error == UNKNOWN_MEMBER_ID else old_id)
        assert cluster.errors == []


async def test_unknown_member_on_sync_group_rejoins_with_a_fresh_id() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 10)
        cluster.fail_next(ApiKey.SYNC_GROUP, UNKNOWN_MEMBER_ID)
        watch = Watch()
        async with make_consumer(cluster, group_id=GROUP) as c:
            watch.consumer = c
            c.subscribe([TOPIC], listener=watch)
            assert [r.offset for r in await collect(c, 10)] == list(range(10))
            ids = join_member_ids(cluster)
            # "" -> MEMBER_ID_REQUIRED -> id; SyncGroup fails -> "" again -> new id.
            assert ids[0] == "" and ids[1] != "" and ids[2] == ""
            assert c._coord.member.member_id not in ("", ids[1])  # type: ignore[union-attr]
            assert watch.lost == []  # nothing was owned yet
            assert watch.assigned == 1
        assert cluster.errors == []


async def test_member_id_required_costs_exactly_one_extra_join() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"x"] * 10)
        async with make_consumer(cluster, group_id=GROUP) as c:
            c.subscribe([TOPIC])
            await collect(c, 10)
            joins = cluster.requests_of(ApiKey.JOIN_GROUP)
            assert all(r.api_version >= 4 for r in joins)
            member_id = c._coord.member.member_id  # type: ignore[union-attr]
            assert join_member_ids(cluster) == ["", member_id]
        assert cluster.errors == []
