"""Planning ``kclient groups reset-offsets`` (pure: parsing and deciding, no I/O).

The command's driver (groups.py) gathers the facts (committed offsets, each partition's
earliest and latest offset, the offset at a timestamp) and :func:`plan_reset` turns them
into the table it prints and, with ``--execute``, commits. As in kafka-consumer-groups.sh,
a target outside ``[earliest, latest]`` is moved to the nearer end (committing past the
log end or below its start would only make the next consumer reset again), and
``--shift-by`` needs a committed offset to shift from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from kclient.cli._errors import CliError
from kclient.structs import TopicPartition


class Target(enum.Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    DATETIME = "datetime"
    SHIFT = "shift"


@dataclass(frozen=True)
class Strategy:
    """Where to move: ``value`` is the offset, the shift, or the epoch milliseconds."""

    target: Target
    value: int = 0


@dataclass(frozen=True)
class Bounds:
    """A partition's earliest and latest offsets, and (for --to-datetime) the offset of
    its first record at or after the time (None: no such record, so the end)."""

    earliest: int
    latest: int
    at_time: int | None = None


@dataclass(frozen=True)
class ResetRow:
    tp: TopicPartition
    current: int | None
    new: int


@dataclass(frozen=True)
class ResetPlan:
    rows: tuple[ResetRow, ...]
    notes: tuple[str, ...]  # targets moved into range, one line each


TopicSpec = tuple[str, tuple[int, ...] | None]  # None: every partition


def parse_topic_spec(text: str) -> TopicSpec:
    """``TOPIC`` or ``TOPIC:P[,P...]`` (as kafka-consumer-groups.sh ``--topic``)."""
    topic, sep, parts = text.partition(":")  # ":" is not legal in a topic name
    if not topic:
        raise CliError(f"--topic {text!r}: empty topic name")
    if not sep:
        return topic, None
    try:
        partitions = tuple(int(p) for p in parts.split(","))
    except ValueError:
        raise CliError(f"--topic {text!r}: partitions must be numbers, as in T:0,1") from None
    if any(p < 0 for p in partitions):
        raise CliError(f"--topic {text!r}: partitions must not be negative")
    return topic, tuple(dict.fromkeys(partitions))


def parse_datetime_ms(text: str) -> int:
    """ISO 8601 to epoch milliseconds; without a zone it is local time (as Kafka's tool)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):  # fromisoformat() accepts "Z" only from Python 3.11
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise CliError(
            f"--to-datetime {text!r} is not ISO 8601 (for example 2024-05-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the local zone
    millis = int(moment.timestamp() * 1000)
    if millis < 0:
        raise CliError(f"--to-datetime {text!r} is before 1970")
    return millis


def select_partitions(
    specs: Sequence[TopicSpec], existing: Mapping[str, Sequence[int]]
) -> list[TopicPartition]:
    """The partitions the specs name, checked against the topics' real partitions."""
    chosen: dict[TopicPartition, None] = {}
    for topic, partitions in specs:
        every = existing.get(topic)
        if every is None:
            raise CliError(f"topic {topic} does not exist")
        wanted = every if partitions is None else partitions
        missing = sorted(set(wanted) - set(every))
        if missing:
            raise CliError(f"topic {topic} has no partition {missing[0]} (it has {len(every)})")
        chosen.update((TopicPartition(topic, p), None) for p in wanted)
    return sorted(chosen)


def plan_reset(
    strategy: Strategy,
    partitions: Sequence[TopicPartition],
    committed: Mapping[TopicPartition, int | None],
    bounds: Mapping[TopicPartition, Bounds],
) -> ResetPlan:
    """The new offset of every partition (see the module doc for the rules)."""
    rows: list[ResetRow] = []
    notes: list[str] = []
    for tp in partitions:
        current, bound = committed.get(tp), bounds[tp]
        wanted = _target(strategy, tp, current, bound)
        new = min(max(wanted, bound.earliest), bound.latest)
        if new != wanted:
            side = "before the earliest" if wanted < new else "past the latest"
            notes.append(f"{tp.topic}-{tp.partition}: {wanted} is {side} offset; using {new}")
        rows.append(ResetRow(tp, current, new))
    return ResetPlan(tuple(rows), tuple(notes))


def _target(strategy: Strategy, tp: TopicPartition, current: int | None, bound: Bounds) -> int:
    target = strategy.target
    if target is Target.EARLIEST:
        return bound.earliest
    if target is Target.LATEST:
        return bound.latest
    if target is Target.OFFSET:
        return strategy.value
    if target is Target.DATETIME:
        return bound.latest if bound.at_time is None else bound.at_time
    if current is None:
        raise CliError(
            f"cannot shift {tp.topic}-{tp.partition}: the group has no committed offset there"
        )
    return current + strategy.value
