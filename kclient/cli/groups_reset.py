"""``kclient groups reset-offsets GROUP --topic T[:P,...] (--to-... | --shift-by N)``.

Like kafka-consumer-groups.sh: only for a group without active members (a live member
would overwrite the new offsets with its next commit, and the coordinator rejects commits
from outside the generation anyway), a dry run unless ``--execute``. The deciding is
pure (``_reset.plan_reset``); this module gathers the facts and commits, all through
one admin client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from kclient.cli._common import CliError, admin_settings, check_results, one_line, print_table
from kclient.cli._reset import (
    Bounds,
    ResetPlan,
    Strategy,
    Target,
    TopicSpec,
    parse_datetime_ms,
    parse_topic_spec,
    plan_reset,
    select_partitions,
)
from kclient.structs import TopicPartition
from protocol.errors import GroupIdNotFoundError, UnknownTopicOrPartitionError

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.admin import AsyncAdmin, OffsetSpec

# States in which nobody can commit over the reset (Kafka's tool checks the same two).
_INACTIVE_STATES = ("Empty", "Dead", "")


def register(actions: Any, parent: argparse.ArgumentParser) -> None:
    r = actions.add_parser(
        "reset-offsets",
        parents=[parent],
        help="move a stopped group's committed offsets (dry run unless --execute)",
    )
    r.add_argument("group_id", metavar="GROUP")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--topic", action="append", metavar="T[:P,...]", help="repeatable; default all partitions"
    )
    which.add_argument(
        "--all-topics", action="store_true", help="every partition the group has an offset for"
    )
    to = r.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true")
    to.add_argument("--to-latest", action="store_true")
    to.add_argument("--to-offset", type=int, metavar="N")
    to.add_argument("--to-datetime", metavar="ISO8601", help="e.g. 2024-05-01T12:00:00Z")
    to.add_argument("--shift-by", type=int, metavar="N", help="negative moves back")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the plan only (default)")
    mode.add_argument("--execute", action="store_true", help="commit the new offsets")
    r.set_defaults(func=run)


def strategy_from(args: argparse.Namespace) -> Strategy:
    if args.to_earliest:
        return Strategy(Target.EARLIEST)
    if args.to_latest:
        return Strategy(Target.LATEST)
    if args.to_offset is not None:
        if args.to_offset < 0:
            raise CliError("--to-offset must not be negative")
        return Strategy(Target.OFFSET, args.to_offset)
    if args.to_datetime is not None:
        return Strategy(Target.DATETIME, parse_datetime_ms(args.to_datetime))
    return Strategy(Target.SHIFT, args.shift_by)


def run(args: argparse.Namespace) -> int:
    from kclient.admin import AsyncAdmin

    strategy = strategy_from(args)
    specs = [parse_topic_spec(t) for t in args.topic or ()]
    settings = admin_settings(args)

    async def body() -> ResetPlan:
        # fail_after: also bounds connecting to an address where nothing answers.
        with anyio.fail_after(args.timeout + 1):
            async with AsyncAdmin(**settings) as admin:
                return await reset(admin, args.group_id, specs, strategy, execute=args.execute)

    plan = anyio.run(body)
    rows = [
        (r.tp.topic, r.tp.partition, "-" if r.current is None else r.current, r.new)
        for r in plan.rows
    ]
    print_table(rows, ("TOPIC", "PARTITION", "CURRENT", "NEW"), sys.stdout)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.execute:
        print(f"group {args.group_id}: committed {len(rows)} new offsets", file=sys.stderr)
    else:
        print("dry run: nothing was changed (add --execute to commit)", file=sys.stderr)
    return 0


async def reset(
    admin: AsyncAdmin,
    group_id: str,
    specs: Sequence[TopicSpec],
    strategy: Strategy,
    *,
    execute: bool,
) -> ResetPlan:
    """Check the group is inactive, plan, and (with ``execute``) commit the plan."""
    await _require_inactive(admin, group_id)
    committed = await _committed(admin, group_id, None)
    if specs:
        partitions = await _partitions(admin, specs)
        committed = {tp: committed.get(tp) for tp in partitions}
    else:  # --all-topics: what the group has offsets for
        partitions = sorted(committed)
        if not partitions:
            raise CliError(f"group {group_id} has no committed offsets (name --topic)")
    bounds = await _bounds(admin, partitions, strategy)
    plan = plan_reset(strategy, partitions, committed, bounds)
    if execute:
        # A member may have joined since the check; its coordinator then refuses the
        # commit per partition, which check_results reports.
        results = await admin.alter_consumer_group_offsets(
            group_id, {row.tp: row.new for row in plan.rows}
        )
        check_results("reset-offsets", {_name(tp): r for tp, r in results.items()})
    return plan


async def _require_inactive(admin: AsyncAdmin, group_id: str) -> None:
    group = (await admin.describe_consumer_groups([group_id]))[group_id]
    if isinstance(group.error, GroupIdNotFoundError):
        return  # a group nobody has used yet: resetting creates its offsets
    if group.error is not None:
        raise CliError(f"cannot describe group {group_id}: {one_line(group.error)}")
    if group.members or group.state not in _INACTIVE_STATES:
        raise CliError(
            f"group {group_id} is active ({group.state}, {len(group.members)} members): "
            "stop its consumers before resetting its offsets"
        )


async def _committed(
    admin: AsyncAdmin, group_id: str, partitions: Sequence[TopicPartition] | None
) -> dict[TopicPartition, int | None]:
    offsets = await admin.list_consumer_group_offsets(group_id, partitions, with_lag=False)
    check_results("offset fetch", {_name(tp): o for tp, o in offsets.items()})
    return {tp: None if o.committed is None else o.committed.offset for tp, o in offsets.items()}


async def _partitions(admin: AsyncAdmin, specs: Sequence[TopicSpec]) -> list[TopicPartition]:
    topics = list(dict.fromkeys(topic for topic, _ in specs))
    found = await admin.describe_topics(topics)
    existing: dict[str, list[int]] = {}
    for name, topic in found.items():
        if topic.error is None:
            existing[name] = [p.partition for p in topic.partitions]
        elif not isinstance(topic.error, UnknownTopicOrPartitionError):
            raise CliError(f"cannot describe topic {name}: {one_line(topic.error)}")
    return select_partitions(specs, existing)


async def _bounds(
    admin: AsyncAdmin, partitions: Sequence[TopicPartition], strategy: Strategy
) -> dict[TopicPartition, Bounds]:
    from kclient.admin import OffsetSpec

    async def lookup(spec: OffsetSpec) -> dict[TopicPartition, int]:
        found = await admin.list_offsets(dict.fromkeys(partitions, spec))
        check_results("list offsets", {_name(tp): r for tp, r in found.items()})
        return {tp: r.offset for tp, r in found.items()}

    earliest = await lookup(OffsetSpec.earliest())
    latest = await lookup(OffsetSpec.latest())
    at_time: dict[TopicPartition, int] = {}
    if strategy.target is Target.DATETIME:
        at_time = await lookup(OffsetSpec.for_timestamp(strategy.value))
    return {
        tp: Bounds(
            earliest[tp],
            latest[tp],
            # -1: no record at or after the time
            at_time[tp] if at_time.get(tp, -1) >= 0 else None,
        )
        for tp in partitions
    }


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"
