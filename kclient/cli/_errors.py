"""The command line's own error type (kept apart so every helper module can raise it)."""

from __future__ import annotations


class CliError(Exception):
    """A failure the user can act on: printed as one line, never with a traceback."""
