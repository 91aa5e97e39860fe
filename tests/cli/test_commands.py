"""``kclient topics``, ``produce``, ``consume`` and ``groups`` against the session Tansu."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from kclient.cli import main

pytestmark = pytest.mark.integration


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture
def topic(tansu_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> str:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    _run(capsys, "topics", "create", name, "--partitions", "2", "-b", tansu_bootstrap)
    return name


def test_topics_create_list_describe_delete(
    tansu_bootstrap: str, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    b = ("-b", tansu_bootstrap)
    assert topic in _run(capsys, "topics", "list", *b).split()
    rows = _run(capsys, "topics", "describe", topic, *b).splitlines()
    assert rows[0].split() == ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"]
    assert [r.split()[1] for r in rows[1:]] == ["0", "1"]
    assert main(["topics", "create", topic, *b]) == 1  # exists: one line, non-zero
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TOPIC_ALREADY_EXISTS" in err
    _run(capsys, "topics", "delete", topic, *b)
    assert topic not in _run(capsys, "topics", "list", *b).split()


def test_produce_then_consume_by_partition_and_group(
    tansu_bootstrap: str, topic: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = ("-b", tansu_bootstrap)
    lines = tmp_path / "in.txt"
    lines.write_text("k1:one\nk2:two\nk3:three\n")
    _run(capsys, "produce", topic, "--file", str(lines), "-K", ":", "-H", "src=test",
         "--compression", "lz4", *b)  # fmt: skip
    out = _run(capsys, "consume", topic, "--from-beginning", "--format", "json", "-n", "3", *b)
    got = sorted((r["key"], r["value"], r["headers"]) for r in map(json.loads, out.splitlines()))
    assert got == [
        (f"k{i}", v, [["src", "test"]]) for i, v in [(1, "one"), (2, "two"), (3, "three")]
    ]
    group = f"{topic}-g"
    out = _run(capsys, "consume", topic, "-g", group, "--from-beginning", "-n", "3",
               "--session-timeout-ms", "6000", *b)  # fmt: skip
    assert sorted(out.split()) == ["one", "three", "two"]
    assert group in _run(capsys, "groups", "list", *b)
    assert f"group {group}: state" in _run(capsys, "groups", "describe", group, *b)
    lag = _run(capsys, "groups", "lag", group, *b).splitlines()
    assert lag[0].split() == ["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]
    assert sum(int(row.split()[2]) for row in lag[1:]) == 3  # everything read was committed
