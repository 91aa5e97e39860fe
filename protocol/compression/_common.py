"""Helpers shared by the per-codec modules: error wrapping and output growth.

Every codec decompresses through a bounded loop: it asks the third-party
decompressor for at most ``step`` more bytes, where ``step`` starts near the
expected output size and doubles, and stops with
:class:`~protocol._errors_base.DecompressionLimitError` as soon as the output
would pass the cap. Why not one call with ``max_length=cap``: lz4.frame and
zstandard allocate ``max_length`` up front, so a 100-byte batch would reserve
the whole cap (64 MiB by default) for a moment; growing geometrically keeps
peak memory proportional to the real output (at most about twice it).
"""

from __future__ import annotations

from typing import NoReturn

from protocol._errors_base import CorruptRecordError, DecompressionLimitError

# First read size: most batches expand 2-10x; 64 KiB covers a default 16 KiB
# producer batch in one step.
MIN_STEP = 64 * 1024


def first_step(compressed_len: int, cap: int) -> int:
    return min(max(MIN_STEP, compressed_len * 4), cap + 1)


def limit_exceeded(codec: str, cap: int) -> NoReturn:
    raise DecompressionLimitError(f"{codec} data decompresses to more than the {cap}-byte limit")


def corrupt(codec: str, exc: BaseException | str) -> NoReturn:
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    raise CorruptRecordError(f"invalid {codec} data: {detail}") from None
