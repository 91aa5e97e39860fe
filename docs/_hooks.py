"""mkdocs hook: put docs/DESIGN.md on the site without editing it.

DESIGN.md is written to be read in the repository: it links to the contributor notes in
docs/design-notes/ (not part of the site) and to files outside docs/ (../conformance,
../benchmarks), which a strict build rejects as broken links. On the site those links
become the repository path in code (``docs/design-notes/codegen.md``), which is where a
reader finds them. Other pages are left alone, so their broken links still fail the build.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

_PAGE = "DESIGN.md"
# [text](target) where the target leaves the site: the excluded notes or outside docs/
_LINK = re.compile(r"\[([^\]]+)\]\(((?:\.\./|design-notes/)[^)\s]+)\)")


def repository_path(target: str) -> str:
    """The link target as a path from the repository root (DESIGN.md is in docs/)."""
    return posixpath.normpath(posixpath.join("docs", target))


def rewrite(markdown: str) -> str:
    return _LINK.sub(lambda m: f"{m.group(1)} (`{repository_path(m.group(2))}`)", markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != _PAGE:
        return markdown
    return rewrite(markdown)
