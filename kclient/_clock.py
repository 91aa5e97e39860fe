"""Time sources. Every pure function takes ``now`` in milliseconds; drivers read it here.

Drivers use :func:`now_ms` (the event loop's clock, so trio's MockClock and
anyio's test clocks drive them too); pure code never reads a clock itself.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "LoopClock", "ManualClock", "SystemClock", "now_ms"]


def now_ms() -> float:
    """Milliseconds on the running event loop's monotonic clock."""
    return anyio.current_time() * 1000.0


class Clock(Protocol):
    def monotonic_ms(self) -> float: ...


class SystemClock:
    """Process monotonic clock; usable outside an event loop."""

    def monotonic_ms(self) -> float:
        return time.monotonic() * 1000.0


class LoopClock:
    """The running event loop's clock (see :func:`now_ms`)."""

    def monotonic_ms(self) -> float:
        return now_ms()


class ManualClock:
    """A clock that moves only when told; for unit tests of pure logic."""

    def __init__(self, start_ms: float = 0.0) -> None:
        self._now = start_ms

    def monotonic_ms(self) -> float:
        return self._now

    def advance(self, ms: float) -> None:
        if ms < 0:
            raise ValueError("time does not go backwards")
        self._now += ms
