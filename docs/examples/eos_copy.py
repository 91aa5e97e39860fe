"""Exactly-once copy: consume a topic, transform each record, produce the result, and
commit the consumed offsets in the same transaction (AsyncGroupTransactSession).

Usage: python eos_copy.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "eos-demo".
The copy goes to TOPIC + "-upper". Stop it and start it again at any point: it goes on
from the last committed transaction, and nothing is copied twice.
"""

import asyncio
import os
import sys

import anyio

from kclient import (
    AsyncAdmin,
    AsyncConsumer,
    AsyncGroupTransactSession,
    AsyncProducer,
    NewTopic,
    TopicPartition,
)
from kclient.eos import Batches
from kclient.errors import TopicExistsError

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
SOURCE = sys.argv[2] if len(sys.argv) > 2 else "eos-demo"
TARGET = SOURCE + "-upper"
COUNT = 100


async def setup() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        result = await admin.create_topics([NewTopic(t, 1, 1) for t in (SOURCE, TARGET)])
        for topic in (SOURCE, TARGET):
            if not isinstance(result[topic].error, TopicExistsError):
                result[topic].raise_on_error()
    async with AsyncProducer(bootstrap_servers=BOOTSTRAP) as producer:
        for i in range(COUNT):
            await producer.send(SOURCE, f"record {i}".encode())
    print(f"produced {COUNT} records to {SOURCE}")


async def copy() -> None:
    # --8<-- [start:session]
    consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{SOURCE}-copier",
        isolation_level="read_committed",  # never copy an aborted upstream record
        enable_auto_commit=False,  # offsets commit inside the transactions
        auto_offset_reset="earliest",
    )
    # One transactional_id per copier instance: a restarted instance fences the old one.
    producer = AsyncProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"{SOURCE}-copier-1")
    done = anyio.Event()
    copied = 0

    async def upper(batches: Batches[bytes, bytes]) -> None:  # one call per polled batch
        nonlocal copied
        for records in batches.values():
            for record in records:
                await producer.send(TARGET, record.value.upper(), key=record.key)
            copied += len(records)
        if copied >= COUNT:
            done.set()  # run() commits this batch, then returns

    async with consumer, producer, AsyncGroupTransactSession(consumer, producer) as session:
        consumer.subscribe([SOURCE])
        await session.run(upper, timeout_ms=500, stop=done)
    # --8<-- [end:session]
    print(f"copied {copied} records in {session.committed_transactions} transaction(s)")


async def check() -> None:
    reader: AsyncConsumer[bytes, bytes] = AsyncConsumer(
        bootstrap_servers=BOOTSTRAP, isolation_level="read_committed", auto_offset_reset="earliest"
    )
    async with reader:
        reader.assign([TopicPartition(TARGET, 0)])
        values: list[bytes | None] = []
        with anyio.fail_after(30):
            while len(values) < COUNT:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    values.extend(r.value for r in records)
    expected = [f"RECORD {i}".encode() for i in range(COUNT)]
    verdict = "exactly once, in order" if values == expected else "MISMATCH"
    print(f"read back {len(values)} records from {TARGET}: {verdict}")


async def main() -> None:
    await setup()
    await copy()
    await check()


if __name__ == "__main__":
    asyncio.run(main())
