"""Record batch v2 (magic 2) wire layout, shared by the encoder and the decoder.

Wire layout (big-endian; offsets from the start of the batch)::

    0   baseOffset            int64
    8   batchLength           int32   bytes after this field (total size - 12)
    12  partitionLeaderEpoch  int32
    16  magic                 int8    2
    17  crc                   uint32  CRC-32C of bytes 21..end
    21  attributes            int16
    23  lastOffsetDelta       int32
    27  baseTimestamp         int64
    35  maxTimestamp          int64
    43  producerId            int64
    51  producerEpoch         int16
    53  baseSequence          int32
    57  recordsCount          int32
    61  records               (see record.py), compressed as a whole unless codec 0

Attribute bits: 0-2 codec, 3 timestamp type (1 = log-append time), 4
transactional, 5 control, 6 delete horizon (baseTimestamp then holds it).

A message set (Produce request, Fetch response) is batches back to back; the
first 17 bytes of every entry (offset, length, epoch or CRC, magic) sit at
the same places in v0/v1 messages, which is how
:func:`~protocol.records.batch_decode.read_batches` tells the formats apart.
Because baseOffset and partitionLeaderEpoch precede the CRC'd range, a broker
(or a retrying producer) can rewrite them without touching the CRC; producer
id, epoch and sequence need a CRC recomputation.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

RECORD_BATCH_OVERHEAD: Final = 61
LOG_OVERHEAD: Final = 12  # baseOffset + batchLength
CRC_START: Final = 21
MAGIC: Final = 2

# Header split at the CRC: the first part is outside the checksum.
HEAD: Final = struct.Struct(">qiibI")  # baseOffset .. crc (21 bytes)
TAIL: Final = struct.Struct(">hiqqqhii")  # attributes .. recordsCount (40 bytes)
FULL: Final = struct.Struct(">qiibIhiqqqhii")
I16: Final = struct.Struct(">h")
I32: Final = struct.Struct(">i")
I64: Final = struct.Struct(">q")
U32: Final = struct.Struct(">I")

CODEC_MASK: Final = 0x07
TIMESTAMP_TYPE_BIT: Final = 0x08
TRANSACTIONAL_BIT: Final = 0x10
CONTROL_BIT: Final = 0x20
DELETE_HORIZON_BIT: Final = 0x40

Bytes = bytes | bytearray | memoryview
Headers = Sequence[tuple[str, Bytes | None]]
