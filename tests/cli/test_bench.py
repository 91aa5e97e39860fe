"""``kclient bench`` on the mock cluster, on the session Tansu and on its own Tansu."""

from __future__ import annotations

import pytest

from kclient.admin import AsyncAdmin, OffsetSpec
from kclient.cli import build_parser, main
from kclient.cli.bench import (
    PhaseResult,
    _prepare_topic,
    options_from,
    payload,
    percentile,
    summary_rows,
)
from kclient.producer.producer import AsyncProducer
from kclient.structs import TopicPartition
from kclient.testing.mock import MockCluster
from tests.cli._helpers import assert_one_line_error, run_cli

HEADER = ["PHASE", "RECORDS", "SECONDS", "RECORDS/S", "MB/S", "P50", "MS", "P99", "MS",
          "FIRST", "RECORD", "S"]  # fmt: skip


def summary(out: str) -> dict[str, list[str]]:
    """The summary table's rows by phase (the table ends the output)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("PHASE"))
    assert lines[start].split() == HEADER
    return {row.split()[0]: row.split()[1:] for row in lines[start + 1 :]}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.01) == 7
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_summary_rows_and_payload() -> None:
    produced = PhaseResult(1000, 0.5, latencies_ms=[float(v) for v in range(1, 101)])
    consumed = PhaseResult(1000, 0.25, first_record_s=0.125)
    rows = summary_rows(100, produced, consumed)
    assert rows[0] == ["produce", "1,000", "0.50", "2,000", "0.20", "50.0", "99.0", "-"]
    assert rows[1] == ["consume", "1,000", "0.25", "4,000", "0.40", "-", "-", "0.12"]
    assert len(payload(100)) == 100 and payload(100) == payload(100) and payload(0) == b""


@pytest.mark.anyio
async def test_bench_on_the_mock_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    async with MockCluster() as cluster:
        b = ("-b", cluster.bootstrap_servers)
        options = ("--size", "50", "--partitions", "3", "--acks", "1", "--compression", "lz4")
        result = await run_cli(capsys, "bench", "--records", "3000", *options, *b)
        assert result.code == 0, result.err
        assert "3 partitions; 3,000 records of 50 bytes, acks=1, compression=lz4" in result.out
        rows = summary(result.out)
        assert rows["produce"][0] == rows["consume"][0] == "3,000"
        assert float(rows["produce"][4]) <= float(rows["produce"][5])  # p50 <= p99
        assert float(rows["consume"][6]) >= 0  # time to first record
        topic = result.out.split("topic ", 1)[1].split(":", 1)[0]
        async with AsyncAdmin(bootstrap_servers=cluster.bootstrap_servers) as admin:
            parts = (await admin.describe_topics([topic]))[topic].partitions
            ends = await admin.list_offsets(
                {TopicPartition(topic, p.partition): OffsetSpec.latest() for p in parts}
            )
        assert len(parts) == 3 and sum(r.offset for r in ends.values()) == 3000


@pytest.mark.anyio
async def test_bench_on_an_existing_topic_reads_only_its_own_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with MockCluster() as cluster:
        cluster.create_topic("busy", partitions=2)
        async with AsyncProducer(bootstrap_servers=cluster.bootstrap_servers) as producer:
            for i in range(40):
                await producer.send("busy", b"old-%d" % i, partition=i % 2)
        result = await run_cli(capsys, "bench", "--topic", "busy", "--records", "500",
                               "--partitions", "7", "-b", cluster.bootstrap_servers)  # fmt: skip
        assert result.code == 0, result.err
        assert "topic busy: 2 partitions" in result.out  # the topic's own, not --partitions
        assert summary(result.out)["consume"][0] == "500"
        # a next run's consumer would start where the topic ends now: 40 + 500 records on
        options = options_from(build_parser().parse_args(["bench", "--topic", "busy"]))
        _, starts = await _prepare_topic({"bootstrap_servers": cluster.bootstrap_servers}, options)
        assert sorted(starts) == [TopicPartition("busy", 0), TopicPartition("busy", 1)]
        assert sum(starts.values()) == 540 and min(starts.values()) >= 20
        missing = await run_cli(capsys, "bench", "--topic", "fresh-one", "--records", "10",
                                "--partitions", "2", "-b", cluster.bootstrap_servers)  # fmt: skip
        assert missing.code == 0, missing.err
        assert "topic fresh-one: 2 partitions" in missing.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--records", "0"), "--records must be at least 1"),
        (("--size", "-1"), "--size must not be negative"),
        (("--partitions", "0"), "--partitions must be at least 1"),
    ],
)
def test_bad_options_are_one_line(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv, "-b", "127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.strip() == f"kclient bench: error: {message}"


@pytest.mark.anyio
async def test_unreachable_cluster_is_one_line(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_cli(
        capsys, "bench", "--records", "10", "-b", f"127.0.0.1:{closed_port}", "--timeout", "1"
    )
    assert f"127.0.0.1:{closed_port}" in assert_one_line_error(result, "bench")


@pytest.mark.integration
def test_bench_on_tansu(tansu_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--records", "5000", "--compression", "zstd", "-b", tansu_bootstrap]) == 0
    rows = summary(capsys.readouterr().out)
    assert rows["produce"][0] == rows["consume"][0] == "5,000"


@pytest.mark.integration
def test_bench_starts_the_embedded_broker_without_a_bootstrap(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kclient.testing.tansu import TansuNotFoundError, find_tansu_binary

    try:
        find_tansu_binary()
    except TansuNotFoundError as exc:
        pytest.skip(f"Tansu broker unavailable: {exc}")
    monkeypatch.delenv("KCLIENT_BOOTSTRAP", raising=False)
    assert main(["bench", "--records", "2000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("started the embedded Tansu broker at 127.0.0.1:")
    assert summary(out)["consume"][0] == "2,000"
