"""What the page generators (docs/_gen_config.py, docs/_gen_errors.py) share: the
command line that either rewrites a page or, with ``--check``, fails if it is stale.

Each generator keeps its own ``render()`` (the tests call it directly), so this module
holds no page knowledge; mkdocs leaves it out of the site with the other ``_gen_*.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(argv: list[str], page: Path, render: Callable[[], str], script: str) -> int:
    """Rewrite ``page`` with ``render()``, or with ``--check`` only compare (exit 1 if stale).

    The repository root goes on ``sys.path`` first: run as ``python docs/<script>``, only
    docs/ is on it, and ``render()`` imports kclient and protocol from the checkout.
    """
    sys.path.insert(0, str(ROOT))
    text = render()
    if "--check" in argv:
        if page.read_text() != text:
            print(f"{page} is stale: run python docs/{script}", file=sys.stderr)
            return 1
        return 0
    page.write_text(text)
    return 0
