"""``kclient demo --versions-table``: the broker's API versions next to our codec's.

This regenerates the table in docs/design-notes/tansu-quirks.md (formerly
scripts/codec_demo.py --markdown); tests/test_tansu_fixture.py checks that table.
"""

from __future__ import annotations

from typing import TextIO

from kclient.cli._common import CliError
from protocol.messages import REGISTRY


def print_versions_table(
    bootstrap: str, versions: dict[int, tuple[int, int]] | None, timeout_s: float, out: TextIO
) -> None:
    if versions is None:
        versions = _probe(bootstrap, timeout_s)
    print("| key | API | Tansu min | Tansu max | spec validVersions |", file=out)
    print("|---:|---|---:|---:|---|", file=out)
    for key, (low, high) in sorted(versions.items()):
        name, ours = _ours(key)
        print(f"| {key} | {name} | {low} | {high} | {ours} |", file=out)


def _ours(key: int) -> tuple[str, str]:
    if key not in REGISTRY:
        return f"api {key}", "-"
    cls = REGISTRY[key][0]
    if cls.MIN_VERSION == cls.MAX_VERSION:
        return cls.API_NAME, str(cls.MIN_VERSION)
    return cls.API_NAME, f"{cls.MIN_VERSION}-{cls.MAX_VERSION}"


def _probe(bootstrap: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    # imported here: importing kclient.testing loads the mock cluster too, and the
    # command line imports this module on every run
    from kclient.testing.tansu import TansuError, probe_api_versions

    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        return probe_api_versions(host, int(port), timeout=timeout_s)
    except (OSError, TansuError, ValueError) as exc:
        raise CliError(f"cannot read API versions from {bootstrap}: {exc}") from exc
