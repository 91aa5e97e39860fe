"""Fault injection rules and the request journal: the control API's pure half.

A rule matches requests by API key and, optionally, broker and
topic-partition, and fires for the next ``count`` matching requests:

* ``ErrorRule``: answer with an error code instead of the real result. For APIs
  whose errors are per partition (Produce, Fetch, ListOffsets, ...), a rule
  with a topic-partition sets that partition's error only; a rule without one
  sets every partition's error in the request (one count per request).
* ``DelayRule``: hold the response for ``seconds`` before sending it.
* ``DropRule``: close the connection before the request is applied (the
  client's request is lost) or after (applied, answer lost: the ambiguous
  outcome).
* ``RewriteRule``: the request is applied as usual, then a test function
  rewrites the response before it is encoded (hostile or anomalous replies the
  handlers never produce on their own: an omitted or duplicated partition, an
  unknown error code, a topic that vanishes from metadata).

Rules are consumed in the order they were added. Pure: the server asks, this
module answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from protocol.api import Response

__all__ = ["DropWhen", "FaultPlan", "RecordedRequest", "ResponseRewrite"]


class DropWhen(Enum):
    BEFORE = "before"
    AFTER = "after"


@dataclass(slots=True)
class _Rule:
    api_key: int
    count: int
    broker: int | None
    topic: str | None
    partition: int | None

    def matches(self, api_key: int, broker: int) -> bool:
        return (
            self.count > 0
            and self.api_key == api_key
            and (self.broker is None or self.broker == broker)
        )

    def matches_partition(self, topic: str, partition: int) -> bool:
        return (self.topic is None or self.topic == topic) and (
            self.partition is None or self.partition == partition
        )


@dataclass(slots=True)
class ErrorRule(_Rule):
    error: int = -1


@dataclass(slots=True)
class DelayRule(_Rule):
    seconds: float = 0.0


@dataclass(slots=True)
class DropRule(_Rule):
    when: DropWhen = DropWhen.BEFORE


ResponseRewrite = Callable[[Response], Response]


def _unchanged(response: Response) -> Response:
    return response


@dataclass(slots=True)
class RewriteRule(_Rule):
    rewrite: ResponseRewrite = _unchanged


@dataclass(slots=True, frozen=True)
class RecordedRequest:
    broker: int
    api_key: int
    api_version: int
    client_id: str | None
    request: object  # the decoded request dataclass


@dataclass
class FaultPlan:
    errors: list[ErrorRule] = field(default_factory=list)
    delays: list[DelayRule] = field(default_factory=list)
    drops: list[DropRule] = field(default_factory=list)
    rewrites: list[RewriteRule] = field(default_factory=list)
    journal: list[RecordedRequest] = field(default_factory=list)

    def request_error(self, api_key: int, broker: int) -> int | None:
        """Error for a whole request (rules without a topic-partition)."""
        for rule in self.errors:
            if rule.matches(api_key, broker) and rule.topic is None and rule.partition is None:
                rule.count -= 1
                return rule.error
        return None

    def partition_errors(
        self, api_key: int, broker: int, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Errors per partition for one request; each rule fires once per request."""
        out: dict[tuple[str, int], int] = {}
        for rule in self.errors:
            if not rule.matches(api_key, broker):
                continue
            hit = [tp for tp in partitions if tp not in out and rule.matches_partition(*tp)]
            if not hit:
                continue
            rule.count -= 1
            for tp in hit:
                out[tp] = rule.error
        return out

    def delay(self, api_key: int, broker: int) -> float:
        for rule in self.delays:
            if rule.matches(api_key, broker):
                rule.count -= 1
                return rule.seconds
        return 0.0

    def drop(self, api_key: int, broker: int) -> DropWhen | None:
        for rule in self.drops:
            if rule.matches(api_key, broker):
                rule.count -= 1
                return rule.when
        return None

    def rewrite(self, api_key: int, broker: int) -> ResponseRewrite | None:
        for rule in self.rewrites:
            if rule.matches(api_key, broker):
                rule.count -= 1
                return rule.rewrite
        return None

    def clear(self) -> None:
        self.errors.clear()
        self.delays.clear()
        self.drops.clear()
        self.rewrites.clear()
