"""Every name in the checked tables of docs/migration.md exists: kclient's methods and
arguments on kclient's classes, and the peers' on the installed aiokafka and kafka-python
(skipped for a peer that is not installed). A table is checked when an HTML comment
``<!-- check: KIND -->`` comes right before it; its first three columns are aiokafka,
kafka-python and kclient, and each backticked ``name``, ``name()`` or ``name=...`` in them
is a name to check (cells of "—" name nothing)."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kclient

PAGE = Path(__file__).parents[2] / "docs" / "migration.md"
NAME = re.compile(r"^\*?([A-Za-z_]\w*)(\(\))?(=.*)?$")
PEERS = ("aiokafka", "kafka-python", "kclient")


def checked_tables() -> dict[str, list[list[list[str]]]]:
    """KIND -> rows -> the names in the first three cells."""
    tables: dict[str, list[list[list[str]]]] = {}
    kind = None
    for line in PAGE.read_text().splitlines():
        marker = re.match(r"<!-- check: (.+) -->", line)
        if marker:
            kind = marker.group(1)
            tables[kind] = []
        elif kind and line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(cells[0]) <= {"-", ":", " "} or "argument" in cells[0] or cells[0] == "aiokafka":
                continue  # header and rule rows
            spans = [re.findall(r"`([^`]+)`", c) for c in cells[:3]]
            tables[kind].append(
                [[m.group(1) for s in cell if (m := NAME.match(s))] for cell in spans]
            )
        elif kind and tables[kind] and not line.strip():
            kind = None
    return tables


def _init_args(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def _config_keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _methods(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") or n == "__next__"}


def _peer(kind: str, peer: str) -> set[str] | None:
    module = "kafka" if peer == "kafka-python" else "aiokafka"
    if importlib.util.find_spec(module) is None:
        return None
    if peer == "aiokafka":
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient

        classes: dict[str, Any] = {
            "producer": AIOKafkaProducer,
            "consumer": AIOKafkaConsumer,
            "admin": AIOKafkaAdminClient,
        }
        cls = classes[kind.split()[0]]
        return _init_args(cls) if kind.endswith("args") else _methods(cls)
    with warnings.catch_warnings():  # kafka-python's import uses deprecated importlib APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    classes = {"producer": KafkaProducer, "consumer": KafkaConsumer, "admin": KafkaAdminClient}
    cls = classes[kind.split()[0]]
    if kind.endswith("args"):
        return set(cls.DEFAULT_CONFIG) | {"topics"}
    return _methods(cls)


def _kclient(kind: str) -> set[str]:
    async_: dict[str, type] = {
        "producer": kclient.AsyncProducer,
        "consumer": kclient.AsyncConsumer,
        "admin": kclient.AsyncAdmin,
    }
    configs: dict[str, type] = {
        "producer": kclient.ProducerConfig,
        "consumer": kclient.ConsumerConfig,
    }
    base = kind.split()[0]
    if kind.endswith("args"):
        return _config_keys(configs[base]) | _init_args(async_[base])
    # the async class (the sync twin mirrors it, less start(): its constructor starts)
    return _methods(async_[base])


RESOLVERS: dict[str, Callable[[str], set[str] | None]] = {
    "aiokafka": lambda kind: _peer(kind, "aiokafka"),
    "kafka-python": lambda kind: _peer(kind, "kafka-python"),
    "kclient": _kclient,
}


def test_the_checked_tables_are_there() -> None:
    tables = checked_tables()
    kinds = ("producer args", "producer methods", "consumer args", "consumer methods")
    assert set(tables) == {*kinds, "admin methods"}
    assert all(len(rows) >= 5 for rows in tables.values())


@pytest.mark.parametrize("peer", PEERS)
def test_every_name_exists(peer: str) -> None:
    column = PEERS.index(peer)
    checked = 0
    for kind, rows in checked_tables().items():
        known = RESOLVERS[peer](kind)
        if known is None:
            pytest.skip(f"{peer} is not installed")
        for row in rows:
            for name in row[column]:
                assert name in known, f"{peer} has no {name!r} ({kind})"
                checked += 1
    assert checked > 40
