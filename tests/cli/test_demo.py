"""``kclient demo`` end to end, its versions table, and the one-line error path."""

from __future__ import annotations

import re

import pytest

from kclient.cli import main
from kclient.cli._ledger import Ledger, key_for, value_for
from kclient.structs import ConsumerRecord, RecordMetadata


@pytest.mark.integration
def test_demo_end_to_end(tansu_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--records", "5000", "--bootstrap-server", tansu_bootstrap])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: all 5,000 records arrived exactly once" in out
    assert re.search(r"produce\s+[\d,]+ rec/s", out)
    consume = r"consume\s+[\d,]+ rec/s\s+\([\d.]+ s first to last record, 2 consumers: "
    assert re.search(consume + r"[\d,]+, [\d,]+\)", out)


@pytest.mark.integration
def test_versions_table_from_a_running_broker(
    tansu_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--versions-table", "-b", tansu_bootstrap]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| key | API | Tansu min | Tansu max | spec validVersions |")
    assert "| 18 | ApiVersions | 0 |" in out


def test_unreachable_bootstrap_is_one_line(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--records", "10", "-b", f"127.0.0.1:{closed_port}", "--timeout", "1"]
    assert main(args) != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("kclient demo: error: ")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in captured.err + captured.out
    assert f"127.0.0.1:{closed_port}" in err


def test_env_bootstrap_and_bad_arguments(
    closed_port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KCLIENT_BOOTSTRAP", f"127.0.0.1:{closed_port}")
    assert main(["demo", "--records", "0"]) == 1
    assert capsys.readouterr().err.strip() == "kclient demo: error: --records must be at least 1"


def _record(index: int, partition: int, offset: int, value: bytes | None = None) -> object:
    value = value_for(index) if value is None else value
    return ConsumerRecord("t", partition, offset, 0, 0, key_for(index), value, (), -1, 0, 0)


def test_ledger_finds_duplicates_gaps_and_corruption() -> None:
    ledger = Ledger(4)
    for i in range(4):
        ledger.acked(i, RecordMetadata("t", i % 2, i, 0))
    ledger.consumed(_record(0, 0, 0))  # type: ignore[arg-type]
    ledger.consumed(_record(0, 0, 0))  # type: ignore[arg-type]
    ledger.consumed(_record(1, 1, 9))  # type: ignore[arg-type]  # wrong offset
    ledger.consumed(_record(2, 0, 2, value=b"bad"))  # type: ignore[arg-type]
    verdict = ledger.verdict()
    assert (verdict.missing, verdict.duplicates, verdict.corrupt) == (1, 1, 2)
    assert not verdict.ok
    assert verdict.line().startswith("FAILED: 1 missing, 1 duplicated, 2 corrupt")
