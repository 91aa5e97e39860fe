"""Create, grow, describe and delete a topic with the async admin client.

Usage: python admin_topics.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "admin-topics".
"""

import asyncio
import os
import sys

from kclient import AsyncAdmin, NewPartitions, NewTopic
from kclient.errors import UnsupportedVersionForApiError

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "admin-topics"


async def main() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        cluster = await admin.describe_cluster()
        print(f"cluster {cluster.cluster_id}: {len(cluster.nodes)} broker(s)")

        # One result per topic; a failed item (e.g. TopicExistsError) never fails the others.
        created = await admin.create_topics(
            [NewTopic(TOPIC, num_partitions=3, replication_factor=1)]
        )
        created[TOPIC].raise_on_error()
        print(f"created {TOPIC} with {created[TOPIC].num_partitions} partitions")

        listed = [t.name for t in await admin.list_topics()]
        print(f"listed: {TOPIC in listed}")

        # Partitions can only grow. A broker without the CreatePartitions API answers
        # with UnsupportedVersionForApiError for the whole call.
        try:
            grown = await admin.create_partitions({TOPIC: NewPartitions(total_count=4)})
            grown[TOPIC].raise_on_error()
        except UnsupportedVersionForApiError as exc:
            print(f"cannot add partitions here: {exc}")

        described = await admin.describe_topics([TOPIC])
        for p in described[TOPIC].partitions:
            print(f"  partition {p.partition}: leader {p.leader}, replicas {p.replicas}")
        print(f"partitions: {len(described[TOPIC].partitions)}")

        deleted = await admin.delete_topics([TOPIC])
        deleted[TOPIC].raise_on_error()
        print(f"deleted {TOPIC}")


if __name__ == "__main__":
    asyncio.run(main())
