"""Transactions with the async clients: commit, abort, read_committed, and a manual
consume-transform-produce loop that commits its input offsets in the transaction.

Usage: python txn_basic.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "txn-demo".
The copy goes to TOPIC + "-copy". Run it against a broker that hides aborted records from
read_committed readers (Apache Kafka, kclient.testing.MockCluster; not Tansu 0.6).
"""

import asyncio
import os
import sys

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer, NewTopic, TopicPartition
from kclient.errors import (
    TopicExistsError,
    TransactionAbortableError,
    TransactionOutcomeUnknownError,
)

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "txn-demo"
COPY = TOPIC + "-copy"


async def setup() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        result = await admin.create_topics([NewTopic(t, 1, 1) for t in (TOPIC, COPY)])
        for topic in (TOPIC, COPY):
            if not isinstance(result[topic].error, TopicExistsError):  # fine if it exists
                result[topic].raise_on_error()


# --8<-- [start:retry]
async def produce_atomically(producer: AsyncProducer, topic: str, values: list[bytes]) -> None:
    """All of ``values`` or none of them, retrying a transaction that had to abort.

    TransactionFatalError (ProducerFencedError: another instance took over this
    transactional_id) propagates: the producer is unusable, and leaving its `async with`
    closes it. TransactionOutcomeUnknownError propagates too: the commit may or may not
    have landed, so running the transaction again could write the values twice.
    """
    for attempt in range(1, 4):
        try:
            async with producer.transaction():  # begin; commit when the block ends
                for value in values:
                    await producer.send(topic, value)
            return
        except TransactionAbortableError as exc:
            # The block has aborted the transaction already: run it again.
            print(f"attempt {attempt} aborted ({exc}); retrying")
    raise RuntimeError(f"gave up after {attempt} attempts")
    # --8<-- [end:retry]


async def produce() -> None:
    # --8<-- [start:producer]
    # transactional_id names this producer across restarts: starting the producer
    # initialises transactions, fencing an older instance with the same id and aborting
    # whatever that instance left open.
    async with AsyncProducer(
        bootstrap_servers=BOOTSTRAP, transactional_id=f"{TOPIC}-writer"
    ) as producer:
        await produce_atomically(producer, TOPIC, [b"order-1", b"order-2", b"order-3"])
        print("committed 3 records")

        # The same with explicit calls; this time the transaction is aborted.
        await producer.begin_transaction()
        for value in (b"draft-1", b"draft-2"):
            await producer.send_and_wait(TOPIC, value)  # written to the log...
        await producer.abort_transaction()  # ...but never visible to read_committed
        print("aborted 2 records")
    # --8<-- [end:producer]


async def read(isolation_level: str) -> list[bytes | None]:
    # --8<-- [start:read]
    tp = TopicPartition(TOPIC, 0)
    async with AsyncConsumer(
        bootstrap_servers=BOOTSTRAP,
        isolation_level=isolation_level,  # "read_committed" hides open and aborted transactions
        auto_offset_reset="earliest",
    ) as consumer:
        consumer.assign([tp])
        # read_committed: the end offset is the last stable offset (the first still open)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes | None] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values.extend(record.value for record in records)
    # --8<-- [end:read]
    return values


async def copy(count: int) -> None:
    # --8<-- [start:copy]
    consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{TOPIC}-copier",
        isolation_level="read_committed",  # never copy an aborted upstream record
        enable_auto_commit=False,  # the offsets commit inside the transactions
        auto_offset_reset="earliest",
    )
    producer = AsyncProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"{TOPIC}-copier-1")
    copied = 0
    async with consumer, producer:
        while copied < count:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            await producer.begin_transaction()
            try:
                for records in batches.values():
                    for record in records:
                        await producer.send(COPY, record.value.upper(), key=record.key)
                offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
                # KIP-447: the group coordinator refuses these offsets if this consumer's
                # generation is over (a rebalance gave its partitions to another member).
                await producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                await producer.commit_transaction()
            except (TransactionAbortableError, TransactionOutcomeUnknownError):
                # Abort (after an unknown outcome this re-initialises the producer, which
                # settles the old transaction), then rewind the input to what the group
                # really committed, or to this batch's start where nothing is committed.
                # A partition no longer assigned needs nothing: its next owner starts at
                # the committed offset.
                await producer.abort_transaction()
                moved = await consumer.seek_to_committed(*batches)
                for tp, records in batches.items():
                    if tp not in moved and tp in consumer.assignment():
                        consumer.seek(tp, records[0].offset)
                continue
            copied += sum(len(records) for records in batches.values())
        committed = await consumer.committed(TopicPartition(TOPIC, 0))
    # --8<-- [end:copy]
    print(f"copied {copied} records; the group's committed offset is {committed}")


async def main() -> None:
    await setup()
    await produce()
    print(f"read_committed sees {await read('read_committed')}")
    print(f"read_uncommitted sees {await read('read_uncommitted')}")
    await copy(3)


if __name__ == "__main__":
    asyncio.run(main())
