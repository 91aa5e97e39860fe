"""The session's pure state: when a transaction may commit, and where an abort rewinds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kclient.eos.state import Phase, SessionState
from kclient.errors import IllegalStateError, ProducerFencedError
from kclient.structs import TopicPartition

A, B = TopicPartition("in", 0), TopicPartition("in", 1)
GEN5 = (5, "m-1")


def opened(**spans: tuple[int, int]) -> SessionState:
    state = SessionState()
    state.begun()
    state.handed_out({TopicPartition("in", int(k[1:])): v for k, v in spans.items()}, GEN5)
    return state


def test_commit_offsets_are_the_next_offset_after_what_was_handed_out() -> None:
    state = opened(p0=(10, 19), p1=(0, 4))
    state.handed_out({A: (20, 29)}, GEN5)
    decision = state.decide_end(GEN5, {A, B}, commit=True)
    assert decision.commit
    assert decision.offsets == {A: 30, B: 5}
    state.ended(committed=True)
    assert state.phase is Phase.IDLE and state.rewind_plan() is None


def test_an_empty_transaction_commits_nothing() -> None:
    state = SessionState()
    state.begun()
    state.handed_out({A: ()}, GEN5)
    decision = state.decide_end((7, "other"), set(), commit=True)
    assert decision.commit and decision.offsets == {}


@pytest.mark.parametrize(
    ("identity", "assignment", "reason"),
    [
        ((6, "m-1"), {A, B}, "generation 5 member 'm-1' -> generation 6"),
        ((-1, ""), {A, B}, "generation -1"),
        ((5, "m-2"), {A, B}, "member 'm-2'"),
        (GEN5, {A}, "in-1 are no longer assigned"),
    ],
)
def test_a_moved_group_or_a_lost_partition_aborts(
    identity: tuple[int, str], assignment: set[TopicPartition], reason: str
) -> None:
    state = opened(p0=(10, 19), p1=(3, 3))
    decision = state.decide_end(identity, assignment, commit=True)
    assert not decision.commit and reason in decision.reason
    state.ended(committed=False)
    assert state.rewind_plan() == {A: 10, B: 3}  # fallbacks: the first offsets handed out


def test_records_handed_out_under_a_new_generation_doom_the_transaction() -> None:
    state = opened(p0=(0, 9))
    state.handed_out({A: (0, 9)}, (6, "m-1"))  # re-delivered after a rebalance
    decision = state.decide_end((6, "m-1"), {A}, commit=True)
    assert not decision.commit and "generation 5" in decision.reason


def test_abort_decisions_stand_and_doom_overrides_a_commit_not_started() -> None:
    state = opened(p0=(0, 9))
    state.doom("abortable error: x")
    assert not state.decide_end(GEN5, {A}, commit=True).commit
    assert state.decide_end(GEN5, {A}, commit=True).reason == "abortable error: x"


def test_a_started_commit_stands_unless_doomed() -> None:
    state = opened(p0=(0, 9))
    assert state.decide_end(GEN5, {A}, commit=True).commit
    state.commit_started = True
    # The group moved after EndTxn(commit) was requested: it cannot be withdrawn.
    assert state.decide_end((6, "m-1"), set(), commit=True).commit
    state.doom("the commit's outcome is unknown")
    assert not state.decide_end(GEN5, {A}, commit=True).commit


def test_a_commit_not_started_is_checked_again_on_retry() -> None:
    state = opened(p0=(0, 9))
    assert state.decide_end(GEN5, {A}, commit=True).commit  # then send_offsets timed out
    assert not state.decide_end((6, "m-1"), {A}, commit=True).commit


def test_application_abort() -> None:
    state = opened(p0=(4, 9))
    decision = state.decide_end(GEN5, {A}, commit=False)
    assert not decision.commit and decision.reason == "the application aborted"


def test_rewind_plan_is_consumed_partition_by_partition() -> None:
    state = opened(p0=(4, 9), p1=(7, 8))
    state.decide_end(GEN5, {A, B}, commit=False)
    state.ended(committed=False)
    state.rewound([A])
    assert state.rewind_plan() == {B: 7}
    state.rewound([B])
    assert state.rewind_plan() is None


def test_illegal_calls_and_fatal_errors() -> None:
    state = SessionState()
    with pytest.raises(IllegalStateError):
        state.handed_out({A: (0, 1)}, GEN5)
    with pytest.raises(IllegalStateError):
        state.decide_end(GEN5, {A}, commit=True)
    state.begun()
    with pytest.raises(IllegalStateError):
        state.begun()
    state.failed(ProducerFencedError("fenced"))
    with pytest.raises(ProducerFencedError):
        state.decide_end(GEN5, {A}, commit=True)
    with pytest.raises(ProducerFencedError):
        state.begun()


@given(
    st.lists(
        st.tuples(st.sampled_from([A, B]), st.integers(0, 1000), st.integers(0, 50)),
        min_size=1,
        max_size=20,
    )
)
def test_offsets_and_rewind_cover_exactly_what_was_handed_out(
    polls: list[tuple[TopicPartition, int, int]],
) -> None:
    state = SessionState()
    state.begun()
    for tp, first, n in polls:
        state.handed_out({tp: (first, first + n)}, GEN5)
    seen = {tp for tp, _, _ in polls}
    decision = state.decide_end(GEN5, {A, B}, commit=True)
    assert decision.commit
    for tp in seen:
        assert decision.offsets[tp] == max(f + n for t, f, n in polls if t == tp) + 1
    state.doom("x")
    state.decide_end(GEN5, {A, B}, commit=True)
    state.ended(committed=False)
    assert state.rewind_plan() == {tp: min(f for t, f, _ in polls if t == tp) for tp in seen}
