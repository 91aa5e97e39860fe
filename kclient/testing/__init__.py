"""Test helpers shipped with kclient: the embedded Tansu broker launcher."""

from kclient.testing.tansu import (
    TansuBroker,
    TansuError,
    TansuNotFoundError,
    TansuStartError,
    TansuTLSUnsupportedError,
    probe_api_versions,
)

__all__ = [
    "TansuBroker",
    "TansuError",
    "TansuNotFoundError",
    "TansuStartError",
    "TansuTLSUnsupportedError",
    "probe_api_versions",
]
