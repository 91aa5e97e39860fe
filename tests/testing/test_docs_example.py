# docs-example:begin
from collections.abc import AsyncIterator

import anyio
import pytest
from confluent_kafka import Producer

from kclient.testing import Err, MockCluster
from protocol.messages import ApiKey


def publish_order(bootstrap_servers: str, order: bytes) -> str | None:
    """The application code under test: returns an error name, or None on success."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    errors: list[str | None] = []
    producer.produce(
        "orders", order, on_delivery=lambda e, m: errors.append(e.name() if e else None)
    )
    producer.flush(10)
    return errors[0]


@pytest.fixture
async def kafka() -> AsyncIterator[MockCluster]:
    async with MockCluster(brokers=3) as cluster:
        cluster.create_topic("orders", partitions=3)
        yield cluster


@pytest.mark.anyio
async def test_order_is_published(kafka: MockCluster) -> None:
    error = await anyio.to_thread.run_sync(publish_order, kafka.bootstrap_servers, b"o-1")
    assert error is None
    assert len(kafka.requests_of(ApiKey.PRODUCE)) == 1


@pytest.mark.anyio
async def test_broker_rejection_is_reported(kafka: MockCluster) -> None:
    kafka.fail_next(ApiKey.PRODUCE, Err.INVALID_RECORD)
    error = await anyio.to_thread.run_sync(publish_order, kafka.bootstrap_servers, b"o-2")
    assert error == "INVALID_RECORD"


# docs-example:end


def test_docs_page_shows_this_file() -> None:
    """docs/testing.md embeds the example above verbatim, so the docs cannot drift."""
    from pathlib import Path

    here = Path(__file__).read_text()
    example = here.split("# docs-example:begin\n")[1].split("# docs-example:end")[0]
    docs = (Path(__file__).parents[2] / "docs" / "testing.md").read_text()
    assert example.strip() in docs
