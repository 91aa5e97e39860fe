"""The demo's consuming half: two group members in one task group until all is seen."""

from __future__ import annotations

import time
from typing import Any, TextIO

import anyio

from kclient.cli._common import Progress
from kclient.cli._ledger import Ledger

MEMBERS = 2
# Tansu holds JoinGroup for about session_timeout/2 (tansu-quirks.md): 6 s keeps the
# first assignment near 3 s.
SESSION_TIMEOUT_MS = 6000


async def consume_all(
    settings: dict[str, Any], topic: str, ledger: Ledger, stall_s: float, out: TextIO
) -> tuple[float, list[int]]:
    """Consume until every record was seen, or nothing new came for ``stall_s`` seconds.

    Returns the seconds from the first record to the last, and the records per member.
    """
    progress = Progress("consumed", ledger.total, out)
    done = anyio.Event()
    counts = [0] * MEMBERS
    clock = _Clock()
    group = f"{topic}-group"
    joining = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for member in range(MEMBERS):
            tg.start_soon(
                _member, member, settings, topic, group, ledger, counts, clock, progress, done
            )
        tg.start_soon(_watchdog, ledger, stall_s, done)
        await done.wait()
    progress.started = clock.first or progress.started
    progress.finish(ledger.distinct, end=clock.last or None)
    if clock.first:
        # Tansu holds JoinGroup for ~session/2, which dominates short runs: shown apart.
        print(f"  group {group}: first records after {clock.first - joining:.1f} s", file=out)
    return clock.span(), counts


class _Clock:
    """First and last record times: joining the group is not part of the throughput."""

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0

    def tick(self) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now

    def span(self) -> float:
        return self.last - self.first


async def _member(
    member: int,
    settings: dict[str, Any],
    topic: str,
    group: str,
    ledger: Ledger,
    counts: list[int],
    clock: _Clock,
    progress: Progress,
    done: anyio.Event,
) -> None:
    # imported here: see kclient/cli/demo.py
    from kclient.consumer.consumer import AsyncConsumer

    consumer: AsyncConsumer[bytes | None, bytes | None] = AsyncConsumer(
        group_id=group,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=1000,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        **settings,
    )
    async with consumer:
        consumer.subscribe([topic])
        while not done.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    ledger.consumed(record)
                counts[member] += len(records)
            if batches:
                clock.tick()
                progress.update(ledger.distinct)
            if ledger.complete:
                done.set()
        await consumer.commit()


async def _watchdog(ledger: Ledger, stall_s: float, done: anyio.Event) -> None:
    """End the wait when consumption stalls, so missing records fail the verdict instead
    of hanging the demo. The group join counts as a stall only after stall_s too."""
    last, since = -1, time.perf_counter()
    while not done.is_set():
        if ledger.distinct != last:
            last, since = ledger.distinct, time.perf_counter()
        elif time.perf_counter() - since > stall_s:
            done.set()
        await anyio.sleep(0.25)
