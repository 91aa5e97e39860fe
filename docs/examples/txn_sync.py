"""Transactions with the blocking clients: `with producer.transaction():` commits when the
block ends and aborts when it raises; a read_committed consumer sees only what committed.

Usage: python txn_sync.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "txn-sync-demo".
Run it against a broker that hides aborted records from read_committed readers (Apache
Kafka, kclient.testing.MockCluster; not Tansu 0.6).
"""

import os
import sys

from kclient import Admin, Consumer, NewTopic, Producer, TopicPartition
from kclient.errors import TopicExistsError

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "txn-sync-demo"


class BadInput(Exception):
    """Stands for any failure of the application's own processing."""


def main() -> None:
    with Admin(bootstrap_servers=BOOTSTRAP) as admin:
        result = admin.create_topics([NewTopic(TOPIC, 1, 1)])
        if not isinstance(result[TOPIC].error, TopicExistsError):  # fine if it exists
            result[TOPIC].raise_on_error()

    # --8<-- [start:produce]
    with Producer(bootstrap_servers=BOOTSTRAP, transactional_id=f"{TOPIC}-writer") as producer:
        with producer.transaction():  # begin; commit when the block ends
            for i in range(3):
                producer.send(TOPIC, f"kept {i}".encode())
        print("committed 3 records")

        try:
            with producer.transaction():
                producer.send_and_wait(TOPIC, b"half-done")  # in the log, not committed
                raise BadInput("processing failed mid-transaction")
        except BadInput as exc:  # the block aborted the transaction, then re-raised
            print(f"aborted: {exc}")

        with producer.transaction():  # the producer is ready for the next one
            producer.send(TOPIC, b"kept 3")
    # --8<-- [end:produce]

    # --8<-- [start:read]
    tp = TopicPartition(TOPIC, 0)
    with Consumer(
        bootstrap_servers=BOOTSTRAP, isolation_level="read_committed", auto_offset_reset="earliest"
    ) as consumer:
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]  # the last stable offset
        values = []
        while consumer.position(tp) < end:
            for records in consumer.getmany(timeout_ms=200).values():
                values.extend(record.value for record in records)
    print(f"read_committed sees {values}")
    # --8<-- [end:read]


if __name__ == "__main__":
    main()
