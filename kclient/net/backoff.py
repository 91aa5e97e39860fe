"""Exponential backoff with jitter and a cap, as pure functions.

``backoff_ms(attempt, base, cap, rand)`` is ``base * 2**attempt`` scaled by a
random factor in ``[1 - jitter, 1 + jitter)`` and clamped to ``cap``. Taking
``rand`` (a float in [0, 1)) as an argument keeps the function deterministic
under test; drivers pass ``random.random()``. Jitter keeps many clients that
lost the same broker from reconnecting in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff", "backoff_ms"]

_MAX_EXPONENT = 30  # 2**30 * any sane base is far above every cap; avoids huge ints


def backoff_ms(
    attempt: int, base_ms: float, cap_ms: float, rand: float, *, jitter: float = 0.2
) -> float:
    """Wait before try number ``attempt + 1`` (``attempt`` failures so far, >= 0)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if cap_ms <= 0 or base_ms <= 0:
        return 0.0
    term = base_ms * (2 ** min(attempt, _MAX_EXPONENT))
    factor = 1.0 - jitter + 2.0 * jitter * rand
    return float(min(term * factor, cap_ms))


@dataclass(slots=True)
class Backoff:
    """Failure count and the earliest time of the next try, for one target (a broker, ...)."""

    base_ms: float
    cap_ms: float
    failures: int = 0
    not_before_ms: float = 0.0

    def record_failure(self, now_ms: float, rand: float) -> float:
        """Count a failure; return the wait until the next try is allowed."""
        wait = backoff_ms(self.failures, self.base_ms, self.cap_ms, rand)
        self.failures += 1
        self.not_before_ms = now_ms + wait
        return wait

    def record_success(self) -> None:
        self.failures = 0
        self.not_before_ms = 0.0

    def remaining_ms(self, now_ms: float) -> float:
        """How long until the next try is allowed (0 when it is allowed now)."""
        return max(0.0, self.not_before_ms - now_ms)
