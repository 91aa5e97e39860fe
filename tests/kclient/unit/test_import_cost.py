"""What ``import kclient`` and ``import kclient.cli`` load, checked in a fresh interpreter.

No timing here (benchmarks/import_bench.py measures that): the tests pin down *which*
modules come in, which is what the time depends on. The clients, the generated message
modules and ``kclient.testing`` are loaded only when used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kclient

REPO = Path(__file__).resolve().parents[3]

# packages whose import is the expensive part (each pulls message modules and anyio)
_HEAVY = ("kclient.admin", "kclient.consumer", "kclient.producer", "kclient.sync")
_HEAVY += ("kclient.eos", "kclient.testing", "kclient.cluster", "kclient.net")


def _loaded_after(statement: str) -> list[str]:
    code = (
        f"{statement}\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('protocol.messages.', 'kclient.', 'anyio')))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout)
    return loaded


def _heavy(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.startswith(_HEAVY) or m.startswith("protocol.messages.")]


def test_import_kclient_loads_no_client_and_no_message_module() -> None:
    loaded = _loaded_after("import kclient")
    assert _heavy(loaded) == []
    assert "anyio" not in loaded
    # what it does load: errors, structs, secrets (needed by ``except`` clauses)
    assert {"kclient.errors", "kclient.structs", "kclient._secret"} <= set(loaded)


def test_import_cli_loads_no_client_and_no_message_module() -> None:
    # parsing the command line and --help must not pay for the clients
    assert _heavy(_loaded_after("import kclient.cli")) == []


def test_public_names_still_import_and_load_what_they_need() -> None:
    loaded = _loaded_after("from kclient import AsyncProducer")
    assert "kclient.producer.producer" in loaded
    assert "protocol.messages.produce" in loaded
    assert "kclient.sync" not in loaded


def test_every_public_name_resolves_to_its_defining_object() -> None:
    import importlib

    for name in kclient.__all__:
        value = getattr(kclient, name)
        module = importlib.import_module(value.__module__)
        assert getattr(module, value.__name__) is value, name
    assert set(kclient.__all__) <= set(dir(kclient))
    namespace: dict[str, object] = {}
    exec("from kclient import *", namespace)
    assert set(kclient.__all__) <= set(namespace)


def test_subpackages_stay_reachable_as_attributes() -> None:
    code = "import kclient\nassert kclient.sync.Producer is kclient.Producer\n"
    loaded = _loaded_after(code)
    assert "kclient.sync" in loaded


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        kclient.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError):
        from kclient import NoSuchThing  # noqa: F401


def test_a_sync_client_loads_only_its_own_async_twin() -> None:
    # a script using the blocking Producer does not pay for the consumer or admin client
    loaded = _loaded_after("from kclient import Producer")
    assert "kclient.producer.producer" in loaded
    assert not [m for m in loaded if m.startswith(("kclient.consumer", "kclient.admin"))]
    assert not [m for m in loaded if m.startswith(("kclient.eos", "kclient.sync.consumer"))]
