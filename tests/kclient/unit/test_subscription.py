"""SubscriptionState: types, positions, staleness epochs, commit positions."""

from __future__ import annotations

import re

import pytest

from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState, SubscriptionType
from kclient.errors import IllegalStateError
from kclient.structs import OffsetAndMetadata
from kclient.structs import TopicPartition as TP

A0, A1, B0 = TP("a", 0), TP("a", 1), TP("b", 0)


def assigned(*tps: TP) -> SubscriptionState:
    s = SubscriptionState(OffsetResetStrategy.EARLIEST)
    s.assign_from_user(tps)
    return s


def test_subscribe_and_assign_are_exclusive() -> None:
    s = SubscriptionState()
    assert s.subscribe(["a", "b"]) is True
    assert s.subscribe(["b", "a"]) is False
    with pytest.raises(IllegalStateError):
        s.assign_from_user([A0])
    with pytest.raises(IllegalStateError):
        s.subscribe_pattern("a.*")
    s.unsubscribe()
    s.assign_from_user([A0])
    assert s.type is SubscriptionType.USER_ASSIGNED and s.metadata_topics() == {"a"}


def test_pattern_matching_excludes_internal_topics() -> None:
    s = SubscriptionState()
    s.subscribe_pattern(re.compile("orders.*|__.*"))
    assert s.update_matched_topics(
        ["orders-1", "payments", "__consumer_offsets"], {"__consumer_offsets"}
    )
    assert s.subscription() == {"orders-1"}
    assert not s.update_matched_topics(["orders-1", "payments"])
    assert s.update_matched_topics(["orders-1", "orders-2"])


@pytest.mark.parametrize(
    ("setup", "fetchable"),
    [
        (lambda s: None, []),  # no positions yet
        (lambda s: (s.seek(A0, 5), s.seek(A1, 0)), [A0, A1]),
        (lambda s: (s.seek(A0, 5), s.seek(A1, 0), s.pause([A1])), [A0]),
        (lambda s: (s.seek(A0, 5), s.request_offset_reset(A0)), []),
        (lambda s: (s.seek(A0, 5), s.seek(A1, 1), s.mark_pending_revocation([A0])), [A1]),
    ],
)
def test_fetchable_partitions(setup: object, fetchable: list[TP]) -> None:
    s = assigned(A0, A1)
    setup(s)  # type: ignore[operator]
    assert s.fetchable_partitions() == fetchable


def test_seek_makes_in_flight_data_stale() -> None:
    s = assigned(A0)
    s.seek(A0, 10)
    epoch = s.state(A0).epoch
    assert s.advance_fetch(A0, epoch, 20, 3)
    s.seek(A0, 100)
    assert not s.advance_fetch(A0, epoch, 30, 3)  # stale OOR / data for the old position
    assert not s.deliver(A0, epoch, 20, 3)
    assert s.position(A0) == 100 and s.state(A0).fetch_offset == 100


def test_reassignment_gives_a_new_epoch_and_drops_state() -> None:
    s = SubscriptionState()
    s.subscribe(["a"])
    s.assign_from_subscribed([A0, A1])
    s.seek(A0, 7)
    epoch = s.state(A0).epoch
    s.assign_from_subscribed([A1])
    s.add_assigned([A0])
    assert s.position(A0) is None and s.state(A0).epoch != epoch


def test_paused_data_is_not_stale() -> None:
    s = assigned(A0)
    s.seek(A0, 0)
    s.pause([A0])
    assert s.deliver(A0, s.state(A0).epoch, 5, -1)


def test_auto_commit_uses_positions_from_the_previous_poll() -> None:
    s = assigned(A0)
    s.seek(A0, 0)
    epoch = s.state(A0).epoch
    s.mark_poll_boundary()  # poll 1 starts
    s.deliver(A0, epoch, 10, 2)  # poll 1 hands out 0..9
    assert s.consumed_offsets() == {A0: OffsetAndMetadata(0, "", -1)}
    assert s.delivered_offsets() == {A0: OffsetAndMetadata(10, "", 2)}
    s.mark_poll_boundary()  # poll 2 starts: 0..9 are processed
    s.deliver(A0, epoch, 25, 2)
    assert s.consumed_offsets() == {A0: OffsetAndMetadata(10, "", 2)}


def test_reset_lifecycle_and_backoff() -> None:
    s = assigned(A0, B0)
    assert s.initializing_partitions() == [A0, B0]
    s.apply_committed({A0: OffsetAndMetadata(42, "m", 1), B0: None})
    assert s.position(A0) == 42 and s.position(B0) is None
    assert s.partitions_needing_reset(0) == {B0: OffsetResetStrategy.EARLIEST}
    s.reset_backoff([B0], 500)
    assert s.partitions_needing_reset(100) == {}
    assert not s.complete_reset(B0, OffsetResetStrategy.LATEST, 9)  # superseded strategy
    assert s.complete_reset(B0, OffsetResetStrategy.EARLIEST, 3)
    assert s.position(B0) == 3 and s.has_all_positions()


def test_apply_committed_does_not_override_user_seek() -> None:
    s = assigned(A0)
    s.seek(A0, 5)
    s.apply_committed({A0: OffsetAndMetadata(42)})
    assert s.position(A0) == 5


def test_preferred_read_replica_expires() -> None:
    s = assigned(A0)
    s.set_preferred_read_replica(A0, 3, expires_at=1_000)
    assert s.preferred_read_replica(A0, 999) == 3
    assert s.preferred_read_replica(A0, 1_000) is None
    assert s.preferred_read_replica(A0, 10) is None


def test_unassigned_partition_raises() -> None:
    with pytest.raises(IllegalStateError):
        assigned(A0).seek(B0, 1)
    with pytest.raises(ValueError):
        assigned(A0).seek(A0, -1)
