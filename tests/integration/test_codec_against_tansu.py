"""The codec alone, over a plain blocking socket, against the real Tansu broker.

No kclient networking is involved: this checks that what `protocol` encodes is
what a real broker understands, and that what the broker sends back decodes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from protocol.api import Request, Response
from protocol.compression import Codec
from protocol.framing import KafkaConnectionState
from protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from protocol.messages.create_topics import CreatableTopic, CreateTopicsRequest
from protocol.messages.fetch import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from protocol.messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import NewRecord, build_batch, read_batches

pytestmark = pytest.mark.integration


class CodecClient:
    """Just enough of a client: one socket, one framing state, one request at a time."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        assert host.startswith("127."), "tests only talk to loopback"
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.state = KafkaConnectionState("kclient-codec-test")
        self.versions: dict[int, tuple[int, int]] = {}

    def close(self) -> None:
        self.sock.close()

    def call(self, request: Request, version: int) -> Response:
        _, frame = self.state.send_request(request, version)
        self.sock.sendall(frame)
        while True:
            received = self.state.next_response()
            if received is not None:
                assert received.error is None, received.error
                assert received.response is not None
                return received.response
            chunk = self.sock.recv(65536)
            assert chunk, "broker closed the connection"
            self.state.receive_data(chunk)

    def version_for(self, request_cls: type[Request]) -> int:
        low, high = self.versions[request_cls.API_KEY]
        version = min(high, request_cls.MAX_VERSION)
        assert version >= max(low, request_cls.MIN_VERSION)
        return version


@pytest.fixture
def client(tansu_bootstrap: str) -> Iterator[CodecClient]:
    codec_client = CodecClient(tansu_bootstrap)
    response = codec_client.call(
        ApiVersionsRequest(client_software_name="kclient-tests", client_software_version="0"), 3
    )
    assert isinstance(response, ApiVersionsResponse)
    assert response.error_code == 0
    codec_client.versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    yield codec_client
    codec_client.close()


def sample_records(count: int) -> list[NewRecord]:
    records = []
    for i in range(count):
        key = None if i % 5 == 0 else f"key-{i}".encode()
        value = None if i % 7 == 3 else (f"value-{i}-".encode() * (i % 4 + 1))
        headers = [("h", f"{i}".encode()), ("empty", None)] if i % 2 else []
        records.append(NewRecord(1_700_000_000_000 + i, key, value, headers))
    return records


def create_topic(client: CodecClient, name: str) -> None:
    version = client.version_for(CreateTopicsRequest)
    request = CreateTopicsRequest(
        topics=[CreatableTopic(name=name, num_partitions=1, replication_factor=1)],
        timeout_ms=10_000,
    )
    response = client.call(request, version)
    assert [(t.name, t.error_code) for t in response.topics] == [(name, 0)]  # type: ignore[attr-defined]


def topic_id_of(client: CodecClient, name: str) -> object:
    version = client.version_for(MetadataRequest)
    response = client.call(MetadataRequest(topics=[MetadataRequestTopic(name=name)]), version)
    (topic,) = response.topics  # type: ignore[attr-defined]
    assert topic.error_code == 0 and len(topic.partitions) == 1
    return topic.topic_id


@pytest.mark.parametrize("codec", list(Codec), ids=lambda c: c.name.lower())
def test_produce_then_fetch_round_trips_every_codec(client: CodecClient, codec: Codec) -> None:
    topic = f"codec-{codec.name.lower()}"
    create_topic(client, topic)
    records = sample_records(50)
    batch = build_batch(records, codec=codec)

    produce_version = client.version_for(ProduceRequest)
    produce = ProduceRequest(
        acks=-1,
        timeout_ms=10_000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=0, records=batch)]
            )
        ],
    )
    produced = client.call(produce, produce_version)
    (topic_response,) = produced.responses  # type: ignore[attr-defined]
    (partition_response,) = topic_response.partition_responses
    assert partition_response.error_code == 0
    assert partition_response.base_offset == 0

    fetch_version = client.version_for(FetchRequest)
    fetch = FetchRequest(
        replica_id=-1,
        max_wait_ms=500,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=topic,
                topic_id=topic_id_of(client, topic),  # type: ignore[arg-type]
                partitions=[
                    FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
                ],
            )
        ],
    )
    fetched = client.call(fetch, fetch_version)
    assert fetched.error_code == 0  # type: ignore[attr-defined]
    (fetched_topic,) = fetched.responses  # type: ignore[attr-defined]
    (fetched_partition,) = fetched_topic.partitions
    assert fetched_partition.error_code == 0
    data = fetched_partition.records
    assert data is not None

    (read,) = list(read_batches(data))
    assert read.codec == codec
    # Apart from the fields the broker owns (base offset, leader epoch), the
    # stored batch is exactly what we sent, so its CRC'd part is byte-identical.
    assert bytes(data)[21:] == batch[21:]
    decoded = [(r.timestamp, r.key, r.value, list(r.headers)) for r in read.records()]
    expected = [(r.timestamp, r.key, r.value, list(r.headers)) for r in records]
    assert decoded == expected
    assert [r.offset for r in read.records()] == list(range(len(records)))
