"""What every handler gets (``Ctx``) and what a handler may return.

A handler is a plain function ``(ctx, request) -> Outcome``. It reads and
mutates :class:`ClusterState` and never awaits. An outcome is either a
response, ``None`` (acks=0 produce: no response), :class:`Parked` (the answer
comes later, from a group-state :class:`Reply` with the same token), or
:class:`FetchWait` (re-run ``build`` as data arrives until ``min_bytes`` or
the deadline). The server turns these into awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from kclient.testing.mock.faults import FaultPlan
from kclient.testing.mock.groups import JoinResult, Reply, SyncResult
from kclient.testing.mock.state import ClusterState
from protocol.api import Response, Struct

__all__ = ["Ctx", "FetchWait", "Handler", "Outcome", "Parked", "fit_to_version"]


@dataclass(slots=True)
class Ctx:
    cluster: ClusterState
    faults: FaultPlan
    broker: int
    api_key: int
    version: int
    client_id: str | None
    client_host: str
    now: int

    def request_error(self) -> int | None:
        return self.faults.request_error(self.api_key, self.broker)

    def partition_errors(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return self.faults.partition_errors(self.api_key, self.broker, partitions)


@dataclass(slots=True, frozen=True)
class Parked:
    token: object
    build: Callable[[JoinResult | SyncResult], Response]


@dataclass(slots=True, frozen=True)
class FetchWait:
    deadline_s: float  # seconds to wait at most
    min_bytes: int
    # (response, record bytes in it, callback to run once that response is sent)
    build: Callable[[], tuple[Response, int, Callable[[], None]]]


Outcome: TypeAlias = Response | Parked | FetchWait | tuple[Response, list[Reply]] | None
Handler: TypeAlias = Callable[[Ctx, Any], Outcome]


def fit_to_version(struct: Struct, version: int) -> None:
    """Reset fields the version lacks, so one builder serves every version.

    Handlers fill responses with everything the newest version carries; the
    codec refuses to encode a non-default field at a version without it, so
    fields outside their version range go back to their defaults here (and
    None goes to the default where the version does not allow null).
    """
    defaults = {f.name: f for f in dataclasses.fields(struct)}  # type: ignore[arg-type]
    for spec in struct._SCHEMA:
        lo, hi = spec.versions
        value = getattr(struct, spec.name)
        if not lo <= version <= hi:
            setattr(struct, spec.name, _default(defaults[spec.name]))
            continue
        nullable = spec.nullable is not None and spec.nullable[0] <= version <= spec.nullable[1]
        if value is None and not nullable:
            fallback = _default(defaults[spec.name])
            setattr(
                struct, spec.name, "" if fallback is None and spec.kind == "string" else fallback
            )
            continue
        if spec.struct is not None and value is not None:
            for item in value if spec.array else [value]:
                fit_to_version(item, version)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default
