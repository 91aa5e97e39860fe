"""Sans-IO Kafka wire-protocol codec: bytes in, typed objects out.

This package never imports anyio, socket, time or kclient (a test checks it).
"""
