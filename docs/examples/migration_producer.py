"""The same producer code in aiokafka (before) and kclient (after).

Usage: python migration_producer.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "migration".
"""

import asyncio
import os
import sys

from kclient import AsyncAdmin, NewTopic

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "migration"


async def before() -> None:
    # --8<-- [start:before]
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, max_batch_size=32768)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(TOPIC, b"o-1", key=b"c-7")
    finally:
        await producer.stop()
    # --8<-- [end:before]
    print(f"aiokafka wrote offset {metadata.offset}")


async def after() -> None:
    # --8<-- [start:after]
    from kclient import AsyncProducer

    # max_batch_size is batch_size; idempotence and acks="all" are on by default
    async with AsyncProducer(bootstrap_servers=BOOTSTRAP, batch_size=32768) as producer:
        metadata = await producer.send_and_wait(TOPIC, b"o-2", key=b"c-7")
    # --8<-- [end:after]
    print(f"kclient wrote offset {metadata.offset}")


async def main() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        # one partition, created up front (auto-creation would use the broker's default count)
        (await admin.create_topics([NewTopic(TOPIC, 1, 1)]))[TOPIC].raise_on_error()
    await before()
    await after()


if __name__ == "__main__":
    asyncio.run(main())
