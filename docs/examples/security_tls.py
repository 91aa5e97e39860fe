"""Produce and consume over TLS: a private CA, optionally a client certificate (mutual TLS).

Usage: python security_tls.py BOOTSTRAP TOPIC CA_FILE [CLIENT_CERT CLIENT_KEY]
BOOTSTRAP's host must be a name in the broker's certificate (host names are checked).
"""

import asyncio
import sys

from kclient import AsyncAdmin, AsyncConsumer, AsyncProducer, NewTopic

BOOTSTRAP, TOPIC, CA_FILE = sys.argv[1:4]
CLIENT_CERT, CLIENT_KEY = sys.argv[4:6] if len(sys.argv) > 5 else (None, None)
COUNT = 10

TLS = dict(
    security_protocol="SSL",  # SASL_SSL for SASL over TLS
    ssl_ca_location=CA_FILE,  # omit to trust the system's CA store
    ssl_certificate_location=CLIENT_CERT,  # mutual TLS: our certificate and key (PEM)
    ssl_key_location=CLIENT_KEY,
    # ssl_key_password="...",  # if the key file is encrypted
)


async def main() -> None:
    async with AsyncAdmin(bootstrap_servers=BOOTSTRAP, **TLS) as admin:
        (await admin.create_topics([NewTopic(TOPIC, 1, 1)]))[TOPIC].raise_on_error()

    async with AsyncProducer(bootstrap_servers=BOOTSTRAP, **TLS) as producer:
        deliveries = await producer.send_many(TOPIC, [b"secret %d" % i for i in range(COUNT)])
        await asyncio.gather(*deliveries)
    print(f"produced {COUNT} records")

    async with AsyncConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"{TOPIC}-tls",
        auto_offset_reset="earliest",
        **TLS,
    ) as consumer:
        seen = 0
        async for _record in consumer:
            seen += 1
            if seen == COUNT:
                break
    print(f"consumed {seen} records")


if __name__ == "__main__":
    asyncio.run(main())
