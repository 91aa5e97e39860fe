"""The sync Producer's transactions on a MockCluster run in its own loop thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from kclient import TopicPartition
from kclient.errors import TransactionStateError
from kclient.sync import Producer
from kclient.testing.mock import MockCluster
from protocol.messages import ApiKey
from tests.kclient.producer._helpers import FAST
from tests.kclient.producer._txn_helpers import read_all


@pytest.fixture
def cluster() -> Iterator[tuple[BlockingPortal, MockCluster]]:
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        MockCluster()
    ) as mock:  # fmt: skip
        mock.create_topic("t")
        yield portal, mock


def test_sync_transactions_commit_abort_and_context_manager(
    cluster: tuple[BlockingPortal, MockCluster],
) -> None:
    portal, mock = cluster
    with Producer(
        bootstrap_servers=mock.bootstrap_servers, transactional_id="sync-tx", **FAST
    ) as producer:
        with producer.transaction():
            producer.send("t", b"kept")
        with pytest.raises(KeyError), producer.transaction():
            producer.send("t", b"dropped").result(10)
            raise KeyError("boom")
        producer.begin_transaction()
        producer.send("t", b"kept too")
        producer.send_offsets_to_transaction({TopicPartition("in", 0): 5}, "g")
        producer.commit_transaction()
        with pytest.raises(TransactionStateError):
            producer.abort_transaction()
        producer.init_transactions()  # already done in the constructor: a no-op
    assert [r.request.committed for r in mock.requests_of(ApiKey.END_TXN)] == [True, False, True]
    got = portal.call(read_all, mock.bootstrap_servers, "t")
    assert got[0] == [b"kept", b"kept too"]
