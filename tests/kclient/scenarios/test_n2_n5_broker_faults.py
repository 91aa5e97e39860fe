"""Reliability scenarios N2 and N5 (reliability guide 2d) through a real producer.

The connection-level halves (blackholed handshake, request timeout, idle close,
re-bootstrap) are tested against fake brokers in tests/kclient/net; here a producer
must carry its records across the fault with nothing lost, duplicated or leaked:

* N2: the broker stops answering in the middle of a stream while a Produce request is in
  flight (a ChaosProxy blackholes the live connection); the request times out, the batch
  is retried on a new connection under the same sequence, and no task is left behind.
* N5: a broker is replaced on a new port (same node id); the next request goes to the
  new address from metadata, transparently.
"""

from __future__ import annotations

import anyio
import pytest

from kclient.testing.chaos import ChaosProxy
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey

from ..consumer.scenarios._helpers import wait_for
from ..producer._helpers import assert_exactly_once_in_order, make_producer

pytestmark = pytest.mark.anyio


async def test_n2_broker_stops_answering_mid_stream() -> None:
    """N2: in-flight request times out, fails over to a new connection, no task leak."""
    async with MockCluster() as cluster:
        cluster.create_topic("t")
        async with ChaosProxy(cluster.listen_address(1), active_for=None) as proxy:
            cluster.advertise(1, proxy.address)
            baseline = len(anyio.get_running_tasks())
            settings = dict(request_timeout_ms=300, socket_connection_setup_timeout_ms=300)
            values = [b"v%02d" % i for i in range(20)]
            async with make_producer(proxy.address, **settings) as producer:
                futures = [await producer.send("t", v) for v in values[:5]]
                await producer.flush()
                sent = len(cluster.requests_of(ApiKey.PRODUCE))
                cluster.delay_next(ApiKey.PRODUCE, 0.1)  # applied, answer still to come...
                futures += [await producer.send("t", v) for v in values[5:10]]
                await wait_for(lambda: len(cluster.requests_of(ApiKey.PRODUCE)) > sent)
                proxy.set_blackhole(True)  # ...and it never arrives: the broker went silent
                futures += [await producer.send("t", v) for v in values[10:]]
                await anyio.sleep(0.7)  # request timeout passes; reconnects time out too
                assert not any(f.done() for f in futures[5:])
                proxy.set_blackhole(False)
                with anyio.fail_after(10):
                    await producer.flush()
            metas = [await f for f in futures]
            assert [m.offset for m in metas] == list(range(20))
            assert_exactly_once_in_order(cluster, "t", 0, values)
            # The producer's drivers, connections and response waiters are all gone.
            await wait_for(lambda: len(anyio.get_running_tasks()) <= baseline, timeout=5)
        assert cluster.errors == []


async def test_n5_broker_replaced_on_a_new_port() -> None:
    """N5: the leader's broker is replaced (same node id, new port); sends continue."""
    async with MockCluster(brokers=2) as cluster:
        cluster.create_topic("t")
        cluster.move_leader("t", 0, 2)
        old_address = cluster.listen_address(2)
        settings = dict(metadata_max_age_ms=100, request_timeout_ms=1000)
        values = [b"v%02d" % i for i in range(10)]
        async with make_producer(cluster.listen_address(1), **settings) as producer:
            for v in values[:5]:
                await producer.send_and_wait("t", v)
            await cluster.broker_down(2)
            await cluster.broker_up(2, new_port=True)
            assert cluster.listen_address(2) != old_address
            with anyio.fail_after(10):
                for v in values[5:]:
                    await producer.send_and_wait("t", v)
        assert_exactly_once_in_order(cluster, "t", 0, values)
        assert {r.broker for r in cluster.requests_of(ApiKey.PRODUCE)} == {2}
        assert cluster.errors == []
