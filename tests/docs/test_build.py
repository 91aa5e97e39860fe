"""The docs site builds with `mkdocs build --strict` (warnings are errors): broken links,
missing snippet files (docs/examples/*.py) and pages left out of the build all fail here.
mkdocs comes with the `docs` extra, not `dev`; .ci/run installs it and builds too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs-material not installed (pip install -e '.[docs]'; the dev extra lacks it)",
)
def test_site_builds_strict(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    pages = ("index", "quickstart", "producer", "consumer", "configuration", "testing", "admin")
    pages += ("security", "errors", "error-codes", "migration", "performance", "DESIGN")
    for page in pages:
        path = tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")
        assert path.is_file(), page
    quickstart = (tmp_path / "site" / "quickstart" / "index.html").read_text()
    assert "--8&lt;--" not in quickstart and "--8<--" not in quickstart  # snippets expanded
    assert "AsyncProducer" in quickstart


def test_design_links_become_repository_paths() -> None:
    """docs/_hooks.py: DESIGN.md's links that leave the site become repository paths."""
    spec = importlib.util.spec_from_file_location("_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = "see [notes](design-notes/codegen.md) and [README](../benchmarks/README.md)"
    assert hooks.rewrite(text) == (
        "see notes (`docs/design-notes/codegen.md`) and README (`benchmarks/README.md`)"
    )
    # links inside the site are kept
    assert hooks.rewrite("[Admin](admin.md)") == "[Admin](admin.md)"
