"""Pure request builders and response readers of the admin client."""

from __future__ import annotations

from kclient.admin import _groups, _topics
from kclient.admin._routing import Retry, leaders_of, retry_for_code
from kclient.admin.results import GroupOffset, ListOffsetsResult, NewTopic
from kclient.errors import NotControllerError, TopicExistsError
from kclient.structs import OffsetAndMetadata, TopicPartition
from protocol.messages.create_topics import CreatableTopicResult, CreateTopicsResponse
from protocol.messages.metadata import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)


def test_routing_codes_retry_and_others_are_final() -> None:
    assert isinstance(retry_for_code(41, "t"), Retry)
    load = retry_for_code(14, "g")
    assert load is not None and load.reroute is False
    assert retry_for_code(36, "t") is None and retry_for_code(0, "t") is None


def test_create_topics_reader_keeps_items_apart() -> None:
    response = CreateTopicsResponse(
        topics=[
            CreatableTopicResult(name="a", error_code=36, error_message="exists"),
            CreatableTopicResult(name="b", num_partitions=3),
            CreatableTopicResult(name="c", error_code=41),
        ]
    )
    out = _topics.create_topics_outcomes(response, ["a", "b", "c", "d"])
    assert isinstance(out["a"], TopicExistsError) and "exists" in str(out["a"])
    assert not isinstance(out["b"], (Exception, Retry)) and out["b"].num_partitions == 3
    assert isinstance(out["c"], Retry) and isinstance(out["c"].error, NotControllerError)
    assert "missing from the broker's response" in str(out["d"])


def test_fields_follow_the_negotiated_version() -> None:
    assert _topics.delete_topics_request(["x"], 10, 5).topic_names == ["x"]
    assert _topics.delete_topics_request(["x"], 10, 6).topics[0].name == "x"
    tps = [TopicPartition("t", 1), TopicPartition("t", 0)]
    assert _groups.offset_fetch_request("g", tps, 7).group_id == "g"
    new = _groups.offset_fetch_request("g", tps, 8).groups[0]
    assert new.group_id == "g" and new.topics is not None
    assert new.topics[0].partition_indexes == [0, 1]
    assert not _topics.create_topics_request([NewTopic("t")], True, 5, 0).validate_only


def test_lag_is_end_minus_committed() -> None:
    tp = TopicPartition("t", 0)
    offsets = {tp: GroupOffset(committed=OffsetAndMetadata(4))}
    merged = _groups.with_end_offsets(offsets, {tp: ListOffsetsResult(offset=10)})
    assert merged[tp].lag == 6 and merged[tp].end_offset == 10
    assert GroupOffset(committed=None, end_offset=10).lag is None


def test_leaders_of_reports_missing_leaders_and_topic_errors() -> None:
    response = MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=1, host="h", port=1)],
        topics=[
            MetadataResponseTopic(
                name="t",
                partitions=[
                    MetadataResponsePartition(partition_index=0, leader_id=1),
                    MetadataResponsePartition(partition_index=1, leader_id=-1),
                ],
            ),
            MetadataResponseTopic(name="gone", error_code=3),
        ],
    )
    found = leaders_of(response)
    assert found[("t", 0)] == 1
    assert type(found[("t", 1)]).__name__ == "LeaderNotAvailableError"
    assert type(found[("gone", -1)]).__name__ == "UnknownTopicOrPartitionError"
