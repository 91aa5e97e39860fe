"""Running the command line from async tests (the mock cluster lives on the test's loop)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from kclient.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        """stderr lines that are not the library's warnings."""
        return [line for line in self.err.splitlines() if not line.startswith("kclient: warning:")]


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """``main(argv)`` in a worker thread: it runs its own event loop with anyio.run."""
    capsys.readouterr()  # start clean
    with anyio.fail_after(60):
        code = await anyio.to_thread.run_sync(main, list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(result: Result, command: str) -> str:
    """Non-zero exit, exactly one ``kclient COMMAND: error: ...`` line, no traceback."""
    assert result.code != 0, result
    lines = result.error_lines
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"kclient {command}: error: "), lines
    assert "Traceback" not in result.err + result.out
    return lines[0]
