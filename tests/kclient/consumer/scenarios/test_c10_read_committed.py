"""C10: read_committed with aborted transactions.

Setup: 1,000 transactions on 2 partitions, written straight into the mock's logs by 4
producers whose transactions overlap in pairs (each aborted range holds the other
producer's committed data too); every third transaction is aborted; every fifth abort is
followed by a second abort marker (a duplicate marker with no open transaction); each
partition ends with a run of aborted transactions only.

Must hold (reliability.md C10): exactly the committed records are delivered, in offset
order, once (no aborted record, no control record); the position advances past the
markers to the log end, also across the trailing fetches that hold only aborted data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import pytest

from kclient import TopicPartition
from kclient.testing.mock import MockCluster
from kclient.testing.mock.batches import parse_header
from kclient.testing.mock.log import PartitionLog
from protocol.records.batch import build_batch

from ._helpers import make_consumer, tps

pytestmark = pytest.mark.anyio

TOPIC, PARTITIONS, TXNS, TAIL_ABORTS = "c10", 2, 1000, 6
EPOCH = 0


@dataclass
class Writer:
    log: PartitionLog
    sequences: dict[int, int] = field(default_factory=dict)
    written: list[tuple[int, list[bytes]]] = field(default_factory=list)  # (txn, values)
    committed: set[int] = field(default_factory=set)

    @property
    def expected(self) -> list[bytes]:
        return [v for txn, values in self.written if txn in self.committed for v in values]

    def write(self, pid: int, values: list[bytes], txn: int) -> None:
        self.written.append((txn, values))
        seq = self.sequences.get(pid, 0)
        data = build_batch(
            [(1_700_000_000_000, None, v) for v in values],
            producer_id=pid, producer_epoch=EPOCH, base_sequence=seq, is_transactional=True,
        )  # fmt: skip
        self.sequences[pid] = seq + len(values)
        self.log.append([(parse_header(data), data)])

    def end(self, pid: int, commit: bool) -> None:
        self.log.write_marker(pid, EPOCH, commit, 0, 1_700_000_000_000)


def write_transactions(w: Writer, partition: int) -> None:
    txn = 0
    while txn < TXNS:
        pair = [txn, txn + 1]
        pids = [1000 + t % 4 for t in pair]
        for part in range(2):  # overlapping: A1 B1 A2 B2, then both markers
            for t, pid in zip(pair, pids, strict=True):
                w.write(pid, [b"p%d-t%d-%d-%d" % (partition, t, part, i) for i in range(3)], t)
        for t, pid in zip(pair, pids, strict=True):
            aborted = t % 3 == 2
            w.end(pid, commit=not aborted)
            if aborted and t % 15 == 14:
                w.end(pid, commit=False)  # duplicate abort marker
            if not aborted:
                w.committed.add(t)
        txn += 2
    for k in range(TAIL_ABORTS):  # a tail of aborted data only
        pid = 1000 + k % 4
        w.write(pid, [b"tail-%d" % k] * 50, TXNS + k)
        w.end(pid, commit=False)


async def test_read_committed_skips_aborted_and_control_records() -> None:
    async with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=PARTITIONS)
        writers = []
        for p in range(PARTITIONS):
            part = cluster.state.partition(TOPIC, p)
            assert part is not None
            writers.append(Writer(part.log))
            write_transactions(writers[-1], p)
        ends = [w.log.log_end_offset for w in writers]
        assert all(w.log.last_stable_offset == end for w, end in zip(writers, ends, strict=True))
        got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        async with make_consumer(
            cluster, isolation_level="read_committed", max_partition_fetch_bytes=4096
        ) as c:
            c.assign(tps(TOPIC, PARTITIONS))
            with anyio.fail_after(30):
                while any(
                    c._subs.position(TopicPartition(TOPIC, p)) != ends[p] for p in range(PARTITIONS)
                ):
                    for tp, records in (await c.getmany(timeout_ms=50)).items():
                        got[tp.partition] += [r.value for r in records]
                        offsets = [r.offset for r in records]
                        assert offsets == sorted(set(offsets))
        committed_txns = sum(1 for t in range(TXNS) if t % 3 != 2)
        for p in range(PARTITIONS):
            assert len(writers[p].expected) == 6 * committed_txns
            assert got[p] == writers[p].expected
        assert cluster.errors == []
