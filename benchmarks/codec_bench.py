"""Record-batch codec benchmark: ours vs kafka-python vs aiokafka (pure Python and C).

Builds and parses one batch of 1,000 records (10-byte keys, 100-byte values,
no headers) per codec and reports records/s plus our speed-up over each other
implementation. Run with ``python -m benchmarks.codec_bench`` (``--quick`` for a
few-second CI smoke run, ``--json PATH`` to also save the figures in the same shape as
producer_bench and consumer_bench: one result per implementation, codec and operation).

Fairness notes: every implementation compresses at the same level where the
libraries allow it (gzip 9, which kafka-python and aiokafka hard-code; zstd 3;
lz4 frame level 0 for us and kafka-python, while aiokafka always uses lz4
level 9 / HC). Parsing means decoding every record into the library's record
objects. kafka-python needs python-snappy, which is not installed, so its
snappy calls are routed to cramjam (the same library we and aiokafka use).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cramjam

from benchmarks._harness import Result, save_json
from protocol.records import BatchBuilder, Codec, read_batches

N_RECORDS = 1000
CODECS = [Codec.NONE, Codec.GZIP, Codec.SNAPPY, Codec.LZ4, Codec.ZSTD]
OUR_LEVELS = {Codec.GZIP: 9, Codec.ZSTD: 3, Codec.LZ4: 0}
BASE_TS = 1_700_000_000_000


def make_records() -> list[tuple[int, bytes, bytes]]:
    rng = random.Random(42)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789     "
    return [
        (BASE_TS + i, b"key-%06d" % i, bytes(rng.choice(alphabet) for _ in range(100)))
        for i in range(N_RECORDS)
    ]


# -- implementations ------------------------------------------------------------------


@dataclass
class Impl:
    name: str
    build: Callable[[list[tuple[int, bytes, bytes]], Codec], bytes]
    parse: Callable[[bytes], int]


def _ours() -> Impl:
    def build(records: list[tuple[int, bytes, bytes]], codec: Codec) -> bytes:
        builder = BatchBuilder(codec=codec, compression_level=OUR_LEVELS.get(codec))
        append = builder.append
        for ts, key, value in records:
            append(ts, key, value)
        return builder.build()

    def parse(data: bytes) -> int:
        return sum(len(batch.records()) for batch in read_batches(data))

    return Impl("kclient", build, parse)


def _kafka_python() -> Impl | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import kafka.codec  # type: ignore[import-untyped]
            from kafka.record.default_records import (  # type: ignore[import-untyped]
                DefaultRecordBatch,
                DefaultRecordBatchBuilder,
            )
    except ImportError:
        return None
    if not kafka.codec.has_snappy():
        kafka.codec.snappy = types.SimpleNamespace(
            compress=lambda d: bytes(cramjam.snappy.compress_raw(bytes(d))),
            decompress=lambda d: bytes(cramjam.snappy.decompress_raw(bytes(d))),
        )

    def build(records: list[tuple[int, bytes, bytes]], codec: Codec) -> bytes:
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=int(codec),
            is_transactional=False,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 30,
        )
        for i, (ts, key, value) in enumerate(records):
            builder.append(i, ts, key, value, [])
        return bytes(builder.build())

    def parse(data: bytes) -> int:
        return len(list(DefaultRecordBatch(data)))

    return Impl("kafka-python", build, parse)


def _aiokafka(native: bool) -> Impl | None:
    try:
        if native:
            from aiokafka.record._crecords import (  # type: ignore[import-untyped]
                DefaultRecordBatch as Batch,
            )
            from aiokafka.record._crecords import (
                DefaultRecordBatchBuilder as Builder,
            )
        else:
            from aiokafka.record.default_records import (  # type: ignore[import-untyped]
                _DefaultRecordBatchBuilderPy as Builder,
            )
            from aiokafka.record.default_records import (
                _DefaultRecordBatchPy as Batch,
            )
    except ImportError:
        return None

    def build(records: list[tuple[int, bytes, bytes]], codec: Codec) -> bytes:
        builder = Builder(
            magic=2,
            compression_type=int(codec),
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 30,
        )
        for i, (ts, key, value) in enumerate(records):
            builder.append(i, ts, key, value, [])
        return bytes(builder.build())

    def parse(data: bytes) -> int:
        return len(list(Batch(data)))

    return Impl("aiokafka-C" if native else "aiokafka-py", build, parse)


# -- timing ------------------------------------------------------------------------------


def best_time(fn: Callable[[], Any], min_seconds: float, repeats: int) -> float:
    """Best per-call time over ``repeats`` rounds of at least ``min_seconds`` each."""
    fn()  # warm up (imports, caches)
    best = float("inf")
    for _ in range(repeats):
        calls = 0
        started = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def _result(
    name: str, codec: Codec, op: str, seconds: float | None, note: str | None = None
) -> Result:
    """One timed (implementation, codec, operation): ``seconds`` is the best time for one
    batch of N_RECORDS, None when it failed (``note`` says why; JSON has no NaN)."""
    return Result(
        client=name,
        variant=f"{codec.name.lower()} {op}",
        records=N_RECORDS,
        seconds=seconds,
        rate=None if seconds is None else N_RECORDS / seconds,
        extra={"codec": codec.name.lower(), "op": op},
        note=note,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (CI)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also save results here")
    args = parser.parse_args(argv)
    min_seconds, repeats = (0.02, 2) if args.quick else (0.15, 3)

    records = make_records()
    impls = [i for i in (_ours(), _kafka_python(), _aiokafka(False), _aiokafka(True)) if i]
    others = [i.name for i in impls[1:]]
    print(
        f"{N_RECORDS} records/batch, 10-byte keys, 100-byte values, no headers; "
        f"Python {sys.version.split()[0]}"
    )
    header = f"{'codec':7} {'op':5} " + " ".join(f"{i.name:>13}" for i in impls)
    header += "   " + " ".join(f"{'vs ' + n:>15}" for n in others)
    print("records/s (higher is better); 'vs X' = kclient speed / X speed")
    print(header)
    print("-" * len(header))
    failures: list[str] = []
    results: list[Result] = []
    for codec in CODECS:
        reference = impls[0].build(records, codec)
        # Every reader parses the same (our) batch; every builder's output is
        # checked to round-trip through our reader.
        for op in ("build", "parse"):
            rates: list[float] = []
            for impl in impls:
                try:
                    if op == "build":
                        built = impl.build(records, codec)
                        assert _ours().parse(built) == N_RECORDS
                        t = best_time(
                            functools.partial(impl.build, records, codec), min_seconds, repeats
                        )
                    else:
                        assert impl.parse(reference) == N_RECORDS
                        t = best_time(
                            functools.partial(impl.parse, reference), min_seconds, repeats
                        )
                    rates.append(N_RECORDS / t)
                    results.append(_result(impl.name, codec, op, t))
                except Exception as exc:  # report and keep going
                    failures.append(f"{impl.name} {op} {codec.name}: {exc!r}")
                    rates.append(float("nan"))
                    results.append(_result(impl.name, codec, op, None, note=repr(exc)))
            line = f"{codec.name.lower():7} {op:5} " + " ".join(f"{r:13,.0f}" for r in rates)
            line += "   " + " ".join(f"{rates[0] / r:14.2f}x" for r in rates[1:])
            print(line, flush=True)
    for failure in failures:
        print("FAILED:", failure)
    if args.json:
        params = {
            "records_per_batch": N_RECORDS,
            "key_size": 10,
            "value_size": 100,
            "levels": {codec.name.lower(): level for codec, level in OUR_LEVELS.items()},
            "quick": args.quick,
        }
        save_json(args.json, "codec", params, results)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
