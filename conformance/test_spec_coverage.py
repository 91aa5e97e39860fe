"""Every spec'd broker API and version is generated, encodable and decodable.

Also checks that errors.tsv is fully mapped and, when the spec snapshot sits
next to the repository (../shared/kafka-message-specs), that the committed
generated code matches a fresh generation (``python -m protocol._codegen --check``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from protocol._codegen.__main__ import PACKAGE_DIR, check, generate
from protocol._codegen.render import module_name
from protocol._codegen.spec import load_errors, load_specs
from protocol.api import Request, Response
from protocol.errors import ERRORS_BY_CODE, error_for_code
from protocol.messages import REGISTRY, ApiKey

SPECS = Path(__file__).resolve().parents[2] / "shared" / "kafka-message-specs"

needs_specs = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"spec snapshot {SPECS} not present next to the repository"
)


def _broker_requests() -> list[tuple[int, str, str, range]]:
    """(api key, name, module, versions) per spec'd broker API.

    Without the spec snapshot, fall back to what was generated (weaker, but the
    encode/decode checks still run).
    """
    if not SPECS.is_dir():
        return [
            (
                key,
                req.API_NAME,
                req.__module__.rsplit(".", 1)[1],
                range(req.MIN_VERSION, req.MAX_VERSION + 1),
            )
            for key, (req, _resp) in sorted(REGISTRY.items())
        ]
    out = []
    for spec in load_specs(SPECS).values():
        if spec.type == "request" and "broker" in spec.listeners:
            assert spec.api_key is not None
            versions = range(spec.valid.lo, spec.valid.hi + 1)
            out.append((spec.api_key, spec.api_name, module_name(spec), versions))
    return sorted(out)


BROKER_APIS = _broker_requests()


def test_specs_found() -> None:
    assert len(BROKER_APIS) > 50


@pytest.mark.parametrize(
    ("api_key", "api_name", "module", "versions"),
    BROKER_APIS,
    ids=[api[1] for api in BROKER_APIS],
)
def test_api_generated_and_codes_defaults(
    api_key: int, api_name: str, module: str, versions: range
) -> None:
    mod = importlib.import_module(f"protocol.messages.{module}")
    request = getattr(mod, f"{api_name}Request")
    response = getattr(mod, f"{api_name}Response")
    assert REGISTRY[api_key] == (request, response)
    assert ApiKey(api_key) == api_key
    for cls, base in ((request, Request), (response, Response)):
        assert issubclass(cls, base)
        assert cls.API_KEY == api_key and cls.API_NAME == api_name
        assert (cls.MIN_VERSION, cls.MAX_VERSION) == (versions.start, versions.stop - 1)
        for version in versions:
            encoded = cls().encode(version)
            assert cls.decode(encoded, version) == cls()


def test_registry_has_nothing_else() -> None:
    assert sorted(REGISTRY) == [api[0] for api in BROKER_APIS]


@needs_specs
def test_every_error_code_maps() -> None:
    rows = load_errors(SPECS / "errors.tsv")
    for row in rows:
        if row.code == 0:
            continue
        cls = error_for_code(row.code)
        assert cls is ERRORS_BY_CODE[row.code]
        assert (cls.errno, cls.error_name, cls.retriable) == (row.code, row.name, row.retriable)


@needs_specs
def test_generated_code_is_up_to_date() -> None:
    problems = check(generate(SPECS), PACKAGE_DIR)
    assert not problems, "run `python -m protocol._codegen --specs ../shared/kafka-message-specs`"
