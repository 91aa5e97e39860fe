"""kclient: a pure-Python Apache Kafka client on anyio (asyncio and trio).

The wire codec lives in the sans-IO ``protocol`` package; this package adds the network
client (producer, consumer, admin, sync facades) and ``kclient.testing``.
"""
