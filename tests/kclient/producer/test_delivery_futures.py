"""DeliveryFutures: send_many's lazily made futures behave as a list of them."""

from __future__ import annotations

import pytest

from kclient.producer.delivery import DeliveryFuture, DeliveryFutures, DeliveryState, Outcome


def build() -> tuple[DeliveryFutures, list[tuple[Outcome, int, int]]]:
    """Runs of three batches (one added as a single future); the expected
    (outcome, index, timestamp) of every record in order."""
    first, second, third = Outcome("t", 0), Outcome("t", 1), Outcome("t", 0)
    futures = DeliveryFutures()
    futures.add_run(first, 5, 3, 100)  # a batch that already held five records
    futures.add_run(second, 0, 0, 100)  # empty runs add nothing
    futures.add(DeliveryFuture(second, 0, 101))
    futures.add_run(third, 0, 4, 102)
    expected = [(first, 5 + i, 100) for i in range(3)] + [(second, 0, 101)]
    expected += [(third, i, 102) for i in range(4)]
    return futures, expected


def key(future: DeliveryFuture) -> tuple[Outcome, int, int]:
    return (future._outcome, future._index, future.timestamp)


def test_index_iterate_slice_and_length() -> None:
    futures, expected = build()
    assert len(futures) == len(expected) == 8
    assert [key(f) for f in futures] == expected
    assert [key(futures[i]) for i in range(8)] == expected
    assert [key(futures[i]) for i in range(-8, 0)] == expected
    assert [key(f) for f in futures[2:6]] == expected[2:6]
    assert [key(f) for f in futures[::-3]] == expected[::-3]
    for bad in (8, -9):
        with pytest.raises(IndexError):
            futures[bad]
    assert len(DeliveryFutures()) == 0 and list(DeliveryFutures()) == []


def test_concatenation_with_lists_gives_lists() -> None:
    futures, expected = build()
    extra = DeliveryFuture(Outcome("t", 2), 0, 7)
    tail: list[DeliveryFuture] = [extra]
    assert [key(f) for f in futures + tail] == [*expected, key(extra)]
    assert [key(f) for f in tail + futures] == [key(extra), *expected]
    assert [key(f) for f in futures + futures] == expected * 2
    merged: list[DeliveryFuture] = [extra]
    merged += futures
    assert len(merged) == 9


def test_futures_read_the_shared_outcome() -> None:
    futures, _ = build()
    outcome = futures[0]._outcome
    outcome.resolve(DeliveryState.SUCCEEDED, 40, -1, None)
    assert [f.result().offset for f in futures[:3]] == [45, 46, 47]
    assert futures[3].state is DeliveryState.PENDING
