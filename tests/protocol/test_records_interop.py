"""Interop: our batches decode with aiokafka's and kafka-python's readers, and theirs with ours.

Covers every codec, headers, null keys/values and timestamps, control
batches, and legacy v0/v1 message sets written by their legacy builders.
kafka-python's snappy support needs python-snappy and its old-kafka lz4 needs
xxhash; neither is installed, so both are shimmed (snappy via cramjam, xxh32
via our own verified implementation) for the duration of a test.
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import cramjam
import pytest
from aiokafka.record import default_records as aio_default  # type: ignore[import-untyped]
from aiokafka.record import legacy_records as aio_legacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.compression._lz4 import _xxh32
from protocol.records import (
    BatchBuilder,
    Codec,
    ControlType,
    LegacyBatch,
    RecordBatch,
    build_control_batch,
    read_batches,
)

# kafka-python's package import trips a DeprecationWarning (importlib.resources.read_text),
# which the suite turns into an error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.codec  # type: ignore[import-untyped]
    from kafka.record import default_records as kp_default  # type: ignore[import-untyped]
    from kafka.record import legacy_records as kp_legacy
    from kafka.record import memory_records as kp_memory

KpBatch = kp_default.DefaultRecordBatch
KpBuilder = kp_default.DefaultRecordBatchBuilder
KpLegacyBuilder = kp_legacy.LegacyRecordBatchBuilder
KpMemoryRecords = kp_memory.MemoryRecords
KpMemoryRecordsBuilder = kp_memory.MemoryRecordsBuilder

try:
    from aiokafka.record import _crecords
except ImportError:  # pragma: no cover - depends on the installed wheel
    _crecords = None

RecordTuple = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]

AIO_READERS: list[tuple[str, Any]] = [("aiokafka-py", aio_default._DefaultRecordBatchPy)]
AIO_BUILDERS: list[tuple[str, Any]] = [("aiokafka-py", aio_default._DefaultRecordBatchBuilderPy)]
AIO_LEGACY_BUILDERS: list[tuple[str, Any]] = [
    ("aiokafka-py", aio_legacy._LegacyRecordBatchBuilderPy)
]
if _crecords is not None:
    AIO_READERS.append(("aiokafka-c", _crecords.DefaultRecordBatch))
    AIO_BUILDERS.append(("aiokafka-c", _crecords.DefaultRecordBatchBuilder))
    AIO_LEGACY_BUILDERS.append(("aiokafka-c", _crecords.LegacyRecordBatchBuilder))

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

records_strategy = st.lists(
    st.tuples(
        st.integers(0, 1 << 42),
        st.none() | st.binary(max_size=50),
        st.none() | st.binary(max_size=200),
        st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)), max_size=3),
    ),
    min_size=1,
    max_size=25,
)


@pytest.fixture(autouse=True)
def kafka_python_codecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    snappy = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
    )
    xxhash = types.SimpleNamespace(
        xxh32=lambda data: types.SimpleNamespace(
            digest=lambda: _xxh32(bytes(data)).to_bytes(4, "big")
        )
    )
    monkeypatch.setattr(kafka.codec, "snappy", snappy)
    monkeypatch.setattr(kafka.codec, "xxhash", xxhash)
    yield


def ours(records: list[RecordTuple], codec: Codec, **kwargs: Any) -> bytes:
    builder = BatchBuilder(codec=codec, **kwargs)
    for ts, key, value, headers in records:
        builder.append(ts, key, value, headers)
    return builder.build()


def decoded_by_us(data: bytes) -> list[RecordTuple]:
    out: list[RecordTuple] = []
    for batch in read_batches(data):
        out += [(r.timestamp, r.key, r.value, list(r.headers)) for r in batch.records()]
    return out


def as_tuples(records: Any) -> list[RecordTuple]:
    return [(r.timestamp, r.key, r.value, list(r.headers)) for r in records]


# -- ours -> theirs ----------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize(("name", "reader"), AIO_READERS)
@SETTINGS
@given(records=records_strategy)
def test_aiokafka_reads_ours(
    codec: Codec, name: str, reader: Any, records: list[RecordTuple]
) -> None:
    data = ours(records, codec, base_offset=7, producer_id=99, producer_epoch=2, base_sequence=5)
    batch = reader(data)
    assert batch.validate_crc()
    assert batch.base_offset == 7
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (99, 2, 5)
    assert batch.compression_type == codec
    got = list(batch)
    assert [r.offset for r in got] == list(range(7, 7 + len(records)))
    assert as_tuples(got) == records


@pytest.mark.parametrize("codec", list(Codec))
@SETTINGS
@given(records=records_strategy)
def test_kafka_python_reads_ours(codec: Codec, records: list[RecordTuple]) -> None:
    data = ours(
        records,
        codec,
        base_offset=3,
        is_transactional=True,
        producer_id=1,
        producer_epoch=0,
        base_sequence=0,
    )
    batch = KpBatch(data)
    assert batch.validate_crc()
    assert batch.is_transactional
    got = list(batch)
    assert [r.offset for r in got] == list(range(3, 3 + len(records)))
    assert as_tuples(got) == records
    # Through MemoryRecords, as kafka-python's consumer reads a fetch response.
    mem = KpMemoryRecords(data + data[:20])  # with a partial trailing batch
    batches = []
    while mem.has_next():
        nxt = mem.next_batch()
        if nxt is None:
            break
        batches.append(nxt)
    assert len(batches) == 1
    assert as_tuples(batches[0]) == records


def test_theirs_read_our_control_batch() -> None:
    data = build_control_batch(
        commit=True, producer_id=4, producer_epoch=1, coordinator_epoch=9, timestamp=100
    )
    kp = KpBatch(data)
    assert kp.is_control_batch and kp.is_transactional
    (marker,) = list(kp)
    assert marker.type == ControlType.COMMIT and marker.commit
    for _, reader in AIO_READERS:
        aio = reader(data)
        assert aio.is_control_batch


# -- theirs -> ours ------------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize(("name", "builder_cls"), AIO_BUILDERS)
@SETTINGS
@given(records=records_strategy)
def test_ours_reads_aiokafka(
    codec: Codec, name: str, builder_cls: Any, records: list[RecordTuple]
) -> None:
    builder = builder_cls(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=12,
        producer_epoch=3,
        base_sequence=40,
        batch_size=1 << 30,
    )
    for i, (ts, key, value, headers) in enumerate(records):
        assert builder.append(i, ts, key, value, headers) is not None
    data = bytes(builder.build())
    (batch,) = list(read_batches(data))
    assert isinstance(batch, RecordBatch)
    # aiokafka falls back to no compression when compressing would grow the batch.
    assert batch.codec in (codec, Codec.NONE)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (12, 3, 40)
    assert [r.offset for r in batch.records()] == list(range(len(records)))
    assert decoded_by_us(data) == records


@pytest.mark.parametrize("codec", list(Codec))
@SETTINGS
@given(records=records_strategy)
def test_ours_reads_kafka_python(codec: Codec, records: list[RecordTuple]) -> None:
    builder = KpBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for i, (ts, key, value, headers) in enumerate(records):
        assert builder.append(i, ts, key, value, headers) is not None
    assert decoded_by_us(bytes(builder.build())) == records

    mrb = KpMemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 30)
    for ts, key, value, headers in records:
        mrb.append(ts, key, value, headers)
    mrb.close()
    assert decoded_by_us(bytes(mrb.buffer())) == records


# -- legacy v0/v1 written by their builders -------------------------------------------------

LEGACY_CODECS = [Codec.NONE, Codec.GZIP, Codec.SNAPPY, Codec.LZ4]


def _make_legacy(cls: Any, magic: int, codec: int) -> Any:
    return cls(magic, codec, 1 << 30)


def _legacy_cases() -> list[tuple[str, Callable[[int, int], Any]]]:
    cases: list[tuple[str, Callable[[int, int], Any]]] = [
        ("kafka-python", lambda magic, codec: KpLegacyBuilder(magic, codec, 1 << 30)),
    ]
    for name, cls in AIO_LEGACY_BUILDERS:
        cases.append((name, functools.partial(_make_legacy, cls)))
    return cases


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", LEGACY_CODECS)
@pytest.mark.parametrize(("name", "make"), _legacy_cases())
def test_ours_reads_legacy(
    magic: int, codec: Codec, name: str, make: Callable[[int, int], Any]
) -> None:
    records = [
        (
            1_600_000_000_000 + i,
            None if i % 3 == 0 else b"k%d" % i,
            None if i % 4 == 1 else b"value-%d" % i * (i % 5),
        )
        for i in range(30)
    ]
    if name.startswith("aiokafka") and magic == 0 and codec == Codec.LZ4:
        pytest.skip("aiokafka refuses lz4 for magic 0 (KAFKA-3160)")
    builder = make(magic, codec)
    for i, (ts, key, value) in enumerate(records):
        builder.append(i, ts, key, value)
    data = bytes(builder.build())
    batches = list(read_batches(data))
    assert all(isinstance(b, LegacyBatch) and b.magic == magic for b in batches)
    assert len(batches) == (1 if codec else len(records))
    got = [r for b in batches for r in b.records()]
    assert [r.offset for r in got] == list(range(len(records)))
    assert [(r.key, r.value) for r in got] == [(k, v) for _, k, v in records]
    expected_ts = [ts if magic == 1 else -1 for ts, _, _ in records]
    assert [r.timestamp for r in got] == expected_ts
    assert all(r.headers == () for r in got)
    assert batches[-1].next_offset == len(records)
    assert batches[0].base_offset == 0
    assert all(b.crc_ok() for b in batches)


@pytest.mark.parametrize("codec", LEGACY_CODECS)
def test_legacy_wrapper_offsets_made_absolute(codec: Codec) -> None:
    """Broker-assigned wrapper offset, relative inner offsets (magic 1)."""
    builder = KpLegacyBuilder(1, codec, 1 << 30)
    for i in range(5):
        builder.append(i, 1000 + i, None, b"v%d" % i)
    data = bytearray(builder.build())
    if codec:
        data[0:8] = (104).to_bytes(8, "big")  # wrapper offset = offset of the last inner
    else:
        for i in range(5):  # each uncompressed message carries its own absolute offset
            start = i * (len(data) // 5)
            data[start : start + 8] = (100 + i).to_bytes(8, "big")
    got = [r.offset for b in read_batches(bytes(data)) for r in b.records()]
    assert got == [100, 101, 102, 103, 104]
