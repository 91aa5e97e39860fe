"""Record batch v2 (magic 2): builder, reader and cheap header rewrites.

This module is the stable import path; the code lives in three modules:

- :mod:`protocol.records._batch_layout`: the wire layout (documented there),
  header structs and attribute bits, shared by both sides;
- :mod:`protocol.records.batch_encode`: :class:`BatchBuilder`, :func:`build_batch`,
  :func:`build_control_batch`, :func:`rewrite_batch_header`, :func:`set_base_offset`;
- :mod:`protocol.records.batch_decode`: :func:`read_batches` and the lazy
  :class:`RecordBatch`.
"""

from __future__ import annotations

from protocol.records._batch_layout import RECORD_BATCH_OVERHEAD
from protocol.records.batch_decode import RecordBatch, read_batches
from protocol.records.batch_encode import (
    BatchBuilder,
    NewRecord,
    build_batch,
    build_control_batch,
    rewrite_batch_header,
    set_base_offset,
)
from protocol.records.record import TimestampType

__all__ = [
    "RECORD_BATCH_OVERHEAD",
    "BatchBuilder",
    "NewRecord",
    "RecordBatch",
    "TimestampType",
    "build_batch",
    "build_control_batch",
    "read_batches",
    "rewrite_batch_header",
    "set_base_offset",
]
