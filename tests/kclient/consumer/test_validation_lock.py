"""``validation.begin()`` reads a partition's position and seeks to it under
``SubscriptionState.lock``, because under the sync facade another thread hands records out
of a chunk (``Handout.take``) and moves that position meanwhile.

Without the lock, a take landing between the read and the seek hands out record ``p`` and
moves the position to ``p + 1``; the seek then puts it back to ``p``, so ``p`` is fetched
and handed out a second time, and a commit in between covered a record the position no
longer does. The test drives exactly that interleaving, deterministically: the taker thread
is started from inside ``begin()`` at the point between the read and the seek, and ``begin``
goes on only once the taker has either finished its take or is seen waiting for the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kclient.consumer import validation
from kclient.consumer.handout import Handout
from kclient.consumer.subscription import OffsetResetStrategy, SubscriptionState
from kclient.structs import ConsumerRecord, TopicPartition

TP = TopicPartition("t", 0)
GUARD_S = 10  # only bounds a broken run; nothing waits on it when the code is right


class _WatchedLock:
    """The subscription's ``RLock``, reporting when a thread has to wait for it."""

    def __init__(self, on_wait: Callable[[], None]) -> None:
        self._lock = threading.RLock()
        self._on_wait = on_wait
        self.contended = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.contended = True
        self._on_wait()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"k", b"v", leader_epoch=0)


def _sync_handout_with_a_chunk(lock: _WatchedLock) -> tuple[SubscriptionState, Handout]:
    """A partition whose chunk of records 0..9 is loaded for the sync facade, 3 handed out."""
    subs = SubscriptionState(OffsetResetStrategy.EARLIEST)
    subs.lock = lock  # type: ignore[assignment]  # before Handout reads it
    subs.assign_from_user([TP])
    subs.seek(TP, 0, 0)
    handout = Handout(subs)
    handout.share()  # takes happen on the application's thread, under the lock
    subs.state(TP).position = 10  # what the drain of records 0..9 left
    handout.load({TP: [_record(o) for o in range(10)]})
    assert [getattr(handout.take(), "offset", None) for _ in range(3)] == [0, 1, 2]
    return subs, handout


def test_a_record_cannot_be_handed_out_between_reading_the_position_and_seeking() -> None:
    # Set once the taker has either taken its record or found the lock held.
    progressed = threading.Event()
    lock = _WatchedLock(on_wait=progressed.set)
    subs, handout = _sync_handout_with_a_chunk(lock)
    state = subs.state(TP)
    assert state.position == 3
    state.leader_epoch = 1  # metadata showed a newer leader epoch: validation is due
    assert validation.needs_validation(state)

    taken: list[ConsumerRecord[Any, Any] | None] = []

    def take_on_the_app_thread() -> None:
        taken.append(handout.take())
        progressed.set()

    taker = threading.Thread(target=take_on_the_app_thread)
    real_seek = subs.seek

    def seek_after_racing_a_take(tp: TopicPartition, offset: int, leader_epoch: int = -1) -> None:
        # begin() has read the position (``offset``) and is about to seek to it: a take
        # on another thread now either completes (nothing stops it) or has to wait.
        taker.start()
        assert progressed.wait(GUARD_S), "the taker neither took nor waited for the lock"
        real_seek(tp, offset, leader_epoch)

    subs.seek = seek_after_racing_a_take  # type: ignore[method-assign]
    pending = validation.begin(subs, TP)
    taker.join(GUARD_S)
    assert not taker.is_alive()

    # begin() settled on position 3 for validation. Record 3 must not have been handed out
    # meanwhile: the position would then no longer cover it and it would come again.
    assert (pending.position, state.position) == (3, 3)
    offsets = [getattr(r, "offset", None) for r in taken]
    assert offsets == [None], f"handed out offset {offsets} while validation sought back to 3"
    assert lock.contended  # the take really did run into begin()'s lock
    assert not handout  # the chunk was dropped: the seek made it stale
