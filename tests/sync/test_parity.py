"""Every public member of an async client has a sync twin with the same signature, and
the sync facades add nothing of their own (each method body is one forwarding call).

Async-to-sync mapping: ``async def f(...) -> T`` becomes ``def f(...) -> T``;
``__aiter__``/``__anext__`` become ``__iter__``/``__next__``; ``AsyncX`` in an
annotation becomes ``X``; a loop-side future becomes a ``concurrent.futures.Future``.
Exceptions, each for a stated reason, are in ``LIFECYCLE``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from typing import Any

import pytest

from kclient.admin.admin import AsyncAdmin
from kclient.consumer.consumer import AsyncConsumer
from kclient.sync import Admin, Consumer
from kclient.sync._portal import PortalClient

# Sync clients open in their constructor (a script has no ``async with``); ``start()``
# would only ever raise "already started".
LIFECYCLE = {"start"}
# The context-manager and iterator protocols are fixed by Python; only presence counts.
DUNDERS = {"__aenter__": "__enter__", "__aexit__": "__exit__", "__aiter__": "__iter__"}
COMPARED_DUNDERS = {"__init__": "__init__", "__anext__": "__next__"}


def _pairs() -> list[tuple[type[Any], type[Any]]]:
    pairs: list[tuple[type[Any], type[Any]]] = [(AsyncAdmin, Admin), (AsyncConsumer, Consumer)]
    try:
        async_producer = importlib.import_module("kclient.producer.producer").AsyncProducer
    except (ImportError, AttributeError):
        return pairs
    try:
        producer = importlib.import_module("kclient.sync.producer").Producer
    except ImportError:
        # AsyncProducer landed first: the facade is a few lines (docs/design-notes/sync.md)
        # and this pair then joins the check.
        return pairs
    return [*pairs, (async_producer, producer)]


PAIRS = _pairs()
IDS = [sync.__name__ for _, sync in PAIRS]


_PROTOCOL = {*DUNDERS, *DUNDERS.values(), *COMPARED_DUNDERS, *COMPARED_DUNDERS.values()}


def _public(cls: type[Any]) -> dict[str, Any]:
    return {
        name: inspect.getattr_static(cls, name)
        for name in dir(cls)
        if not name.startswith("_") or name in _PROTOCOL
    }


def _attributes(async_cls: type[Any]) -> list[str]:
    """Public attributes the async constructor sets (constructors do no I/O)."""
    instance = async_cls(bootstrap_servers="127.0.0.1:9")
    return [name for name in vars(instance) if not name.startswith("_")]


# A loop-side future returned by an async method (the producer's delivery) becomes a
# thread-safe concurrent future of the same result (``_portal.returns_future``).
LOOP_FUTURES = {
    "<class 'kclient.producer.batch.DeliveryFuture'>": (
        "concurrent.futures._base.Future[kclient.structs.RecordMetadata]"
    ),
    "kclient.producer.batch.DeliveryFuture": (
        "concurrent.futures._base.Future[kclient.structs.RecordMetadata]"
    ),
    "kclient.producer.delivery.DeliveryFuture": (
        "concurrent.futures._base.Future[kclient.structs.RecordMetadata]"
    ),
    # ``transaction()``'s block: ``async with`` on one side, ``with`` on the other.
    "kclient.producer.txn_api.AsyncProducerTransaction": (
        "kclient.sync.producer.ProducerTransaction"
    ),
}


def _normalize(annotation: Any, async_cls: type[Any], sync_cls: type[Any]) -> str:
    if isinstance(annotation, str):
        text = annotation
    elif isinstance(annotation, type):
        text = f"{annotation.__module__}.{annotation.__qualname__}"
    else:
        text = repr(annotation)
    for loop_future, future in LOOP_FUTURES.items():
        text = text.replace(loop_future, future)
    text = text.replace(async_cls.__module__ + ".", "").replace(sync_cls.__module__ + ".", "")
    return text.replace(async_cls.__name__, sync_cls.__name__)


def _shape(func: Any, async_cls: type[Any], sync_cls: type[Any]) -> list[tuple[Any, ...]]:
    try:
        sig = inspect.signature(func, eval_str=True)
    except NameError:  # a TYPE_CHECKING-only name: compare the annotation text instead
        sig = inspect.signature(func)
    params = [
        (p.name, p.kind, p.default, _normalize(p.annotation, async_cls, sync_cls))
        for p in sig.parameters.values()
        if not p.name.startswith("_")  # private test hooks are not part of the API
    ]
    return [*params, ("->", _normalize(sig.return_annotation, async_cls, sync_cls))]


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=IDS)
def test_every_async_member_has_a_sync_twin(async_cls: type[Any], sync_cls: type[Any]) -> None:
    sync_members = _public(sync_cls)
    for name, member in _public(async_cls).items():
        if name in LIFECYCLE:
            assert name not in sync_members, f"{sync_cls.__name__}.{name} should not exist"
            continue
        twin_name = DUNDERS.get(name) or COMPARED_DUNDERS.get(name) or name
        assert twin_name in sync_members, f"{sync_cls.__name__} lacks {twin_name}"
        twin = sync_members[twin_name]
        if isinstance(member, property):
            assert isinstance(twin, property), f"{twin_name} must be a property"
            member, twin = member.fget, twin.fget
        if name in DUNDERS:
            continue
        assert callable(member) and callable(twin)
        if name not in COMPARED_DUNDERS:
            assert not inspect.iscoroutinefunction(twin), f"{twin_name} must not be async"
        assert _shape(member, async_cls, sync_cls) == _shape(twin, async_cls, sync_cls), name


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=IDS)
def test_instance_attributes_have_twins(async_cls: type[Any], sync_cls: type[Any]) -> None:
    """Public attributes set in the async constructor (``config``) are read-only
    properties of the same type on the facade."""
    instance = async_cls(bootstrap_servers="127.0.0.1:9")
    for name in _attributes(async_cls):
        value = getattr(instance, name)
        twin = inspect.getattr_static(sync_cls, name, None)
        assert isinstance(twin, property), f"{sync_cls.__name__}.{name} must be a property"
        assert twin.fget is not None
        hints = inspect.signature(twin.fget, eval_str=True).return_annotation
        assert hints is type(value), name


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=IDS)
def test_facades_add_no_public_members(async_cls: type[Any], sync_cls: type[Any]) -> None:
    extra = set(_public(sync_cls)) - set(_public(async_cls)) - set(_public(PortalClient))
    extra -= {DUNDERS.get(n) or COMPARED_DUNDERS.get(n) for n in _public(async_cls)}
    extra -= set(_attributes(async_cls))
    assert not extra, f"{sync_cls.__name__} has members without an async twin: {extra}"


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=IDS)
def test_facade_methods_are_one_forwarding_statement(
    async_cls: type[Any], sync_cls: type[Any]
) -> None:
    """No logic in kclient/sync: each method body (after its docstring) is one call."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(sync_cls)))
    cls_node = tree.body[0]
    assert isinstance(cls_node, ast.ClassDef)
    for node in cls_node.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        assert len(body) == 1, f"{sync_cls.__name__}.{node.name} holds logic"
        last = body[0]
        assert isinstance(last, ast.Return | ast.Expr), node.name
        assert isinstance(last.value, ast.Call | ast.Attribute | ast.Name), node.name
