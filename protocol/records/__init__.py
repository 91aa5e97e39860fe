"""Record batches: build v2 batches, read v2 and legacy (magic 0/1) message sets.

Producer side::

    builder = BatchBuilder(codec=Codec.LZ4, producer_id=pid, producer_epoch=epoch,
                           base_sequence=seq)
    while builder.try_append(ts, key, value, headers, max_batch_size=16384) is not None: ...
    data = builder.build()
    data = rewrite_batch_header(data, base_sequence=new_seq)   # cheap restamp

Consumer side::

    for batch in read_batches(fetch_partition.records or b""):
        if batch.is_control: markers = batch.control_records()
        for rec in batch.records():   # Record(offset, timestamp, key, value, headers)
            ...

Every decoding failure raises a KafkaProtocolError subclass
(CorruptRecordError, DecompressionLimitError, UnsupportedCompressionError).
See docs/design-notes/records.md.
"""

from __future__ import annotations

from protocol.compression import DEFAULT_MAX_DECOMPRESSED_SIZE, Codec
from protocol.records.batch import (
    RECORD_BATCH_OVERHEAD,
    BatchBuilder,
    NewRecord,
    RecordBatch,
    build_batch,
    build_control_batch,
    read_batches,
    rewrite_batch_header,
    set_base_offset,
)
from protocol.records.control import (
    ControlRecord,
    ControlType,
    decode_control_record,
    encode_end_txn_marker,
)
from protocol.records.legacy import LegacyBatch
from protocol.records.record import Record, TimestampType, record_size_upper_bound

AnyBatch = RecordBatch | LegacyBatch

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "RECORD_BATCH_OVERHEAD",
    "AnyBatch",
    "BatchBuilder",
    "Codec",
    "ControlRecord",
    "ControlType",
    "LegacyBatch",
    "NewRecord",
    "Record",
    "RecordBatch",
    "TimestampType",
    "build_batch",
    "build_control_batch",
    "decode_control_record",
    "encode_end_txn_marker",
    "read_batches",
    "record_size_upper_bound",
    "rewrite_batch_header",
    "set_base_offset",
]
