"""How far a compressed batch may be filled: a per-topic compression ratio estimate.

``batch_size`` is meant as bytes on the wire. Without compression a batch is
closed once its records reach it; with compression the records shrink when the
batch is built, so filling only ``batch_size`` uncompressed bytes would send
batches a fraction of the intended size (more requests, worse compression).
The accumulator therefore sizes each new batch of a compressed topic at
``batch_size / ratio`` uncompressed bytes, where ``ratio`` estimates compressed
/ uncompressed size from the batches built before.

The estimate follows the Java client's idea: it starts at 1.0 (no gain assumed,
so the first batches are never too large), moves down slowly when batches
compress better than estimated (a small step per batch, never below what was
observed) and up at once when they compress worse (at least a larger step), so
a change of data towards incompressible shrinks new batches immediately. A
batch the broker found too large resets the topic's estimate to 1.0.

Whatever the estimate, a batch's uncompressed capacity stays below
``max_request_size`` minus headroom, so even data that does not compress at all
(compressed size about equal to the input plus a few bytes of framing) never
makes a request larger than ``max_request_size``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CompressionRatioEstimator"]

IMPROVING_STEP: Final = 0.005
DETERIORATING_STEP: Final = 0.05
MIN_RATIO: Final = 0.05  # at most 20x batch_size of input per batch
# Room left under max_request_size for the request's own framing and for codec output
# slightly larger than its input (incompressible data): 1/64 plus a fixed margin.
_HEADROOM_FIXED: Final = 1024


class CompressionRatioEstimator:
    """Per-topic estimate of a batch's compressed / uncompressed records size."""

    __slots__ = ("_batch_size", "_limit", "_ratios")

    def __init__(self, batch_size: int, max_request_size: int) -> None:
        if batch_size < 0 or max_request_size <= 0:
            raise ValueError("batch_size must be >= 0 and max_request_size > 0")
        self._batch_size = batch_size
        self._limit = max(1, max_request_size - max_request_size // 64 - _HEADROOM_FIXED)
        self._ratios: dict[str, float] = {}

    def estimate(self, topic: str) -> float:
        return self._ratios.get(topic, 1.0)

    def observe(self, topic: str, ratio: float) -> float:
        """Fold in the ratio a built batch of ``topic`` achieved; returns the new estimate."""
        if not ratio > 0:  # an empty or unbuilt batch says nothing
            return self.estimate(topic)
        current = self._ratios.get(topic, 1.0)
        if ratio > current:
            current = max(current + DETERIORATING_STEP, ratio)
        elif ratio < current:
            current = max(current - IMPROVING_STEP, ratio)
        current = min(max(current, MIN_RATIO), 1.0)
        self._ratios[topic] = current
        return current

    def reset(self, topic: str) -> None:
        """Assume no gain again (a batch of ``topic`` was too large for the broker)."""
        self._ratios.pop(topic, None)

    def capacity(self, topic: str) -> int:
        """Uncompressed bytes a new batch of ``topic`` may take."""
        ratio = self._ratios.get(topic, 1.0)
        if ratio >= 1.0:
            return self._batch_size
        return max(self._batch_size, min(int(self._batch_size / ratio), self._limit))
