"""Pipelined produce requests whose *write order* is the Sender's call order.

Why not ``BrokerConnection.request()`` in one task per request: it couples the write
and the wait, so the Sender would have to spawn a task per request and let them race
for the write lock. trio runs each batch of ready tasks in random order (on purpose), so
two requests carrying batches of one partition with sequences 0-9 and 10-19 could reach
the broker as 10-19, 0-9: an OUT_OF_ORDER_SEQUENCE_NUMBER and a recovery round trip for
nothing. Here the Sender awaits :func:`write_request` itself (the write is short and
shielded) and hands the returned waiter to a task that only waits.

This mirrors ``BrokerConnection._roundtrip`` step for step (re-auth gate, in-flight slot,
write, wait bounded by the request timeout, which closes the connection on expiry). It
reaches into the connection's private members; a public ``start_request()`` on
``BrokerConnection`` would replace it.
"""

from __future__ import annotations

from typing import Any

import anyio

from kclient.net.connection import BrokerConnection
from protocol.api import Request, Response

__all__ = ["send_and_forget", "wait_response", "write_request"]


async def write_request(conn: BrokerConnection, request: Request, version: int) -> Any:
    """Write ``request`` now and return the waiter for its response.

    Raises KafkaConnectionError (``request_sent=False``) if the connection is closed.
    """
    await conn._maybe_reauthenticate()
    await conn._gate_open.wait()
    conn._raise_if_closed(request_sent=False)
    await conn._slots.acquire()
    try:
        waiter = await conn._write(request, version, expect_response=True)
    except BaseException:
        conn._slots.release()
        raise
    return waiter


async def wait_response(conn: BrokerConnection, waiter: Any, timeout_ms: float) -> Response:
    """Wait for the response of a :func:`write_request`; a timeout closes the connection
    (so no later response can be mistaken for this one) and raises KafkaConnectionError."""
    try:
        with anyio.move_on_after(timeout_ms / 1000):
            await waiter.event.wait()
        if not waiter.event.is_set():
            conn._fail(f"no response to Produce within {timeout_ms:.0f} ms")
        response: Response = waiter.result()
        return response
    finally:
        conn._slots.release()
        if not waiter.event.is_set():
            waiter.abandoned = True


async def send_and_forget(conn: BrokerConnection, request: Request, version: int) -> None:
    """acks=0: write a request the broker will not answer."""
    await conn.send_without_response(request, version=version)
