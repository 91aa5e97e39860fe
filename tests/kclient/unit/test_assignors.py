"""Assignors: golden cases, properties, and cross-checks against kafka-python."""

from __future__ import annotations

import warnings
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kclient.consumer.assignors import (
    Assignment,
    CooperativeStickyAssignor,
    PartitionAssignor,
    RangeAssignor,
    RebalanceProtocol,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
    common_rebalance_protocol,
)
from kclient.consumer.assignors.sticky import decode_sticky_user_data, encode_sticky_user_data
from kclient.structs import TopicPartition as TP

Counts = dict[str, int]
Subs = dict[str, Subscription]

ALL_ASSIGNORS = [RangeAssignor, RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor]


def flat(result: dict[str, Assignment]) -> dict[str, list[TP]]:
    return {m: list(a.partitions) for m, a in result.items()}


def owner_of(result: dict[str, Assignment]) -> dict[TP, str]:
    return {tp: m for m, a in result.items() for tp in a.partitions}


# -- strategies -------------------------------------------------------------------------

TOPICS = ["a", "b", "c", "d"]


@st.composite
def groups(draw: st.DrawFn, identical: bool = False) -> tuple[Counts, Subs]:
    topics = draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=4, unique=True))
    counts = {t: draw(st.integers(0, 12)) for t in topics}
    n = draw(st.integers(1, 6))
    members = [
        f"m{i:02d}" for i in draw(st.lists(st.integers(0, 50), min_size=n, max_size=n, unique=True))
    ]
    subs: Subs = {}
    for m in members:
        if identical:
            chosen = topics
        else:
            chosen = draw(st.lists(st.sampled_from(topics), min_size=1, unique=True))
        subs[m] = Subscription(tuple(chosen))
    return counts, subs


def check_complete(counts: Counts, subs: Subs, result: dict[str, Assignment]) -> None:
    assert set(result) == set(subs)
    seen = Counter(tp for a in result.values() for tp in a.partitions)
    subscribed = {t for s in subs.values() for t in s.topics}
    expected = {TP(t, p) for t in subscribed for p in range(counts.get(t, 0))}
    assert set(seen) == expected
    assert all(c == 1 for c in seen.values()), "a partition was assigned twice"
    for m, a in result.items():
        for tp in a.partitions:
            assert tp.topic in subs[m].topics


# -- golden cases (Java javadoc examples) -------------------------------------------------


def test_range_javadoc_example() -> None:
    subs = {"C0": Subscription(("t0", "t1")), "C1": Subscription(("t0", "t1"))}
    result = flat(RangeAssignor().assign({"t0": 3, "t1": 3}, subs))
    assert result == {
        "C0": [TP("t0", 0), TP("t0", 1), TP("t1", 0), TP("t1", 1)],
        "C1": [TP("t0", 2), TP("t1", 2)],
    }


def test_roundrobin_javadoc_example_uneven_subscriptions() -> None:
    subs = {
        "C0": Subscription(("t0",)),
        "C1": Subscription(("t0", "t1")),
        "C2": Subscription(("t0", "t1", "t2")),
    }
    result = flat(RoundRobinAssignor().assign({"t0": 1, "t1": 2, "t2": 3}, subs))
    assert result == {
        "C0": [TP("t0", 0)],
        "C1": [TP("t1", 0)],
        "C2": [TP("t1", 1), TP("t2", 0), TP("t2", 1), TP("t2", 2)],
    }


def test_static_members_sort_first_by_instance_id() -> None:
    subs = {
        "zzz-dynamic": Subscription(("t",)),
        "b-random": Subscription(("t",), group_instance_id="i1"),
        "a-random": Subscription(("t",), group_instance_id="i2"),
    }
    result = flat(RangeAssignor().assign({"t": 3}, subs))
    assert result == {
        "b-random": [TP("t", 0)],
        "a-random": [TP("t", 1)],
        "zzz-dynamic": [TP("t", 2)],
    }


def test_unknown_topic_gets_nothing_and_members_still_listed() -> None:
    subs = {"m": Subscription(("missing",))}
    for cls in ALL_ASSIGNORS:
        assert flat(cls().assign({}, subs)) == {"m": []}


def test_sticky_user_data_roundtrip_and_garbage() -> None:
    parts = [TP("b", 1), TP("a", 0), TP("a", 2)]
    data = encode_sticky_user_data(parts, 7)
    assert decode_sticky_user_data(data) == (sorted(parts), 7)
    assert decode_sticky_user_data(encode_sticky_user_data(parts, None)) == (sorted(parts), None)
    assert decode_sticky_user_data(b"\xff\xff") == ([], None)
    assert decode_sticky_user_data(data + b"x") == ([], None)


def test_sticky_userdata_drives_eager_stickiness() -> None:
    first = StickyAssignor()
    first.on_assignment(Assignment((TP("t", 2), TP("t", 3))), 4)
    other = StickyAssignor()
    other.on_assignment(Assignment((TP("t", 0), TP("t", 1))), 4)
    subs = {
        "x": Subscription(("t",), first.metadata(["t"])),
        "y": Subscription(("t",), other.metadata(["t"])),
    }
    assert flat(StickyAssignor().assign({"t": 4}, subs)) == {
        "x": [TP("t", 2), TP("t", 3)],
        "y": [TP("t", 0), TP("t", 1)],
    }


def test_sticky_conflicting_claims_resolved_by_generation() -> None:
    subs = {
        "old": Subscription(("t",), owned_partitions=(TP("t", 0), TP("t", 1)), generation_id=3),
        "new": Subscription(("t",), owned_partitions=(TP("t", 0),), generation_id=5),
    }
    result = flat(CooperativeStickyAssignor().assign({"t": 2}, subs))
    # t0 belongs to the newer claim; "old" keeps t1.
    assert result == {"new": [TP("t", 0)], "old": [TP("t", 1)]}


def test_common_rebalance_protocol() -> None:
    coop: list[PartitionAssignor] = [CooperativeStickyAssignor()]
    assert common_rebalance_protocol(coop) is RebalanceProtocol.COOPERATIVE
    mixed: list[PartitionAssignor] = [CooperativeStickyAssignor(), RangeAssignor()]
    assert common_rebalance_protocol(mixed) is RebalanceProtocol.EAGER
    assert isinstance(RangeAssignor(), PartitionAssignor)


# -- properties -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_ASSIGNORS)
@given(group=groups())
@settings(max_examples=150, deadline=None)
def test_every_partition_assigned_exactly_once(cls: type[Any], group: tuple[Counts, Subs]) -> None:
    counts, subs = group
    check_complete(counts, subs, cls().assign(counts, subs))


@pytest.mark.parametrize("cls", [RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor])
@given(group=groups(identical=True))
@settings(max_examples=150, deadline=None)
def test_balanced_within_one_when_subscriptions_identical(
    cls: type[Any], group: tuple[Counts, Subs]
) -> None:
    counts, subs = group
    sizes = [len(a.partitions) for a in cls().assign(counts, subs).values()]
    assert max(sizes) - min(sizes) <= 1


@given(group=groups())
@settings(max_examples=150, deadline=None)
def test_sticky_general_case_cannot_improve_by_one_move(group: tuple[Counts, Subs]) -> None:
    """Java's balance criterion: no member could take a partition from a member that
    holds at least two more."""
    counts, subs = group
    result = flat(StickyAssignor().assign(counts, subs))
    for tps in result.values():
        for tp in tps:
            for dst, other in result.items():
                if tp.topic in subs[dst].topics:
                    assert len(other) >= len(tps) - 1


def with_claims(subs: Subs, previous: dict[str, list[TP]], generation: int) -> Subs:
    return {
        m: Subscription(
            s.topics, owned_partitions=tuple(previous.get(m, ())), generation_id=generation
        )
        for m, s in subs.items()
    }


@given(group=groups(identical=True), data=st.data())
@settings(max_examples=150, deadline=None)
def test_sticky_moves_the_minimum_after_membership_change(
    group: tuple[Counts, Subs], data: st.DataObject
) -> None:
    counts, subs = group
    assignor = CooperativeStickyAssignor()
    before = flat(StickyAssignor().assign(counts, subs))
    # Re-running unchanged moves nothing.
    again = flat(assignor.assign(counts, with_claims(subs, before, 1)))
    assert again == before
    # Change membership: drop some members, add some new ones.
    survivors = data.draw(st.lists(st.sampled_from(sorted(subs)), unique=True))
    added = data.draw(st.integers(0 if survivors else 1, 3))
    topics = next(iter(subs.values())).topics
    new_subs = {m: subs[m] for m in survivors} | {
        f"new{i}": Subscription(topics) for i in range(added)
    }
    after = flat(StickyAssignor().assign(counts, with_claims(new_subs, before, 1)))
    total = sum(len(v) for v in after.values())
    min_q, extra = divmod(total, len(new_subs))
    owned = [len(before.get(m, [])) for m in new_subs]
    optimum = sum(min(k, min_q) for k in owned) + min(extra, sum(1 for k in owned if k > min_q))
    retained = sum(1 for m, tps in after.items() for tp in tps if tp in before.get(m, []))
    assert retained == optimum


@given(group=groups(), data=st.data())
@settings(max_examples=150, deadline=None)
def test_cooperative_never_moves_directly_and_converges(
    group: tuple[Counts, Subs], data: st.DataObject
) -> None:
    counts, subs = group
    assignor = CooperativeStickyAssignor()
    first = flat(assignor.assign(counts, with_claims(subs, {}, -1)))
    check_complete(counts, subs, assignor.assign(counts, with_claims(subs, {}, -1)))
    # Membership changes; members rejoin claiming what they own (generation 1).
    keep = data.draw(st.lists(st.sampled_from(sorted(subs)), min_size=1, unique=True))
    new_subs = {m: subs[m] for m in keep} | {
        f"new{i}": Subscription(subs[keep[0]].topics) for i in range(data.draw(st.integers(0, 2)))
    }
    phase1 = flat(assignor.assign(counts, with_claims(new_subs, first, 1)))
    prev_owner = {tp: m for m, tps in first.items() if m in new_subs for tp in tps}
    for m, tps in phase1.items():
        for tp in tps:
            assert prev_owner.get(tp, m) == m, f"{tp} moved directly {prev_owner[tp]} -> {m}"
    # Members that still own partitions they were not given revoke them, then rejoin.
    owned_now = {
        m: [tp for tp in first.get(m, []) if tp in phase1[m]]
        + [tp for tp in phase1[m] if tp not in first.get(m, [])]
        for m in new_subs
    }
    phase2 = assignor.assign(counts, with_claims(new_subs, owned_now, 2))
    check_complete(counts, new_subs, phase2)
    # What stayed in phase 1 is never revoked in phase 2.
    for m, tps in phase1.items():
        assert set(tps) <= set(phase2[m].partitions)


# -- independent implementation: kafka-python ---------------------------------------------
# kafka-python emits DeprecationWarnings while loading its JSON schemas; the suite runs
# with warnings as errors, so import it once here with them silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.coordinator.assignors.range import RangePartitionAssignor  # type: ignore[import-untyped]
    from kafka.coordinator.assignors.roundrobin import (  # type: ignore[import-untyped]
        RoundRobinPartitionAssignor,
    )


def kafka_python_assign(cls: Any, counts: Counts, subs: Subs) -> dict[str, list[TP]]:
    cluster = SimpleNamespace(
        partitions_for_topic=lambda t: set(range(counts[t])) if t in counts else None
    )
    members = [
        SimpleNamespace(
            member_id=m,
            group_instance_id=s.group_instance_id,
            metadata=SimpleNamespace(topics=list(s.topics)),
        )
        for m, s in subs.items()
    ]
    out = cls.assign(cluster, members)
    return {
        m: sorted(TP(t, p) for t, ps in a.assigned_partitions for p in ps) for m, a in out.items()
    }


@given(group=groups())
@settings(max_examples=200, deadline=None)
def test_range_matches_kafka_python(group: tuple[Counts, Subs]) -> None:
    counts, subs = group
    assert flat(RangeAssignor().assign(counts, subs)) == kafka_python_assign(
        RangePartitionAssignor, counts, subs
    )


# kafka-python 3.0.12's round-robin crashes (KeyError on a (instance_id, member_id)
# tuple) whenever it has to skip a member that does not subscribe to a topic, so it can
# only serve as an oracle for identical subscriptions. The uneven case is covered by the
# Java javadoc example above.
@given(group=groups(identical=True))
@settings(max_examples=200, deadline=None)
def test_roundrobin_matches_kafka_python(group: tuple[Counts, Subs]) -> None:
    counts, subs = group
    assert flat(RoundRobinAssignor().assign(counts, subs)) == kafka_python_assign(
        RoundRobinPartitionAssignor, counts, subs
    )
