"""``protocol`` is sans-IO: it never imports anyio, asyncio, trio, socket, ssl, time or kclient.

Two complementary checks, both robust to modules being added:

1. Static: every ``protocol/**/*.py`` is parsed and its imports (anywhere in the file,
   including ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name)
   must avoid the forbidden modules.
2. Dynamic: a fresh interpreter imports ``protocol`` and every module under it, with an
   import hook recording who first imported each watched module. ``time`` is always loaded
   at interpreter start-up, so only the static check covers it. ``socket``, ``select`` and
   ``selectors`` are tolerated when a runtime dependency pulls them in (``crc32c`` imports
   ``importlib.metadata`` -> ``email`` -> ``socket``); never when ``protocol`` (or a stdlib
   module it imports) does.

``protocol/_codegen`` is a build tool: it is held only to "no anyio/asyncio/trio/kclient".
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = REPO / "protocol"
CODEGEN = PROTOCOL / "_codegen"

# forbidden for the runtime codec (top-level module names)
RUNTIME_FORBIDDEN = frozenset(
    {"anyio", "asyncio", "trio", "sniffio", "socket", "ssl", "selectors", "select", "time"}
    | {"kclient"}
)
# forbidden for the code generator
CODEGEN_FORBIDDEN = frozenset({"anyio", "asyncio", "trio", "sniffio", "kclient"})
# must not be in sys.modules at all after importing the codec
STRICT_RUNTIME = frozenset({"anyio", "asyncio", "trio", "sniffio", "ssl", "kclient"})
# may be present only when a runtime dependency (not protocol, not stdlib via protocol)
# imported them
NETWORK = frozenset({"socket", "select", "selectors"})
RUNTIME_DEPENDENCIES = frozenset({"crc32c", "lz4", "zstandard", "cramjam", "typing_extensions"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_files() -> list[Path]:
    return sorted(p for p in PROTOCOL.rglob("*.py") if "__pycache__" not in p.parts)


def _is_codegen(path: Path) -> bool:
    return CODEGEN in path.parents


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(arg, ast.Constant):
                if isinstance(arg.value, str) and not arg.value.startswith("."):
                    found.append((node.lineno, arg.value))
    return found


def test_protocol_sources_import_no_io_modules() -> None:
    files = _python_files()
    assert len(files) >= 3, f"expected the protocol package under {PROTOCOL}"
    violations = []
    for path in files:
        forbidden = CODEGEN_FORBIDDEN if _is_codegen(path) else RUNTIME_FORBIDDEN
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for lineno, name in _imported_names(tree):
            if name.split(".")[0] in forbidden:
                violations.append(f"{path.relative_to(REPO)}:{lineno}: imports {name}")
    assert not violations, "sans-IO violation:\n" + "\n".join(violations)


_PROBE = r"""
import builtins, importlib, json, sys
repo, runtime, codegen, watched = sys.argv[1:5]
runtime, codegen, watched = json.loads(runtime), json.loads(codegen), set(json.loads(watched))
sys.path.insert(0, repo)
preloaded = sorted(m for m in watched if m in sys.modules)
events = {}  # watched name -> import chains (innermost importer first)
_original_import = builtins.__import__

def _import(name, globals=None, locals=None, fromlist=(), level=0):
    # every executed import statement lands here, even for modules already loaded
    top = name.partition(".")[0]
    if level == 0 and top in watched:
        frame, chain = sys._getframe(1), []
        while frame is not None:
            mod = frame.f_globals.get("__name__", "?")
            skip = frame.f_code is _import.__code__ or mod.startswith("importlib._bootstrap")
            if not skip and (not chain or chain[-1] != mod):
                chain.append(mod)
            frame = frame.f_back
        if chain not in events.setdefault(top, []):
            events[top].append(chain)
    return _original_import(name, globals, locals, fromlist, level)

builtins.__import__ = _import

def load(names):
    errors = {}
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    return errors

report = {"preloaded": preloaded}
report["runtime_errors"] = load(runtime)
report["runtime_loaded"] = sorted(m for m in watched if m in sys.modules)
report["runtime_events"] = json.loads(json.dumps(events))
events.clear()
report["codegen_errors"] = load(codegen)
report["codegen_loaded"] = sorted(m for m in watched if m in sys.modules)
report["codegen_events"] = events
print(json.dumps(report))
"""

WATCHED = STRICT_RUNTIME | NETWORK | CODEGEN_FORBIDDEN | {"time"}


def _run_probe(repo: Path, runtime: list[str], codegen: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            str(repo),
            *map(json.dumps, (runtime, codegen, sorted(WATCHED))),
        ],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _runtime_violations(result: dict[str, Any]) -> list[str]:
    problems = []
    loaded = set(result["runtime_loaded"])
    if loaded & STRICT_RUNTIME:
        problems.append(f"loaded after importing protocol: {sorted(loaded & STRICT_RUNTIME)}")
    for name, chains in sorted(result["runtime_events"].items()):
        for chain in chains:
            if not any(m == "protocol" or m.startswith("protocol.") for m in chain):
                continue  # not on behalf of protocol (e.g. the probe itself)
            via_dependency = any(m.partition(".")[0] in RUNTIME_DEPENDENCIES for m in chain)
            direct = chain[0] == "protocol" or chain[0].startswith("protocol.")
            if name in STRICT_RUNTIME or (name in NETWORK and not via_dependency):
                problems.append(f"import {name}: chain (innermost first) {chain}")
            elif name == "time" and direct:
                problems.append(f"import time directly in {chain[0]}")
    return problems


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Import every protocol module in a fresh interpreter; report what got imported."""
    runtime, codegen = [], []
    for path in _python_files():
        if path.name == "__main__.py":
            continue  # importing it would run the program
        (codegen if _is_codegen(path) else runtime).append(_module_name(path))
    assert "protocol" in runtime
    return _run_probe(REPO, runtime, codegen)


def test_importing_protocol_loads_no_io_modules(probe: dict[str, Any]) -> None:
    # time is always loaded at start-up; the rest must not be, or the check is vacuous
    preloaded = set(probe["preloaded"]) - {"time"}
    assert not preloaded, f"interpreter start-up already loaded {sorted(preloaded)}"
    assert probe["runtime_errors"] == {}, "protocol modules failed to import"
    problems = _runtime_violations(probe)
    assert not problems, "sans-IO violation:\n" + "\n".join(problems)


def test_codegen_loads_no_async_framework(probe: dict[str, Any]) -> None:
    assert probe["codegen_errors"] == {}, "protocol._codegen modules failed to import"
    loaded = set(probe["codegen_loaded"]) & CODEGEN_FORBIDDEN
    assert not loaded, f"protocol._codegen pulled in {sorted(loaded)}"


def test_probe_detects_indirect_io_imports(tmp_path: Path) -> None:
    """Self-test: socket via a stdlib module is caught, socket via crc32c is tolerated."""
    pkg = tmp_path / "protocol"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a_dep.py").write_text("import crc32c\n")
    (pkg / "b_bad.py").write_text("import http.client\n")
    (pkg / "c_time.py").write_text("from time import monotonic\n")
    result = _run_probe(
        tmp_path, ["protocol", "protocol.a_dep", "protocol.b_bad", "protocol.c_time"], []
    )
    assert result["runtime_errors"] == {}
    problems = _runtime_violations(result)
    assert any("import socket" in p and "http.client" in p for p in problems), problems
    assert not any("crc32c" in p for p in problems), problems
    assert any("import time directly in protocol.c_time" in p for p in problems), problems
