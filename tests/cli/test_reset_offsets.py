"""``kclient groups reset-offsets`` against the mock cluster (and once against Tansu)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from kclient.admin import AsyncAdmin
from kclient.cli._errors import CliError
from kclient.cli._reset import (
    Bounds,
    Strategy,
    Target,
    parse_datetime_ms,
    parse_topic_spec,
    plan_reset,
    select_partitions,
)
from kclient.consumer.consumer import AsyncConsumer
from kclient.producer.producer import AsyncProducer
from kclient.structs import TopicPartition
from kclient.testing.mock import MockCluster
from tests.cli._helpers import Result, assert_one_line_error, run_cli

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)
GROUP = "g"


# -- pure planning -----------------------------------------------------------------------


def test_topic_specs() -> None:
    assert parse_topic_spec("orders") == ("orders", None)
    assert parse_topic_spec("orders:2,0,2") == ("orders", (2, 0))
    for bad in (":1", "t:x", "t:-1", "t:"):
        with pytest.raises(CliError):
            parse_topic_spec(bad)


def test_datetimes() -> None:
    assert parse_datetime_ms("1970-01-01T00:00:01Z") == 1000
    assert parse_datetime_ms("1970-01-01T01:00:02.5+01:00") == 2500
    with pytest.raises(CliError, match="not ISO 8601"):
        parse_datetime_ms("yesterday")


def test_select_partitions_checks_the_real_ones() -> None:
    existing = {"t": [0, 1], "u": [0]}
    assert select_partitions([("t", None), ("u", (0,))], existing) == [T0, T1, ("u", 0)]
    with pytest.raises(CliError, match="topic v does not exist"):
        select_partitions([("v", None)], existing)
    with pytest.raises(CliError, match="t has no partition 5"):
        select_partitions([("t", (0, 5))], existing)


@pytest.mark.parametrize(
    ("strategy", "news", "notes"),
    [
        (Strategy(Target.EARLIEST), [2, 0], 0),
        (Strategy(Target.LATEST), [10, 4], 0),
        (Strategy(Target.OFFSET, 3), [3, 3], 0),
        (Strategy(Target.OFFSET, 7), [7, 4], 1),  # past the end of t-1: its end
        (Strategy(Target.OFFSET, 1), [2, 1], 1),  # before the start of t-0: its start
        (Strategy(Target.SHIFT, -4), [2, 0], 2),  # 5-4=1 and 3-4=-1: below both starts
        (Strategy(Target.DATETIME, 5), [6, 4], 0),  # t-1: no record after the time: end
    ],
)
def test_plan(strategy: Strategy, news: list[int], notes: int) -> None:
    bounds = {T0: Bounds(2, 10, at_time=6), T1: Bounds(0, 4, at_time=None)}
    plan = plan_reset(strategy, [T0, T1], {T0: 5, T1: 3}, bounds)
    assert [r.new for r in plan.rows] == news
    assert [r.current for r in plan.rows] == [5, 3]
    assert len(plan.notes) == notes


def test_shift_needs_a_committed_offset() -> None:
    with pytest.raises(CliError, match="no committed offset"):
        plan_reset(Strategy(Target.SHIFT, 1), [T0], {T0: None}, {T0: Bounds(0, 9)})


# -- against the mock cluster ------------------------------------------------------------


@pytest.fixture
async def cluster() -> AsyncIterator[MockCluster]:
    """Topic t: 5 records in partition 0, 3 in partition 1; group g committed 4 and 1."""
    async with MockCluster() as mock:
        mock.create_topic("t", partitions=2)
        boot = mock.bootstrap_servers
        async with AsyncProducer(bootstrap_servers=boot) as producer:
            for partition, count in ((0, 5), (1, 3)):
                for i in range(count):
                    await producer.send("t", b"v%d" % i, partition=partition)
            await producer.flush()
        await _commit(mock, {T0: 4, T1: 1})
        yield mock


async def _commit(mock: MockCluster, offsets: dict[TopicPartition, int]) -> None:
    async with AsyncAdmin(bootstrap_servers=mock.bootstrap_servers) as admin:
        for result in (await admin.alter_consumer_group_offsets(GROUP, offsets)).values():
            result.raise_on_error()


async def _committed(mock: MockCluster) -> dict[TopicPartition, int]:
    async with AsyncAdmin(bootstrap_servers=mock.bootstrap_servers) as admin:
        found = await admin.list_consumer_group_offsets(GROUP, with_lag=False)
    return {tp: o.committed.offset for tp, o in found.items() if o.committed is not None}


async def reset(capsys: pytest.CaptureFixture[str], mock: MockCluster, *argv: str) -> Result:
    return await run_cli(
        capsys, "groups", "reset-offsets", GROUP, *argv, "-b", mock.bootstrap_servers
    )


def table(result: Result) -> list[list[str]]:
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()]
    assert rows[0] == ["TOPIC", "PARTITION", "CURRENT", "NEW"]
    return rows[1:]


@pytest.mark.anyio
async def test_dry_run_is_the_default_and_changes_nothing(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in ((), ("--dry-run",)):
        result = await reset(capsys, cluster, "--topic", "t", "--to-earliest", *flags)
        assert table(result) == [["t", "0", "4", "0"], ["t", "1", "1", "0"]]
        assert "dry run: nothing was changed" in result.err
    assert await _committed(cluster) == {T0: 4, T1: 1}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--topic", "t", "--to-earliest"), {T0: 0, T1: 0}),
        (("--topic", "t", "--to-latest"), {T0: 5, T1: 3}),
        (("--topic", "t:1", "--to-offset", "2"), {T0: 4, T1: 2}),
        (("--all-topics", "--shift-by", "-1"), {T0: 3, T1: 0}),
        (("--topic", "t", "--to-datetime", "2999-01-01T00:00:00Z"), {T0: 5, T1: 3}),
        (("--topic", "t:0", "--to-datetime", "1970-01-02"), {T0: 0, T1: 1}),
    ],
)
async def test_execute(
    cluster: MockCluster,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    expected: dict[TopicPartition, int],
) -> None:
    result = await reset(capsys, cluster, *argv, "--execute")
    shown = {TopicPartition(r[0], int(r[1])): int(r[3]) for r in table(result)}
    assert shown.items() <= expected.items()
    assert await _committed(cluster) == expected
    assert f"group {GROUP}: committed {len(shown)} new offsets" in result.err


@pytest.mark.anyio
async def test_out_of_range_target_is_clamped_with_a_note(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await reset(capsys, cluster, "--topic", "t", "--to-offset", "4", "--execute")
    assert table(result) == [["t", "0", "4", "4"], ["t", "1", "1", "3"]]
    assert "note: t-1: 4 is past the latest offset; using 3" in result.err
    assert await _committed(cluster) == {T0: 4, T1: 3}


@pytest.mark.anyio
async def test_refused_while_the_group_has_members(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    consumer: AsyncConsumer[bytes, bytes] = AsyncConsumer(
        bootstrap_servers=cluster.bootstrap_servers,
        group_id=GROUP,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    async with consumer:
        consumer.subscribe(["t"])
        with anyio.fail_after(20):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
        result = await reset(capsys, cluster, "--topic", "t", "--to-earliest", "--execute")
    line = assert_one_line_error(result, "groups")
    assert line.startswith(f"kclient groups: error: group {GROUP} is active (Stable, 1 members)")
    assert "stop its consumers" in line
    assert result.out == ""
    committed = await _committed(cluster)
    assert committed[T0] >= 4 and committed[T1] >= 1  # not reset (the member may commit)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--topic", "nope", "--to-earliest"), "topic nope does not exist"),
        (("--topic", "t:7", "--to-earliest"), "topic t has no partition 7 (it has 2)"),
        (("--topic", "t", "--to-datetime", "soon"), "--to-datetime 'soon' is not ISO 8601"),
        (("--topic", "t", "--to-offset", "-3"), "--to-offset must not be negative"),
    ],
)
async def test_bad_input_is_one_line(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    line = assert_one_line_error(await reset(capsys, cluster, *argv, "--execute"), "groups")
    assert line.startswith(f"kclient groups: error: {message}")
    assert await _committed(cluster) == {T0: 4, T1: 1}


@pytest.mark.anyio
async def test_shift_without_committed_offsets_and_all_topics_of_a_new_group(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = ("groups", "reset-offsets", "fresh", "-b", cluster.bootstrap_servers)
    shift = await run_cli(capsys, *fresh, "--topic", "t", "--shift-by", "1")
    assert "cannot shift t-0: the group has no committed offset there" in shift.err
    assert_one_line_error(shift, "groups")
    every = await run_cli(capsys, *fresh, "--all-topics", "--to-earliest")
    assert "group fresh has no committed offsets (name --topic)" in every.err
    new = await run_cli(capsys, *fresh, "--topic", "t", "--to-latest", "--execute")
    assert table(new) == [["t", "0", "-", "5"], ["t", "1", "-", "3"]]


def test_unreachable_cluster_is_one_line(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from kclient.cli import main

    argv = ["groups", "reset-offsets", GROUP, "--topic", "t", "--to-earliest"]
    assert main([*argv, "-b", f"127.0.0.1:{closed_port}", "--timeout", "1"]) == 1
    captured = capsys.readouterr()
    assert (
        Result(1, captured.out, captured.err).error_lines[0].startswith("kclient groups: error: ")
    )
    assert len(Result(1, captured.out, captured.err).error_lines) == 1
    assert "Traceback" not in captured.err


@pytest.mark.integration
def test_against_tansu(tansu_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    from kclient.cli import main

    topic, group = f"reset-{uuid.uuid4().hex[:8]}", f"reset-g-{uuid.uuid4().hex[:6]}"
    b = ["-b", tansu_bootstrap]
    assert main(["topics", "create", topic, "--partitions", "2", *b]) == 0
    argv = ["groups", "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "0"]
    assert main([*argv, *b]) == 0
    assert "dry run" in capsys.readouterr().err
    assert main([*argv, "--execute", *b]) == 0
    assert main(["groups", "lag", group, *b]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [topic, "1", "0"] in [row[:3] for row in rows]
