"""Inspect and manage a consumer group: list, describe, offsets with lag, reset, delete.

Usage: python admin_groups.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "admin-groups".
The group is "<TOPIC>-group".
"""

import asyncio
import os
import sys

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer, NewTopic, OffsetSpec, TopicPartition

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "admin-groups"
GROUP = f"{TOPIC}-group"
TP = TopicPartition(TOPIC, 0)


async def make_group() -> None:
    """A group that read and committed 4 of the topic's 10 records, then left."""
    async with AsyncProducer(bootstrap_servers=BOOTSTRAP) as producer:
        for i in range(10):
            await producer.send_and_wait(TOPIC, b"record %d" % i)
    async with AsyncConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
    ) as consumer:
        seen = 0
        async for _record in consumer:
            seen += 1
            if seen == 4:
                break
        await consumer.commit()  # the 4 records handed out: committed offset 4


async def main() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        created = await admin.create_topics([NewTopic(TOPIC, 1, 1)])
        created[TOPIC].raise_on_error()
        await make_group()

        groups = await admin.list_consumer_groups()
        print(f"group listed: {GROUP in [g.group_id for g in groups]}")

        described = (await admin.describe_consumer_groups([GROUP]))[GROUP]
        described.raise_on_error()
        print(f"state {described.state}, {len(described.members)} member(s)")

        offsets = await admin.list_consumer_group_offsets(GROUP)  # with lag by default
        print(
            f"committed {offsets[TP].committed.offset}, end {offsets[TP].end_offset}, "
            f"lag {offsets[TP].lag}"
        )

        ends = await admin.list_offsets({TP: OffsetSpec.latest()})
        print(f"end offset {ends[TP].offset}")

        # Reset the group to the start (only while the group has no active members).
        reset = await admin.alter_consumer_group_offsets(GROUP, {TP: 0})
        reset[TP].raise_on_error()
        offsets = await admin.list_consumer_group_offsets(GROUP, [TP])
        print(f"after reset: lag {offsets[TP].lag}")

        deleted = await admin.delete_consumer_groups([GROUP])
        deleted[GROUP].raise_on_error()
        print(f"group deleted: {await admin.list_consumer_group_offsets(GROUP) == {}}")
        await admin.delete_topics([TOPIC])


if __name__ == "__main__":
    asyncio.run(main())
