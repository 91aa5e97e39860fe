"""In-process mock Kafka cluster with fault injection (see docs/design-notes/mock-cluster.md)."""

from __future__ import annotations

from kclient.testing.mock.clock import Clock, ManualClock, SystemClock
from kclient.testing.mock.cluster import MockCluster
from kclient.testing.mock.codes import Err
from kclient.testing.mock.faults import DropWhen, RecordedRequest

__all__ = [
    "Clock",
    "DropWhen",
    "Err",
    "ManualClock",
    "MockCluster",
    "RecordedRequest",
    "SystemClock",
]
