"""``kclient topics list|create|delete|describe``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import anyio

from kclient.cli._common import admin_settings, check_results, parse_pairs, print_table

# Client classes are imported inside the functions that use them, so that parsing the
# command line (and every other command) does not pay for importing them.
if TYPE_CHECKING:
    from kclient.admin import AsyncAdmin


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("topics", parents=[parent], help="list, create, delete, describe topics")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[parent], help="topic names").set_defaults(func=_list)
    c = actions.add_parser("create", parents=[parent], help="create topics")
    c.add_argument("names", nargs="+", metavar="TOPIC")
    c.add_argument("--partitions", type=int, default=-1, help="default: the broker's")
    c.add_argument("--replication-factor", type=int, default=-1, help="default: the broker's")
    # --topic-config, not kafka-topics.sh's --config: --config FILE is every command's
    # client properties file.
    c.add_argument(
        "--topic-config", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    c.set_defaults(func=_create)
    d = actions.add_parser("delete", parents=[parent], help="delete topics")
    d.add_argument("names", nargs="+", metavar="TOPIC")
    d.set_defaults(func=_delete)
    s = actions.add_parser("describe", parents=[parent], help="partitions, leaders, replicas")
    s.add_argument("names", nargs="*", metavar="TOPIC", help="default: every topic")
    s.set_defaults(func=_describe)


def _run(args: argparse.Namespace, action: Any) -> int:
    from kclient.admin import AsyncAdmin

    settings = admin_settings(args)

    async def body() -> None:
        # fail_after: also bounds connecting to an address where nothing answers.
        with anyio.fail_after(args.timeout + 1):
            async with AsyncAdmin(**settings) as admin:
                await action(admin)

    anyio.run(body)
    return 0


def _list(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        for listing in sorted(await admin.list_topics(), key=lambda t: t.name):
            print(listing.name)

    return _run(args, action)


def _create(args: argparse.Namespace) -> int:
    from kclient.admin import NewTopic

    configs = dict(parse_pairs(args.topic_config, "--topic-config"))
    topics = [
        NewTopic(n, args.partitions, args.replication_factor, topic_configs=configs)
        for n in args.names
    ]

    async def action(admin: AsyncAdmin) -> None:
        check_results("create", await admin.create_topics(topics))
        for name in args.names:
            print(f"created topic {name}")

    return _run(args, action)


def _delete(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        check_results("delete", await admin.delete_topics(args.names))
        for name in args.names:
            print(f"deleted topic {name}")

    return _run(args, action)


def _describe(args: argparse.Namespace) -> int:
    async def action(admin: AsyncAdmin) -> None:
        found = await admin.describe_topics(args.names or None)
        check_results("describe", found)
        rows = [
            (name, p.partition, p.leader, _ids(p.replicas), _ids(p.isr))
            for name, topic in sorted(found.items())
            for p in topic.partitions
        ]
        print_table(rows, ("TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"), sys.stdout)

    return _run(args, action)


def _ids(nodes: tuple[int, ...]) -> str:
    return ",".join(map(str, nodes))
