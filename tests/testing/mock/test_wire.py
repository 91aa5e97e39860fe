"""The mock over its in-memory transport, driven with our own codec (asyncio and trio)."""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
import pytest

from kclient.testing.mock import Err, MockCluster
from protocol.api import Request, Response
from protocol.framing import KafkaConnectionState
from protocol.messages import ApiKey
from protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.delete_records import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from protocol.messages.fetch import FetchPartition, FetchRequest, FetchResponse, FetchTopic
from protocol.messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from protocol.messages.metadata import MetadataRequest, MetadataResponse
from protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from protocol.messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)

from .helpers import raw_batch

pytestmark = pytest.mark.anyio
R = TypeVar("R", bound=Response)


class Client:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.state = KafkaConnectionState("wire-test")

    async def call(self, request: Request, version: int, expect: type[R]) -> R:
        _, frame = self.state.send_request(request, version)
        await self.stream.send(frame)
        with anyio.fail_after(10):
            while True:
                received = self.state.next_response()
                if received is not None:
                    assert isinstance(received.response, expect), received.error
                    return received.response
                self.state.receive_data(await self.stream.receive())


async def client(cluster: MockCluster, node: int = 1) -> Client:
    return Client(await cluster.connect(node))


def produce_req(topic: str, records: bytes, partition: int = 0) -> ProduceRequest:
    return ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=partition, records=records)]
            )
        ],
    )


async def produce(c: Client, records: bytes, topic: str = "t") -> tuple[int, int]:
    resp = await c.call(produce_req(topic, records), 9, ProduceResponse)
    part = resp.responses[0].partition_responses[0]
    return part.error_code, part.base_offset


def fetch_req(offset: int, **kw: Any) -> FetchRequest:
    return FetchRequest(
        max_wait_ms=kw.pop("max_wait_ms", 0),
        min_bytes=kw.pop("min_bytes", 0),
        max_bytes=1 << 20,
        session_id=kw.pop("session_id", 0),
        session_epoch=kw.pop("session_epoch", -1),
        topics=[
            FetchTopic(
                topic="t",
                partitions=[
                    FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)
                ],
            )
        ]
        if kw.pop("with_topics", True)
        else [],
        **kw,
    )


async def test_api_versions_and_unsupported_version() -> None:
    async with MockCluster() as cluster:
        c = await client(cluster)
        resp = await c.call(ApiVersionsRequest(), 3, ApiVersionsResponse)
        keys = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
        assert keys[ApiKey.PRODUCE][1] >= 9 and keys[ApiKey.END_TXN][1] == 4
        # a version above ours is answered in v0 layout with UNSUPPORTED_VERSION
        raw = bytearray(b"\x00\x00\x00\x00\x00\x12\x00\x63\x00\x00\x00\x07\x00\x00")
        raw[0:4] = (len(raw) - 4).to_bytes(4, "big")
        await c.stream.send(bytes(raw))
        data = await c.stream.receive()
        body = ApiVersionsResponse.decode(data[8:], 0)
        assert data[4:8] == b"\x00\x00\x00\x07" and body.error_code == Err.UNSUPPORTED_VERSION


async def test_idempotent_produce_errors_on_the_wire() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        c = await client(cluster)

        def seq(s: int, epoch: int = 0) -> bytes:
            return raw_batch([b"x"], producer_id=5, epoch=epoch, base_sequence=s)

        assert await produce(c, seq(3)) == (Err.UNKNOWN_PRODUCER_ID, -1)
        assert await produce(c, seq(0)) == (0, 0)
        assert await produce(c, seq(1)) == (0, 1)
        assert await produce(c, seq(1)) == (Err.DUPLICATE_SEQUENCE_NUMBER, 1)
        assert (await produce(c, seq(5)))[0] == Err.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert (await produce(c, seq(0, epoch=1)))[0] == 0
        assert (await produce(c, seq(2, epoch=0)))[0] == Err.INVALID_PRODUCER_EPOCH
        assert (await produce(c, b"garbage-not-a-batch"))[0] == Err.CORRUPT_MESSAGE


async def test_not_leader_and_partition_scoped_faults() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t", partitions=2)  # p0 on broker 1, p1 on broker 2
        c1 = await client(cluster, 1)
        resp = await c1.call(produce_req("t", raw_batch([b"a"]), partition=1), 10, ProduceResponse)
        part = resp.responses[0].partition_responses[0]
        assert part.error_code == Err.NOT_LEADER_OR_FOLLOWER
        assert part.current_leader.leader_id == 2
        assert [e.node_id for e in resp.node_endpoints] == [2]
        cluster.fail_next(ApiKey.PRODUCE, Err.NOT_ENOUGH_REPLICAS, topic="t", partition=0, count=2)
        assert (await produce(c1, raw_batch([b"a"])))[0] == Err.NOT_ENOUGH_REPLICAS
        assert (await produce(c1, raw_batch([b"a"])))[0] == Err.NOT_ENOUGH_REPLICAS
        assert await produce(c1, raw_batch([b"a"])) == (0, 0)
        assert [r.api_key for r in cluster.requests] == [ApiKey.PRODUCE] * 4
        # a broker-scoped rule leaves the other broker alone
        cluster.fail_next(ApiKey.METADATA, Err.UNKNOWN_SERVER_ERROR, broker=2)
        c2 = await client(cluster, 2)
        ok = await c1.call(MetadataRequest(topics=None), 12, MetadataResponse)
        failed = await c2.call(MetadataRequest(topics=None), 12, MetadataResponse)
        again = await c2.call(MetadataRequest(topics=None), 12, MetadataResponse)
        assert [t.error_code for t in ok.topics] == [0]
        assert [t.error_code for t in failed.topics] == [Err.UNKNOWN_SERVER_ERROR]
        assert [t.error_code for t in again.topics] == [0]


async def test_fetch_sessions_min_bytes_and_offsets() -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        c = await client(cluster)
        await produce(c, raw_batch([b"a", b"b"]))
        # create a session (epoch 0): full response with the partition
        full = await c.call(fetch_req(0, session_epoch=0), 12, FetchResponse)
        sid = full.session_id
        assert sid > 0 and full.responses[0].partitions[0].high_watermark == 2
        # incremental with the new position, nothing new: the partition is left out
        inc = await c.call(fetch_req(2, session_id=sid, session_epoch=1), 12, FetchResponse)
        assert inc.responses == []
        wrong = await c.call(fetch_req(2, session_id=sid, session_epoch=7), 12, FetchResponse)
        assert wrong.error_code == Err.INVALID_FETCH_SESSION_EPOCH
        # min_bytes: the fetch parks until another connection produces
        c2 = await client(cluster)
        async with anyio.create_task_group() as tg:
            result: list[FetchResponse] = []

            async def long_poll() -> None:
                result.append(
                    await c.call(
                        fetch_req(
                            2,
                            session_id=sid,
                            session_epoch=2,
                            with_topics=False,
                            max_wait_ms=5000,
                            min_bytes=1,
                        ),
                        12,
                        FetchResponse,
                    )
                )

            tg.start_soon(long_poll)
            await anyio.sleep(0.05)
            await produce(c2, raw_batch([b"c"]))
        assert result[0].responses[0].partitions[0].high_watermark == 3
        assert result[0].responses[0].partitions[0].records
        # DeleteRecords, then earliest/latest and out-of-range fetches
        await c.call(
            DeleteRecordsRequest(
                topics=[
                    DeleteRecordsTopic(
                        name="t", partitions=[DeleteRecordsPartition(partition_index=0, offset=2)]
                    )
                ]
            ),
            2,
            Response,
        )
        lo = await c.call(
            ListOffsetsRequest(
                topics=[
                    ListOffsetsTopic(
                        name="t", partitions=[ListOffsetsPartition(partition_index=0, timestamp=-2)]
                    )
                ]
            ),
            7,
            ListOffsetsResponse,
        )
        assert lo.topics[0].partitions[0].offset == 2
        oor = await c.call(fetch_req(0), 12, FetchResponse)
        assert oor.responses[0].partitions[0].error_code == Err.OFFSET_OUT_OF_RANGE


async def test_leader_epoch_after_move_and_broker_down_metadata() -> None:
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        c1 = await client(cluster, 1)
        await produce(c1, raw_batch([b"a"]))
        cluster.move_leader("t", 0, 2)
        c2 = await client(cluster, 2)
        await produce(c2, raw_batch([b"b", b"c"]))
        resp = await c2.call(
            OffsetForLeaderEpochRequest(
                topics=[
                    OffsetForLeaderTopic(
                        topic="t",
                        partitions=[
                            OffsetForLeaderPartition(
                                partition=0, current_leader_epoch=1, leader_epoch=0
                            )
                        ],
                    )
                ]
            ),
            4,
            OffsetForLeaderEpochResponse,
        )
        part = resp.topics[0].partitions[0]
        assert (part.error_code, part.leader_epoch, part.end_offset) == (0, 0, 1)
        stale = await c2.call(
            fetch_req(
                0,
            ),
            12,
            FetchResponse,
        )
        assert stale.responses[0].partitions[0].error_code == 0
        await cluster.broker_down(2)
        meta = await c1.call(MetadataRequest(topics=None), 12, MetadataResponse)
        assert [b.node_id for b in meta.brokers] == [1]
        assert meta.topics[0].partitions[0].error_code == Err.LEADER_NOT_AVAILABLE
        with pytest.raises(ConnectionRefusedError):
            await cluster.connect(2)
        await cluster.broker_up(2)
        meta = await c1.call(MetadataRequest(topics=None), 1, MetadataResponse)
        assert sorted(b.node_id for b in meta.brokers) == [1, 2]
        assert cluster.errors == []
