"""protocol.errors: generated from errors.tsv; every code maps to a class."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from protocol import errors
from protocol._errors_base import BrokerResponseError, KafkaError
from protocol.errors import (
    ERRORS_BY_CODE,
    NotLeaderOrFollowerError,
    OffsetOutOfRangeError,
    UnknownServerError,
    UnknownTopicOrPartitionError,
    error_for_code,
    raise_for_code,
)

SPECS = Path(__file__).resolve().parents[3] / "shared" / "kafka-message-specs"
TSV = SPECS / "errors.tsv"


def _rows() -> list[dict[str, str]]:
    with TSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


needs_tsv = pytest.mark.skipif(not TSV.exists(), reason=f"{TSV} not present")


@needs_tsv
def test_every_tsv_code_maps_with_matching_flags() -> None:
    rows = _rows()
    assert rows
    for row in rows:
        code = int(row["code"])
        if code == 0:
            assert 0 not in ERRORS_BY_CODE
            continue
        cls = error_for_code(code)
        assert cls is ERRORS_BY_CODE[code]
        assert cls.errno == code
        assert cls.error_name == row["name"]
        assert cls.retriable is (row["retriable"] == "true"), row
        assert cls.__name__ == row["exception_class"].replace("Exception", "Error")
        assert issubclass(cls, BrokerResponseError)
        assert cls.__doc__ and "\n" not in cls.__doc__.strip()
    assert len(ERRORS_BY_CODE) == len(rows) - 1


def test_unknown_code_keeps_its_number() -> None:
    cls = error_for_code(32000)
    assert issubclass(cls, UnknownServerError)
    assert cls is not UnknownServerError
    assert cls.errno == 32000
    assert error_for_code(32000) is cls  # cached
    with pytest.raises(UnknownServerError) as info:
        raise_for_code(32000, "boom")
    assert info.value.errno == 32000
    assert "32000" in str(info.value) and "boom" in str(info.value)


def test_raise_for_code() -> None:
    raise_for_code(0)  # no error
    with pytest.raises(OffsetOutOfRangeError) as info:
        raise_for_code(1, "offset 5")
    assert info.value.message == "offset 5"
    assert isinstance(info.value, KafkaError)


def test_invalid_metadata_flags() -> None:
    assert UnknownTopicOrPartitionError.invalid_metadata
    assert NotLeaderOrFollowerError.invalid_metadata
    assert not OffsetOutOfRangeError.invalid_metadata
    assert not errors.NotCoordinatorError.invalid_metadata
    flagged = {cls.error_name for cls in ERRORS_BY_CODE.values() if cls.invalid_metadata}
    assert {
        "UNKNOWN_TOPIC_OR_PARTITION",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_OR_FOLLOWER",
        "FENCED_LEADER_EPOCH",
        "UNKNOWN_LEADER_EPOCH",
        "KAFKA_STORAGE_ERROR",
        "REPLICA_NOT_AVAILABLE",
        "UNKNOWN_TOPIC_ID",
        "INCONSISTENT_TOPIC_ID",
        "BROKER_NOT_AVAILABLE",
        "NOT_CONTROLLER",
    } <= flagged


def test_all_exports_exist() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name)
