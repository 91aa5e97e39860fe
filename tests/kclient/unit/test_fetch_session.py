"""KIP-227 fetch session handler: request diffs and error resets."""

from __future__ import annotations

import uuid

import pytest

from kclient.consumer._errors import ErrorCode
from kclient.consumer.fetch_session import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    FetchPartitionData,
    FetchSessionHandler,
)
from kclient.errors import IllegalStateError
from kclient.structs import TopicPartition as TP

A0, A1, B0 = TP("a", 0), TP("a", 1), TP("b", 0)


def d(offset: int, topic_id: uuid.UUID | None = None) -> FetchPartitionData:
    return FetchPartitionData(fetch_offset=offset, max_bytes=1024, topic_id=topic_id)


def established() -> FetchSessionHandler:
    h = FetchSessionHandler(1)
    req = h.build({A0: d(0), A1: d(0)})
    assert req.is_full and (req.session_id, req.epoch) == (0, INITIAL_EPOCH)
    assert h.handle_response(req, 0, 77, [A0])
    assert (h.session_id, h.epoch) == (77, 1)
    return h


def test_incremental_sends_only_added_and_altered_and_forgets_removed() -> None:
    h = established()
    req = h.build({A0: d(10), B0: d(0)})  # A0 altered, A1 removed, B0 added
    assert not req.is_full and (req.session_id, req.epoch) == (77, 1)
    assert req.to_send == {A0: d(10), B0: d(0)}
    assert req.to_forget == {A1: d(0)}
    assert h.handle_response(req, 0, 77, [B0])
    assert h.epoch == 2
    unchanged = h.build({A0: d(10), B0: d(0)})
    assert unchanged.to_send == {} and unchanged.to_forget == {}


def test_topic_id_change_forgets_old_and_adds_new() -> None:
    old, new = uuid.uuid4(), uuid.uuid4()
    h = FetchSessionHandler(1)
    req = h.build({A0: d(0, old)})
    h.handle_response(req, 0, 5, [])
    req = h.build({A0: d(0, new)})
    assert req.to_forget == {A0: d(0, old)} and req.to_send == {A0: d(0, new)}


@pytest.mark.parametrize(
    ("code", "session_after", "epoch_after"),
    [
        (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, 0, INITIAL_EPOCH),
        (ErrorCode.INVALID_FETCH_SESSION_EPOCH, 77, INITIAL_EPOCH),
        (ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR, 77, INITIAL_EPOCH),
    ],
)
def test_session_errors_reset_to_full(code: int, session_after: int, epoch_after: int) -> None:
    h = established()
    req = h.build({A0: d(5)})
    assert not h.handle_response(req, code, 0, [])
    assert (h.session_id, h.epoch) == (session_after, epoch_after)
    full = h.build({A0: d(5), A1: d(5)})
    assert full.is_full and full.to_send == {A0: d(5), A1: d(5)}


def test_unrequested_partition_in_response_resets() -> None:
    h = established()
    req = h.build({A0: d(1)})
    assert not h.handle_response(req, 0, 77, [B0])
    assert h.epoch == INITIAL_EPOCH


def test_transport_error_and_stale_response() -> None:
    h = established()
    req = h.build({A0: d(1)})
    h.handle_error(req)
    assert h.epoch == INITIAL_EPOCH and h.session_id == 77
    assert not h.handle_response(req, 0, 77, [])  # the late answer changes nothing
    assert h.epoch == INITIAL_EPOCH


def test_broker_without_session_and_one_in_flight() -> None:
    h = FetchSessionHandler(1)
    req = h.build({A0: d(0)})
    with pytest.raises(IllegalStateError):
        h.build({A0: d(0)})
    assert h.handle_response(req, 0, 0, [A0])
    assert h.build({A0: d(1)}).is_full


def test_sessionless_mode_and_close() -> None:
    h = FetchSessionHandler(1, use_sessions=False)
    req = h.build({A0: d(0)})
    assert (req.session_id, req.epoch) == (0, FINAL_EPOCH)
    assert h.handle_response(req, 0, 0, [A0])
    assert h.close_request() is None
    e = established()
    assert e.close_request() == (77, FINAL_EPOCH)


def test_epoch_wraps_to_one() -> None:
    h = established()
    h.epoch = 2**31 - 1
    req = h.build({A0: d(0), A1: d(0)})
    h.handle_response(req, 0, 77, [])
    assert h.epoch == 1
