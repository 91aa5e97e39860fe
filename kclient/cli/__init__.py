"""The ``kclient`` command line (``python -m kclient`` or the ``kclient`` console script).

One module per subcommand group; each has ``register(subparsers, parent)`` and handlers
``(args) -> exit code``. Errors are printed as one line unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from kclient.cli import bench, consume, demo, groups, produce, topics
from kclient.cli._common import CliError, add_connection_options, cli_logging, one_line
from kclient.cli._security import hide_password

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["CliError", "main"]

_COMMANDS = (demo, bench, topics, produce, consume, groups)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kclient", description="kclient: a pure-Python Apache Kafka client"
    )
    add_connection_options(parser, suppress=False)
    parent = argparse.ArgumentParser(add_help=False)
    add_connection_options(parent, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(sub, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    hide_password(args)
    try:
        with cli_logging(sys.stderr, debug=args.debug):
            code: int = args.func(args)
    except KeyboardInterrupt:
        print("kclient: interrupted", file=sys.stderr)
        return 130
    except (Exception, BaseExceptionGroup) as exc:  # the CLI's last line of defence
        if args.debug:
            traceback.print_exc()
        print(f"kclient {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return code
