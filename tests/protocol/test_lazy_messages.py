"""``protocol.messages`` loads a message module only when one of its names is used.

Checks run in a fresh interpreter where they depend on what is already imported (the test
session itself has imported most message modules long before these tests run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import protocol.messages as messages
from protocol._lazy import LazyRegistry, load_attribute
from protocol.api import Request, Response
from protocol.messages import REGISTRY, ApiKey

REPO = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> object:
    """Run ``code`` in a new interpreter; it prints one JSON value, which is returned."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


_LOADED = (
    "import json, sys; print(json.dumps(sorted("
    "m for m in sys.modules if m.startswith('protocol.messages.'))))"
)


def test_importing_the_package_loads_no_message_module() -> None:
    assert _fresh("import protocol.messages; " + _LOADED) == []


def test_registry_lookup_loads_only_that_api() -> None:
    code = "from protocol.messages import REGISTRY; REGISTRY[3]; " + _LOADED
    assert _fresh(code) == ["protocol.messages.metadata"]


def test_membership_len_and_keys_load_nothing() -> None:
    code = (
        "from protocol.messages import REGISTRY; "
        "assert 0 in REGISTRY and 9999 not in REGISTRY and len(REGISTRY) > 60; "
        "assert list(REGISTRY) == sorted(REGISTRY); REGISTRY.get(9999); " + _LOADED
    )
    assert _fresh(code) == []


def test_class_name_loads_only_its_module() -> None:
    code = "from protocol.messages import FetchRequest; " + _LOADED
    assert _fresh(code) == ["protocol.messages.fetch"]


def test_every_registry_entry_is_its_modules_request_response_pair() -> None:
    assert set(REGISTRY) == {int(k) for k in ApiKey}
    for key, (request, response) in REGISTRY.items():
        assert issubclass(request, Request) and issubclass(response, Response)
        assert request.API_KEY == response.API_KEY == key
        module = sys.modules[request.__module__]
        assert module.__name__.startswith("protocol.messages.")
        assert getattr(messages, request.__name__) is request
        assert getattr(messages, response.__name__) is response
    assert REGISTRY.get(9999) is None
    with pytest.raises(KeyError):
        REGISTRY[9999]


def test_names_and_submodules_resolve_like_eager_imports() -> None:
    from protocol.messages import ProduceRequest, find_coordinator
    from protocol.messages.produce import ProduceRequest as direct

    assert ProduceRequest is direct
    assert find_coordinator.__name__ == "protocol.messages.find_coordinator"
    assert messages.headers.RequestHeader.__name__ == "RequestHeader"
    assert messages.consumer_protocol.decode_assignment is not None
    listed = dir(messages)
    assert {"REGISTRY", "ApiKey", "ProduceRequest", "FetchResponse", "headers"} <= set(listed)
    assert messages.__all__ == ["REGISTRY", "ApiKey"]


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchRequest"):
        messages.NoSuchRequest  # noqa: B018
    with pytest.raises(ImportError):
        from protocol.messages import NoSuchRequest  # noqa: F401


def test_a_wrong_table_entry_is_a_type_error() -> None:
    registry = LazyRegistry("protocol.messages", {3: ("metadata", "MetadataRequestTopic", "X")})
    with pytest.raises(AttributeError):
        registry[3]  # no class X in the module
    registry = LazyRegistry(
        "protocol.messages", {3: ("metadata", "MetadataRequestTopic", "MetadataResponse")}
    )
    with pytest.raises(TypeError, match="not a Request/Response pair"):
        registry[3]
    assert 3 in registry and len(registry) == 1


def test_load_attribute_only_knows_its_table() -> None:
    assert load_attribute("protocol.messages", {}, {"fetch"}, "fetch") is messages.fetch
    with pytest.raises(AttributeError, match=r"has no attribute 'fetch'"):
        load_attribute("protocol.messages", {}, set(), "fetch")
