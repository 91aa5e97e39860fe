"""The demo's bookkeeping: what was acknowledged, what came back, and the verdict.

Every record carries its index in the key (``key-<i>``) and a value derived from it, so a
consumed record can be checked on its own: right value, and the partition and offset the
producer's acknowledgement reported. Counts per index find duplicates and gaps.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from kclient.structs import ConsumerRecord, RecordMetadata

VALUE_SIZE = 100
_KEY_PREFIX = b"key-"


def key_for(index: int) -> bytes:
    return b"key-%d" % index


def value_for(index: int) -> bytes:
    return (b"value-%010d-" % index).ljust(VALUE_SIZE, b"x")


@dataclass(frozen=True)
class Verdict:
    total: int
    received: int
    missing: int
    duplicates: int
    corrupt: int
    unknown: int

    @property
    def ok(self) -> bool:
        return self.received == self.total and not (
            self.missing or self.duplicates or self.corrupt or self.unknown
        )

    def line(self) -> str:
        if self.ok:
            return f"OK: all {self.total:,} records arrived exactly once"
        return (
            f"FAILED: {self.missing:,} missing, {self.duplicates:,} duplicated, "
            f"{self.corrupt:,} corrupt, {self.unknown:,} unknown of {self.total:,} records"
        )


class Ledger:
    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = bytearray(total)  # deliveries per index, saturating at 255
        # What the acknowledgements reported; -1 until acknowledged. Offsets can be -1 even
        # then (Tansu's DUPLICATE_SEQUENCE_NUMBER carries none), which skips that check.
        self.partition = array("i", [-1]) * total
        self.offset = array("q", [-1]) * total
        self.distinct = 0
        self.received = 0
        self.duplicates = 0
        self.corrupt = 0
        self.unknown = 0

    @property
    def complete(self) -> bool:
        return self.distinct == self.total

    def acked(self, index: int, metadata: RecordMetadata) -> None:
        self.partition[index] = metadata.partition
        self.offset[index] = metadata.offset

    def consumed(self, record: ConsumerRecord[bytes | None, bytes | None]) -> None:
        self.received += 1
        index = self._index(record.key)
        if index is None:
            self.unknown += 1
            return
        if record.value != value_for(index) or not self._where_acked(index, record):
            self.corrupt += 1
        count = self.seen[index]
        if count == 0:
            self.distinct += 1
        else:
            self.duplicates += 1
        self.seen[index] = min(255, count + 1)

    def verdict(self) -> Verdict:
        return Verdict(
            total=self.total,
            received=self.received,
            missing=self.total - self.distinct,
            duplicates=self.duplicates,
            corrupt=self.corrupt,
            unknown=self.unknown,
        )

    def _index(self, key: bytes | None) -> int | None:
        if not key or not key.startswith(_KEY_PREFIX):
            return None
        try:
            index = int(key[len(_KEY_PREFIX) :])
        except ValueError:
            return None
        return index if 0 <= index < self.total else None

    def _where_acked(self, index: int, record: ConsumerRecord[bytes | None, bytes | None]) -> bool:
        if record.partition != self.partition[index]:
            return False
        offset = self.offset[index]
        return offset < 0 or record.offset == offset
