"""The same blocking consumer loop in kafka-python (before) and kclient (after).

Usage: python migration_consumer.py [BOOTSTRAP [TOPIC]]
BOOTSTRAP defaults to $KCLIENT_BOOTSTRAP, then 127.0.0.1:9092; TOPIC to "migration".
"""

import os
import sys

from kclient import Admin, NewTopic, Producer

DEFAULT_BOOTSTRAP = os.environ.get("KCLIENT_BOOTSTRAP", "127.0.0.1:9092")
BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BOOTSTRAP
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "migration"
COUNT = 3
handled: list[bytes] = []


def handle(value: bytes) -> None:
    handled.append(value)


def before() -> None:
    # --8<-- [start:before]
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id="billing",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    for message in consumer:
        handle(message.value)
        consumer.commit()
        if len(handled) == COUNT:
            break
    consumer.close()
    # --8<-- [end:before]


def after() -> None:
    # --8<-- [start:after]
    from kclient import Consumer

    with Consumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id="billing-kclient",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        for record in consumer:
            handle(record.value)
            consumer.commit()  # commits every record handed out so far
            if len(handled) == COUNT:
                break
    # --8<-- [end:after]


def main() -> None:
    with Admin(bootstrap_servers=BOOTSTRAP) as admin:
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].raise_on_error()
    with Producer(bootstrap_servers=BOOTSTRAP) as producer:
        for i in range(COUNT):
            producer.send(TOPIC, b"order %d" % i)
    before()
    print(f"kafka-python handled {len(handled)} records")
    handled.clear()
    after()
    print(f"kclient handled {len(handled)} records")


if __name__ == "__main__":
    main()
