"""Interim demo: a produce/fetch round trip against the embedded Tansu broker.

Until ``python -m kclient demo`` exists (the producer and consumer are being
built), this shows what is there: the embedded broker, a kclient connection
(anyio, version negotiation), and the codec. It creates a topic, produces
record batches in every compression codec, fetches them back, checks every
record, and prints the throughput and the API versions the broker advertises.

    python scripts/codec_demo.py               # the round trip (default 100,000 records)
    python scripts/codec_demo.py --records 5000
    python scripts/codec_demo.py --markdown    # the API version table for tansu-quirks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kclient.net.connection import BrokerConnection, connect
from kclient.testing import TansuBroker
from protocol.compression import Codec
from protocol.messages import REGISTRY
from protocol.messages.create_topics import CreatableTopic, CreateTopicsRequest
from protocol.messages.fetch import FetchPartition, FetchRequest, FetchResponse, FetchTopic
from protocol.messages.metadata import MetadataRequest, MetadataRequestTopic, MetadataResponse
from protocol.messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from protocol.records import NewRecord, build_batch, read_batches

BATCH_RECORDS = 1000


def make_records(start: int, count: int) -> list[NewRecord]:
    now = int(time.time() * 1000)
    return [
        NewRecord(now, f"key-{i}".encode(), f"value-{i:08d}-".encode().ljust(100, b"x"))
        for i in range(start, start + count)
    ]


async def create_topic(conn: BrokerConnection, topic: str) -> object:
    request = CreateTopicsRequest(
        topics=[CreatableTopic(name=topic, num_partitions=1, replication_factor=1)],
        timeout_ms=10_000,
    )
    await conn.request(request)
    metadata = await conn.request(MetadataRequest(topics=[MetadataRequestTopic(name=topic)]))
    assert isinstance(metadata, MetadataResponse)
    return metadata.topics[0].topic_id


async def produce(conn: BrokerConnection, topic: str, total: int, codec: Codec) -> None:
    for start in range(0, total, BATCH_RECORDS):
        batch = build_batch(make_records(start, min(BATCH_RECORDS, total - start)), codec=codec)
        partition = PartitionProduceData(index=0, records=batch)
        request = ProduceRequest(
            acks=-1,
            timeout_ms=10_000,
            topic_data=[TopicProduceData(name=topic, partition_data=[partition])],
        )
        response = await conn.request(request)
        assert isinstance(response, ProduceResponse)
        error = response.responses[0].partition_responses[0].error_code
        if error:
            raise SystemExit(f"produce failed with error code {error}")


async def fetch_all(conn: BrokerConnection, topic: str, topic_id: object, total: int) -> int:
    offset = 0
    while offset < total:
        partition = FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=4 << 20)
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=500,
            min_bytes=1,
            max_bytes=8 << 20,
            topics=[FetchTopic(topic=topic, topic_id=topic_id, partitions=[partition])],  # type: ignore[arg-type]
        )
        response = await conn.request(request)
        assert isinstance(response, FetchResponse)
        for batch in read_batches(response.responses[0].partitions[0].records or b""):
            for record in batch.records():
                if record.offset < offset:
                    continue
                expected = f"value-{record.offset:08d}-".encode().ljust(100, b"x")
                if record.offset != offset or record.value != expected:
                    raise SystemExit(f"record {offset} came back wrong: {record}")
                offset += 1
    return offset


async def round_trip(bootstrap: str, total: int) -> None:
    async with connect(bootstrap) as conn:
        print(f"connected to Tansu at {bootstrap}")
        for codec in Codec:
            topic = f"demo-{codec.name.lower()}"
            topic_id = await create_topic(conn, topic)
            started = time.perf_counter()
            await produce(conn, topic, total, codec)
            produced = time.perf_counter()
            got = await fetch_all(conn, topic, topic_id, total)
            fetched = time.perf_counter()
            print(
                f"  {codec.name.lower():<7} {got:>8,} records verified   "
                f"produce {total / (produced - started):>10,.0f} rec/s   "
                f"fetch {got / (fetched - produced):>10,.0f} rec/s"
            )


def print_versions(broker: TansuBroker, markdown: bool) -> None:
    """The broker's advertised ranges next to what our generated codec covers."""
    advertised = broker.api_versions
    rows = []
    for key, (low, high) in sorted(advertised.items()):
        if key in REGISTRY:
            cls = REGISTRY[key][0]
            name = cls.API_NAME
            ours = f"{cls.MIN_VERSION}-{cls.MAX_VERSION}"
            if cls.MIN_VERSION == cls.MAX_VERSION:
                ours = str(cls.MIN_VERSION)
        else:
            name, ours = f"api {key}", "-"
        rows.append((key, name, low, high, ours))
    if markdown:
        print("| key | API | Tansu min | Tansu max | spec validVersions |")
        print("|---:|---|---:|---:|---|")
        for row in rows:
            print("| {} | {} | {} | {} | {} |".format(*row))
        return
    for key, name, low, high, ours in rows:
        print(f"  {key:>3} {name:<28} Tansu {low}-{high:<4} ours {ours}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--markdown", action="store_true", help="print only the version table")
    parser.add_argument("--versions", action="store_true", help="also print the version table")
    args = parser.parse_args()
    with TansuBroker() as broker:
        if args.markdown:
            print_versions(broker, markdown=True)
            return
        anyio.run(round_trip, broker.bootstrap_servers, args.records)
        if args.versions:
            print_versions(broker, markdown=False)
    print("demo finished: every record came back intact")


if __name__ == "__main__":
    main()
