"""The producer's input checks: topic names, bytes, headers, ProducerRecord.

Everything here raises at the call site, before anything is queued (reliability.md
B6); kept apart from producer.py so that both it and ``_send_many.py`` use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from kclient.producer.batch import Headers
from protocol.errors import InvalidTopicError

__all__ = ["ProducerRecord", "TopicInfo", "as_bytes", "check_headers", "validate_topic"]

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_MAX_TOPIC_LENGTH = 249


class ProducerRecord(NamedTuple):
    """One record for :meth:`AsyncProducer.send_many` when values alone are not enough."""

    value: Any = None
    key: Any = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Headers | None = None


class TopicInfo(NamedTuple):
    """A topic's partitions as the producer's send paths read them."""

    size: int  # partition count
    all: tuple[int, ...]
    available: tuple[int, ...]
    tps: tuple[tuple[str, int], ...]  # (topic, partition) by partition id, built once


def validate_topic(topic: object) -> str:
    """TypeError for a non-string, InvalidTopicError for a name the broker would refuse
    (reliability.md B6, Java's rule): at the call site, before anything is queued."""
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, got {type(topic).__name__}")
    if not topic:
        raise InvalidTopicError("topic name is empty")
    if len(topic) > _MAX_TOPIC_LENGTH:
        raise InvalidTopicError(f"topic name longer than {_MAX_TOPIC_LENGTH} characters")
    if topic in (".", "..") or not _TOPIC_NAME.fullmatch(topic):
        raise InvalidTopicError(
            f"invalid topic name {topic!r}: use ASCII letters, digits, '.', '_', '-'"
        )
    return topic


def as_bytes(data: object, what: str) -> bytes | None:
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes (or set a {what}_serializer), got {type(data).__name__}")


def check_headers(headers: Iterable[tuple[str, bytes | None]]) -> tuple[Any, ...]:
    checked = []
    for item in headers:
        hkey, hvalue = item
        if not isinstance(hkey, str):
            raise TypeError(f"header key must be a str, got {hkey!r}")
        checked.append((hkey, as_bytes(hvalue, "header value")))
    return tuple(checked)
