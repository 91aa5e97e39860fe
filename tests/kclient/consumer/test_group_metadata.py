"""``group_metadata()`` (for ``send_offsets_to_transaction``, KIP-447) on the async and the
sync consumer, and commits inside ``on_partitions_revoked`` while closing."""

from __future__ import annotations

import uuid

import pytest

from kclient import ConsumerRebalanceListener, TopicPartition
from kclient.errors import GroupRequiredError, IllegalStateError
from kclient.producer.txn_types import ConsumerGroupMetadata
from kclient.sync import Consumer
from kclient.testing.mock import MockCluster

from .scenarios._helpers import collect, make_consumer, produce

TOPIC, GROUP = "gm", "gm-group"


@pytest.mark.anyio
async def test_group_metadata_follows_the_membership() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        produce(cluster, TOPIC, 0, [b"a"] * 5)
        c = make_consumer(cluster, group_id=GROUP, group_instance_id="static-1")
        assert c.group_metadata() == ConsumerGroupMetadata(GROUP, group_instance_id="static-1")
        async with c:
            c.subscribe([TOPIC])
            await collect(c, 5)
            member = c._coord.member  # type: ignore[union-attr]
            meta = c.group_metadata()
            assert meta == ConsumerGroupMetadata(
                GROUP, member.generation_id, member.member_id, "static-1"
            )
            assert meta.generation_id >= 1 and meta.member_id
            group = cluster.state.group(GROUP, create=False)
            assert group is not None and meta.member_id in group.members
        with pytest.raises(IllegalStateError):
            c.group_metadata()  # closed
        assert cluster.errors == []


@pytest.mark.anyio
async def test_group_metadata_of_manual_assignment_has_no_generation() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        async with make_consumer(cluster, group_id=GROUP) as c:
            c.assign([TopicPartition(TOPIC, 0)])
            assert c.group_metadata() == ConsumerGroupMetadata(GROUP)
        async with make_consumer(cluster) as no_group:
            with pytest.raises(GroupRequiredError):
                no_group.group_metadata()
            with pytest.raises(GroupRequiredError):
                await no_group.commit({TopicPartition(TOPIC, 0): 1})


@pytest.mark.anyio
async def test_commit_inside_revoke_callback_works_while_closing() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        produce(cluster, TOPIC, 0, [b"a"] * 7)
        errors: list[BaseException] = []
        c = make_consumer(cluster, group_id=GROUP)

        class CommitOnRevoke(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
                try:
                    await c.commit()
                except Exception as exc:  # recorded: the assertion below names it
                    errors.append(exc)

        async with c:
            c.subscribe([TOPIC], listener=CommitOnRevoke())
            await collect(c, 7)
        assert errors == []
        group = cluster.state.group(GROUP, create=False)
        assert group is not None and group.offsets[(TOPIC, 0)].offset == 7


@pytest.mark.integration
def test_sync_consumer_group_metadata(tansu_bootstrap: str) -> None:
    group = f"gm-{uuid.uuid4().hex[:8]}"
    with Consumer(bootstrap_servers=tansu_bootstrap, group_id=group) as c:
        assert c.group_metadata() == ConsumerGroupMetadata(group)
    with Consumer(bootstrap_servers=tansu_bootstrap) as no_group:
        with pytest.raises(GroupRequiredError):
            no_group.group_metadata()
