"""Read and change a topic's configs with the async admin client.

Usage: python admin_configs.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "admin-configs".
"""

import asyncio
import os
import sys

from kclient import AlterConfigOp, AsyncAdmin, ConfigResource, NewTopic

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "admin-configs"


async def main() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP) as admin:
        new = NewTopic(TOPIC, 1, 1, topic_configs={"retention.ms": "100000"})
        (await admin.create_topics([new]))[TOPIC].raise_on_error()

        topic = ConfigResource.topic(TOPIC)
        described = await admin.describe_configs([topic])  # also ConfigResource.broker(id)
        print(f"retention.ms = {described[topic].entries['retention.ms'].value}")

        # Incremental: only the named keys change (SET, DELETE, APPEND, SUBTRACT).
        altered = await admin.incremental_alter_configs(
            {topic: [AlterConfigOp("retention.ms", "200000")]}
        )
        altered[topic].raise_on_error()
        after = await admin.describe_configs([topic])
        print(f"retention.ms now {after[topic].entries['retention.ms'].value}")
        await admin.delete_topics([TOPIC])


if __name__ == "__main__":
    asyncio.run(main())
