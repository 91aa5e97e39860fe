"""Produce ten records and consume them back, with the async clients on asyncio.

Usage: python quickstart_asyncio.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "quickstart".
"""

import asyncio
import os
import sys

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer, NewTopic
from kclient.errors import TopicExistsError

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "quickstart"
COUNT = 10


async def main() -> None:
    # --8<-- [start:create]
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        result = await admin.create_topics(
            [NewTopic(TOPIC, num_partitions=3, replication_factor=1)]
        )
        if not isinstance(result[TOPIC].error, TopicExistsError):  # fine if it exists
            result[TOPIC].raise_on_error()
    # --8<-- [end:create]

    # Idempotent with acks=all by default; leaving the block flushes what is queued.
    async with AsyncProducer(bootstrap_servers=BOOTSTRAP) as producer:
        deliveries = [
            await producer.send(TOPIC, f"hello {i}".encode(), key=f"k{i}".encode())
            for i in range(COUNT)
        ]
        for delivery in deliveries:
            metadata = await delivery  # RecordMetadata(topic, partition, offset, timestamp)
        print(f"produced {COUNT} records, last at offset {metadata.offset}")

    async with AsyncConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{TOPIC}-readers",
        auto_offset_reset="earliest",  # no committed offset yet: start at the beginning
        enable_auto_commit=False,
    ) as consumer:
        seen = 0
        async for record in consumer:
            print(record.partition, record.offset, record.key, record.value)
            seen += 1
            if seen == COUNT:
                break
        await consumer.commit()  # everything handed out so far
    print(f"consumed {seen} records")


if __name__ == "__main__":
    asyncio.run(main())
