"""Test helpers shipped with kclient: the embedded Tansu broker launcher, the in-process
mock cluster with fault injection, and the chaos proxy."""

from kclient.testing.chaos import ChaosProxy
from kclient.testing.mock import DropWhen, Err, ManualClock, MockCluster
from kclient.testing.tansu import (
    TansuBroker,
    TansuError,
    TansuNotFoundError,
    TansuStartError,
    TansuTLSUnsupportedError,
    probe_api_versions,
)

__all__ = [
    "ChaosProxy",
    "DropWhen",
    "Err",
    "ManualClock",
    "MockCluster",
    "TansuBroker",
    "TansuError",
    "TansuNotFoundError",
    "TansuStartError",
    "TansuTLSUnsupportedError",
    "probe_api_versions",
]
