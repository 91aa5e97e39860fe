"""Shared plumbing of the ``kclient`` command line: options, client settings, errors, progress.

Kept free of any third-party dependency (no rich/tqdm): the command line must work with a
plain ``pip install kclient``, so the progress line below is written with the stdlib.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from kclient.cli._errors import CliError
from kclient.cli._security import (
    add_security_options,
    file_bootstrap,
    file_key_line,
    security_properties,
)
from kclient.config import CommonConfig
from kclient.errors import ConfigError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

ENV_BOOTSTRAP = "KCLIENT_BOOTSTRAP"
DEFAULT_TIMEOUT_S = 30.0

__all__ = ["CliError"]  # re-exported: commands import it from here


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
    add_security_options(parser, default)


def bootstrap_from(args: argparse.Namespace) -> str | None:
    """--bootstrap-server, else $KCLIENT_BOOTSTRAP, else bootstrap.servers of --config."""
    value: str | None = args.bootstrap_server or os.environ.get(ENV_BOOTSTRAP) or None
    return value or file_bootstrap(args)


def require_bootstrap(args: argparse.Namespace) -> str:
    bootstrap = bootstrap_from(args)
    if not bootstrap:
        raise CliError(f"no bootstrap server: pass --bootstrap-server or set ${ENV_BOOTSTRAP}")
    return bootstrap


def client_settings(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """Client keyword settings: every wait honours --timeout, plus the security options.

    Built and validated once as a :class:`CommonConfig` so that a bad option fails here,
    as one line naming the option (and the --config line it came from), before any client
    starts; the keys set explicitly are what each client is then given.
    """
    ms = max(1, int(args.timeout * 1000))
    props: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "client.id": "kclient-cli",
        "request.timeout.ms": ms,
        "socket.connection.setup.timeout.ms": min(ms, 10_000),
        "socket.connection.setup.timeout.max.ms": ms,
    }
    chosen = security_properties(args)
    if any(key.startswith("socket.connection.setup.timeout") for key in chosen):
        # the file's pair replaces ours whole: one of each would contradict (base > cap)
        del props["socket.connection.setup.timeout.ms"]
        del props["socket.connection.setup.timeout.max.ms"]
    props.update(chosen)
    try:
        config = CommonConfig.from_properties(props)
    except ConfigError as exc:
        raise _config_error(args, exc) from None
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.init and config.is_set(f.name)
    }


def _config_error(args: argparse.Namespace, exc: ConfigError) -> CliError:
    # ConfigError names the dotted property for unknown keys and the field otherwise.
    where = file_key_line(args, exc.key) or file_key_line(args, exc.key.replace("_", "."))
    if where is None:
        return CliError(str(exc))
    hint = ""
    if "unknown configuration property" in str(exc):
        hint = "; --config takes the connection, TLS and SASL properties all commands share"
    return CliError(f"{where}: {exc}{hint}")


@contextmanager
def cluster_for(
    args: argparse.Namespace, out: TextIO, *, announce: bool = True
) -> Iterator[tuple[str, dict[int, tuple[int, int]] | None]]:
    """The bootstrap to use, and the embedded broker's API versions when one was started.

    Without --bootstrap-server / $KCLIENT_BOOTSTRAP the embedded Tansu broker is started
    for the duration of the block (it needs the dev extra).
    """
    bootstrap = bootstrap_from(args)
    if bootstrap is not None:
        yield bootstrap, None
        return
    if security_properties(args).get("security.protocol", "PLAINTEXT") != "PLAINTEXT":
        raise CliError(
            "the embedded Tansu broker speaks PLAINTEXT only: "
            "give --bootstrap-server to use TLS or SASL"
        )
    from kclient.testing.tansu import TansuBroker, TansuError

    broker = TansuBroker()
    try:
        broker.start()
    except TansuError as exc:
        raise CliError(f"cannot start the embedded Tansu broker: {exc}") from exc
    try:
        if announce:
            print(f"started the embedded Tansu broker at {broker.bootstrap_servers}", file=out)
        yield broker.bootstrap_servers, broker.api_versions
    finally:
        broker.stop()


class _OncePerMessage(logging.Filter):
    """A warning repeated per connection (TLS verification off) is shown once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


class _LineFormatter(logging.Formatter):
    """``kclient: warning: message``; a logged exception's traceback only with --debug."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        line = f"kclient: {record.levelname.lower()}: {record.getMessage()}"
        if self.debug and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


@contextmanager
def cli_logging(stream: TextIO, *, debug: bool) -> Iterator[None]:
    """Show the library's warnings (TLS checks off, PLAIN in clear text) on ``stream``.

    Attached for one command only: main() is also called in-process by tests.
    """
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.addFilter(_OncePerMessage())
    handler.setFormatter(_LineFormatter(debug))
    logger = logging.getLogger("kclient")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


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
    settings = client_settings(args, require_bootstrap(args))
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
