"""Produce ten records and consume them back, with the blocking clients (no async code).

Usage: python quickstart_sync.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "quickstart".
"""

import os
import sys

from kclient import Admin, Consumer, NewTopic, Producer
from kclient.errors import TopicExistsError

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "quickstart"
COUNT = 10


def main() -> None:
    # --8<-- [start:admin]
    with Admin(bootstrap_servers=BOOTSTRAP) as admin:
        result = admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
        if not isinstance(result[TOPIC].error, TopicExistsError):  # fine if it exists
            result[TOPIC].raise_on_error()
    # --8<-- [end:admin]

    with Producer(bootstrap_servers=BOOTSTRAP) as producer:
        # send() returns a concurrent.futures.Future of RecordMetadata
        futures = [
            producer.send(TOPIC, f"hello {i}".encode(), key=f"k{i}".encode()) for i in range(COUNT)
        ]
        producer.flush()
        metadata = futures[-1].result()
        print(f"produced {COUNT} records, last at offset {metadata.offset}")

    with Consumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{TOPIC}-readers",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        seen = 0
        for record in consumer:
            print(record.partition, record.offset, record.key, record.value)
            seen += 1
            if seen == COUNT:
                break
        consumer.commit()
    print(f"consumed {seen} records")


if __name__ == "__main__":
    main()
