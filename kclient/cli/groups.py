"""``kclient groups list|describe|lag|reset-offsets`` (reset-offsets: groups_reset.py)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import anyio

from kclient.cli import groups_reset
from kclient.cli._common import admin_settings, check_results, print_table

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.admin import AsyncAdmin


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "groups", parents=[parent], help="list, describe consumer groups, lag, reset offsets"
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[parent], help="group ids and states").set_defaults(
        func=_list
    )
    d = actions.add_parser("describe", parents=[parent], help="state and members")
    d.add_argument("group_ids", nargs="+", metavar="GROUP")
    d.set_defaults(func=_describe)
    lag = actions.add_parser("lag", parents=[parent], help="committed offsets and lag")
    lag.add_argument("group_id", metavar="GROUP")
    lag.set_defaults(func=_lag)
    groups_reset.register(actions, parent)


def _run(args: argparse.Namespace, action: Any) -> int:
    from kclient.admin import AsyncAdmin

    settings = admin_settings(args)

    async def body() -> None:
        with anyio.fail_after(args.timeout + 1):  # also bounds a silent address
            async with AsyncAdmin(**settings) as admin:
                await action(admin)

    anyio.run(body)
    return 0


def _list(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        rows = [(g.group_id, g.state or "-") for g in await admin.list_consumer_groups()]
        print_table(rows, ("GROUP", "STATE"), sys.stdout)

    return _run(args, action)


def _describe(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        found = await admin.describe_consumer_groups(args.group_ids)
        check_results("describe", found)
        for group_id, group in found.items():
            print(f"group {group_id}: state {group.state}, protocol {group.protocol or '-'}")
            rows = [
                (m.member_id, m.client_id, m.client_host, _tps(m.assignment)) for m in group.members
            ]
            print_table(rows, ("MEMBER", "CLIENT", "HOST", "ASSIGNMENT"), sys.stdout)

    return _run(args, action)


def _lag(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        offsets = await admin.list_consumer_group_offsets(args.group_id)
        check_results("lag", offsets)
        rows = [
            (
                tp.topic,
                tp.partition,
                "-" if o.committed is None else o.committed.offset,
                "-" if o.end_offset is None else o.end_offset,
                "-" if o.lag is None else o.lag,
            )
            for tp, o in sorted(offsets.items())
        ]
        print_table(rows, ("TOPIC", "PARTITION", "COMMITTED", "END", "LAG"), sys.stdout)

    return _run(args, action)


def _tps(assignment: Any) -> str:
    return ",".join(f"{tp.topic}-{tp.partition}" for tp in assignment) or "-"
