"""C5: heartbeats failing past the session timeout (scaled: session 1 s, heartbeat 100 ms).

Fault: every heartbeat answers NOT_COORDINATOR, or is blackholed (its answer held for 3 s,
longer than the session), until the member has given up.

Must hold (reliability.md C5): the member marks its partitions lost *locally*, by its own
session timer, while heartbeats are still failing (no broker answer told it); a commit in
the callback fails with ``CommitFailedError`` (the member id is reset: the broker would
answer UNKNOWN_MEMBER_ID, so the client does not send it); the member rejoins once the
fault is over; no record after the last commit is lost.

Regression: the commit in ``on_partitions_lost`` used to wait for the coordinator to be
rediscovered, which the blocked coordinator driver itself would have done: the group loop
hung until the commit's timeout (fixed by ``GroupMember.commit_refusal``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from kclient import ConsumerRebalanceListener, TopicPartition
from kclient.consumer._errors import CommitFailedError
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ._helpers import collect, make_consumer, produce

pytestmark = pytest.mark.anyio

TOPIC, GROUP = "c5", "c5-group"
NOT_COORDINATOR = 16


@dataclass
class Watch(ConsumerRebalanceListener):
    consumer: Any = None
    fault_active: Any = None
    lost: list[tuple[frozenset[TopicPartition], str, bool]] = field(default_factory=list)

    async def on_partitions_lost(self, lost: frozenset[TopicPartition]) -> None:
        active = self.fault_active()
        try:
            await self.consumer.commit({tp: 1 for tp in lost})
            outcome = "succeeded"
        except CommitFailedError:
            outcome = "CommitFailed"
        self.lost.append((lost, outcome, active))


@pytest.mark.parametrize("fault", ["not_coordinator", "blackhole"])
async def test_session_expires_locally_and_member_rejoins(fault: str) -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        for p in range(2):
            produce(cluster, TOPIC, p, [b"a"] * 10)
        watch = Watch()
        async with make_consumer(cluster, group_id=GROUP) as c:
            watch.consumer = c
            c.subscribe([TOPIC], listener=watch)
            assert len(await collect(c, 20)) == 20
            await c.commit()  # 10 and 10
            old_id = c._coord.member.member_id  # type: ignore[union-attr]
            if fault == "not_coordinator":
                cluster.fail_next(ApiKey.HEARTBEAT, NOT_COORDINATOR, count=10_000)
                watch.fault_active = lambda: cluster.faults.errors[0].count > 0
            else:
                cluster.delay_next(ApiKey.HEARTBEAT, 3.0, count=10_000)
                watch.fault_active = lambda: cluster.faults.delays[0].count > 0
            # Records written during the fault must all arrive after the rejoin.
            for p in range(2):
                produce(cluster, TOPIC, p, [b"b"] * 5)
            # The poll that returns after the loss may already carry records fetched after
            # the rejoin (the group can settle within one poll): keep those.
            after_loss: list[Any] = []
            with anyio.fail_after(10):  # poll through the fault: nothing surfaces
                while not watch.lost:
                    batch = await c.getmany(timeout_ms=20)
                    if watch.lost:
                        after_loss = [r for records in batch.values() for r in records]
            cluster.clear_faults()
            (lost, outcome, active) = watch.lost[0]
            assert lost == {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}
            assert outcome == "CommitFailed"
            assert active  # the local session timer fired, not a broker answer
            got = after_loss + await collect(c, 10 - len(after_loss), timeout=15)
            member = c._coord.member  # type: ignore[union-attr]
            assert member.member_id not in ("", old_id)
            assert {(r.partition, r.offset) for r in got} >= {
                (p, o) for p in range(2) for o in range(10, 15)
            }
            assert min(r.offset for r in got) >= 10  # resumed at the last commit
        assert cluster.errors == []
