"""The pure leader-epoch validation rules (kclient/consumer/validation.py), reliability C9."""

from __future__ import annotations

import pytest

from kclient.consumer import validation as v
from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState
from kclient.errors import LogTruncationError
from kclient.structs import TopicPartition
from protocol.errors import TopicAuthorizationError

TP = TopicPartition("t", 0)
E, L, N = OffsetResetStrategy.EARLIEST, OffsetResetStrategy.LATEST, OffsetResetStrategy.NONE


def answer(end_offset: int, epoch: int = 0, code: int = 0) -> v.EpochAnswer:
    return v.EpochAnswer(code, epoch, end_offset)


@pytest.mark.parametrize("policy", [E, L, N])
def test_end_at_or_past_the_position_is_valid(policy: OffsetResetStrategy) -> None:
    assert v.decide(TP, 100, answer(100), policy).action is v.Action.VALID
    assert v.decide(TP, 100, answer(150), policy).action is v.Action.VALID


@pytest.mark.parametrize("policy", [E, L])
def test_truncation_with_a_policy_seeks_to_the_divergence(policy: OffsetResetStrategy) -> None:
    decision = v.decide(TP, 100, answer(80, epoch=3), policy)
    assert (decision.action, decision.offset, decision.leader_epoch) == (v.Action.SEEK, 80, 3)


def test_truncation_without_a_policy_fails_with_the_divergence() -> None:
    decision = v.decide(TP, 100, answer(80, epoch=3), N)
    assert decision.action is v.Action.FAIL
    error = decision.error
    assert isinstance(error, LogTruncationError)
    assert (error.topic_partition, error.position) == (TP, 100)
    assert (error.divergent_offset, error.divergent_epoch) == (80, 3)


@pytest.mark.parametrize("end", [(-1, -1), (-1, 5), (5, -1)])
def test_unknown_epoch_resets_by_policy_never_adopting_minus_one(end: tuple[int, int]) -> None:
    epoch, offset = end
    assert v.decide(TP, 100, answer(offset, epoch), E).action is v.Action.RESET
    failed = v.decide(TP, 100, answer(offset, epoch), N)
    assert failed.action is v.Action.FAIL and isinstance(failed.error, LogTruncationError)
    assert failed.error.divergent_offset is None


@pytest.mark.parametrize("code", [6, 74, 75, 3, 5, 7, 56])
def test_retriable_errors_retry(code: int) -> None:
    assert v.decide(TP, 100, answer(0, code=code), E).action is v.Action.RETRY


def test_other_errors_fail_with_the_broker_error() -> None:
    decision = v.decide(TP, 100, answer(0, code=29), E)
    assert decision.action is v.Action.FAIL
    assert isinstance(decision.error, TopicAuthorizationError)


def positioned(position: int = 100, epoch: int = 0) -> SubscriptionState:
    subs = SubscriptionState(E)
    subs.assign_from_user([TP])
    subs.seek(TP, position, epoch)
    return subs


def test_observe_keeps_the_highest_epoch_and_ignores_minus_one() -> None:
    state = positioned().state(TP)
    for seen, expected in [(0, 0), (2, 2), (-1, 2), (1, 2), (3, 3)]:
        v.observe_leader_epoch(state, seen)
        assert state.leader_epoch == expected


def test_validation_is_needed_only_for_an_older_position_epoch() -> None:
    subs = positioned(epoch=0)
    state = subs.state(TP)
    v.observe_leader_epoch(state, 0)
    assert not v.needs_validation(state)
    v.observe_leader_epoch(state, 1)
    assert v.needs_validation(state)
    assert TP not in subs.fetchable_partitions()
    no_epoch = positioned(epoch=-1)  # nothing to validate against
    v.observe_leader_epoch(no_epoch.state(TP), 1)
    assert not v.needs_validation(no_epoch.state(TP))


def test_begin_drops_fetched_data_and_apply_settles_each_outcome() -> None:
    subs = positioned(epoch=0)
    state = subs.state(TP)
    state.fetch_offset = 140  # prefetched past the position
    v.observe_leader_epoch(state, 1)
    pending = v.begin(subs, TP)
    assert (pending.position, pending.position_epoch, pending.leader_epoch) == (100, 0, 1)
    assert state.fetch_offset == 100 and state.epoch == pending.token
    assert v.apply(subs, TP, pending, v.Decision(v.Action.RETRY))
    assert v.needs_validation(state)  # still waiting
    assert v.apply(subs, TP, pending, v.Decision(v.Action.VALID))
    assert not v.needs_validation(state) and TP in subs.fetchable_partitions()
    assert subs.position(TP) == 100


def test_apply_seek_reset_fail_and_stale_answers() -> None:
    subs = positioned(epoch=0)
    v.observe_leader_epoch(subs.state(TP), 1)
    pending = v.begin(subs, TP)
    assert v.apply(subs, TP, pending, v.Decision(v.Action.SEEK, 80, 0))
    assert (subs.position(TP), subs.state(TP).position_epoch) == (80, 0)
    assert not v.needs_validation(subs.state(TP))  # checked under epoch 1 already

    subs = positioned(epoch=0)
    v.observe_leader_epoch(subs.state(TP), 1)
    pending = v.begin(subs, TP)
    assert v.apply(subs, TP, pending, v.Decision(v.Action.RESET))
    assert subs.partitions_needing_reset(0) == {TP: E}

    subs = positioned(epoch=0)
    v.observe_leader_epoch(subs.state(TP), 1)
    pending = v.begin(subs, TP)
    assert v.apply(subs, TP, pending, v.Decision(v.Action.FAIL))
    assert subs.state(TP).truncated and TP not in subs.fetchable_partitions()
    subs.seek(TP, 80)  # the application's way out
    assert not subs.state(TP).truncated and TP in subs.fetchable_partitions()

    subs = positioned(epoch=0)
    v.observe_leader_epoch(subs.state(TP), 1)
    pending = v.begin(subs, TP)
    subs.seek(TP, 5)  # the user moved meanwhile: the answer is moot
    assert not v.apply(subs, TP, pending, v.Decision(v.Action.SEEK, 80, 0))
    assert subs.position(TP) == 5


def test_delivery_never_adopts_leader_epoch_minus_one() -> None:
    subs = positioned(epoch=4)
    state = subs.state(TP)
    assert subs.deliver(TP, state.epoch, 110, -1)
    assert (state.position, state.position_epoch) == (110, 4)
    assert subs.deliver(TP, state.epoch, 120, 5)
    assert state.position_epoch == 5


def test_request_carries_both_epochs() -> None:
    request = v.build_request(
        {TP: v.Pending(token=1, position=100, position_epoch=2, leader_epoch=3)}
    )
    (topic,) = request.topics
    (part,) = topic.partitions
    assert (request.replica_id, topic.topic, part.partition) == (-1, "t", 0)
    assert (part.current_leader_epoch, part.leader_epoch) == (3, 2)
