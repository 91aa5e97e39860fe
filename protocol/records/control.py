"""Control records: the records inside a control batch (attributes bit 5).

Wire layout (all big-endian)::

    key    version int16 (0), type int16
    value  for COMMIT (1) and ABORT (0), an end-transaction marker:
           version int16 (0), coordinatorEpoch int32

Other types (KRaft's leader-change and snapshot records, ...) carry values we
do not interpret; they are surfaced with ``coordinator_epoch == -1`` so a
consumer can skip them. Newer key/value versions only append fields, so a
version above 0 is read with the fields we know.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

from protocol._errors_base import CorruptRecordError
from protocol.records.record import Record

__all__ = [
    "ControlRecord",
    "ControlType",
    "decode_control_record",
    "encode_end_txn_marker",
]

_KEY: Final = struct.Struct(">hh")
_MARKER: Final = struct.Struct(">hi")


class ControlType(IntEnum):
    ABORT = 0
    COMMIT = 1
    LEADER_CHANGE = 2
    SNAPSHOT_HEADER = 3
    SNAPSHOT_FOOTER = 4
    KRAFT_VERSION = 5
    KRAFT_VOTERS = 6


class ControlRecord(NamedTuple):
    """A decoded control record; ``type`` stays an int for unknown types."""

    offset: int
    timestamp: int
    type: int
    version: int
    coordinator_epoch: int
    """Epoch of the transaction coordinator for COMMIT/ABORT markers, else -1."""

    @property
    def is_commit(self) -> bool:
        return self.type == ControlType.COMMIT

    @property
    def is_abort(self) -> bool:
        return self.type == ControlType.ABORT


def encode_end_txn_marker(commit: bool, coordinator_epoch: int) -> tuple[bytes, bytes]:
    """Key and value of a COMMIT (``commit=True``) or ABORT marker."""
    ctype = ControlType.COMMIT if commit else ControlType.ABORT
    return _KEY.pack(0, ctype), _MARKER.pack(0, coordinator_epoch)


def decode_control_record(record: Record) -> ControlRecord:
    key = record.key
    if key is None or len(key) < _KEY.size:
        raise CorruptRecordError(f"control record at offset {record.offset} has a short key")
    version, ctype = _KEY.unpack_from(key)
    if version < 0:
        raise CorruptRecordError(f"control record key version {version} is negative")
    epoch = -1
    if ctype in (ControlType.COMMIT, ControlType.ABORT):
        value = record.value
        if value is None or len(value) < _MARKER.size:
            raise CorruptRecordError(
                f"transaction marker at offset {record.offset} has a short value"
            )
        _, epoch = _MARKER.unpack_from(value)
    return ControlRecord(record.offset, record.timestamp, ctype, version, epoch)
