"""Shared plumbing of the ``kclient`` command line: options, client settings, errors, progress.

Kept free of any third-party dependency (no rich/tqdm): the command line must work with a
plain ``pip install kclient``, so the progress line below is written with the stdlib.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

ENV_BOOTSTRAP = "KCLIENT_BOOTSTRAP"
DEFAULT_TIMEOUT_S = 30.0


class CliError(Exception):
    """A failure the user can act on: printed as one line, never with a traceback."""


def add_connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command accepts, before or after the subcommand name.

    Subparsers get ``SUPPRESS`` defaults: otherwise their defaults would overwrite a value
    given before the subcommand (argparse copies subparser defaults over the namespace).
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--bootstrap-server",
        "-b",
        default=default(None),
        help=f"host:port[,host:port...] (default: ${ENV_BOOTSTRAP})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT_S),
        help="seconds to wait for the cluster (connect, requests, metadata)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks"
    )


def bootstrap_from(args: argparse.Namespace) -> str | None:
    """--bootstrap-server, else $KCLIENT_BOOTSTRAP, else None."""
    value: str | None = args.bootstrap_server or os.environ.get(ENV_BOOTSTRAP) or None
    return value


def require_bootstrap(args: argparse.Namespace) -> str:
    bootstrap = bootstrap_from(args)
    if not bootstrap:
        raise CliError(f"no bootstrap server: pass --bootstrap-server or set ${ENV_BOOTSTRAP}")
    return bootstrap


def client_settings(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    """Client keyword settings that make every wait honour the command's --timeout."""
    ms = max(1, int(timeout_s * 1000))
    return {
        "bootstrap_servers": bootstrap,
        "client_id": "kclient-cli",
        "request_timeout_ms": ms,
        "socket_connection_setup_timeout_ms": min(ms, 10_000),
        "socket_connection_setup_timeout_max_ms": ms,
    }


def leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def one_line(exc: BaseException) -> str:
    """``Type: first line of message`` (broker errors can carry multi-line detail)."""
    exc = leaf_error(exc)
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, CliError):
        return message
    if isinstance(exc, TimeoutError) and not message:
        message = "timed out"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class Progress:
    """A single self-overwriting status line (only on a terminal; elsewhere one final line).

    Redraws are rate-limited so that updating from a hot loop stays cheap.
    """

    def __init__(self, label: str, total: int, stream: TextIO, interval: float = 0.1) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.live = stream.isatty()
        self.interval = interval
        self.started = time.perf_counter()
        self._last_draw = 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if self.live and now - self._last_draw >= self.interval:
            self._last_draw = now
            self.stream.write("\r" + self._line(done, now) + "\x1b[K")
            self.stream.flush()

    def finish(self, done: int, end: float | None = None) -> float:
        """Print the final line (rate up to ``end``, default now); return elapsed seconds."""
        now = time.perf_counter() if end is None else end
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self._line(done, now) + ("\x1b[K\n" if self.live else "\n"))
        self.stream.flush()
        return now - self.started

    def _line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        pct = 100.0 * done / self.total if self.total else 100.0
        width = 24
        filled = min(width, int(width * done / self.total)) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        return (
            f"  {self.label:<9} [{bar}] {done:>9,}/{self.total:,} {pct:5.1f}%  "
            f"{done / elapsed:>9,.0f} rec/s"
        )


def admin_settings(args: argparse.Namespace) -> dict[str, Any]:
    """AsyncAdmin keyword settings for a command (bootstrap required)."""
    settings = client_settings(require_bootstrap(args), args.timeout)
    settings["default_api_timeout_ms"] = max(1, int(args.timeout * 1000))
    return settings


def check_results(what: str, results: Mapping[Any, Any]) -> None:
    """Raise one CliError naming every item whose admin result carries an error."""
    failed = [f"{name}: {one_line(r.error)}" for name, r in results.items() if r.error]
    if failed:
        raise CliError(f"{what} failed for " + "; ".join(failed))


def parse_pairs(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    """``["k=v", ...]`` -> pairs; a missing ``=`` is a usage error."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{what} must look like KEY=VALUE, got {item!r}")
        pairs.append((key, value))
    return pairs


def print_table(rows: Sequence[Sequence[object]], header: Sequence[str], out: TextIO) -> None:
    """Left-aligned columns separated by two spaces (numbers too: easy to grep and cut)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
