"""Hand-written roots of the error tree shared by the codec and the client.

Everything the library raises derives from :class:`KafkaError`. Two branches
live here because the sans-IO codec needs them:

* :class:`KafkaProtocolError` -- bytes we were given do not decode (truncated,
  lying lengths, bad CRC, compression bombs). Every decoder failure is one of
  these; anything else escaping a decoder is a bug.
* :class:`BrokerResponseError` -- the broker answered with a non-zero error
  code. The per-code subclasses are generated into ``protocol/errors.py`` from
  ``errors.tsv``.

Client-side errors (timeouts, connections, configuration) extend
:class:`KafkaError` in ``kclient.errors``.
"""

from __future__ import annotations

from typing import ClassVar


class KafkaError(Exception):
    """Root of every error raised by kclient and protocol."""

    retriable: ClassVar[bool] = False
    """Whether repeating the same operation later may succeed."""


class KafkaProtocolError(KafkaError):
    """Bytes could not be decoded or encoded according to the protocol."""


class BufferUnderflow(KafkaProtocolError):
    """A read needed more bytes than the buffer holds."""


class InvalidLength(KafkaProtocolError):
    """A length or count field is negative, oversized, or larger than the remaining bytes."""


class InvalidValue(KafkaProtocolError):
    """A field holds a value the protocol does not allow (bad UTF-8, overlong varint, ...)."""


class EncodeError(KafkaProtocolError):
    """A message cannot be encoded at the requested version (missing or unsupported field)."""


class UnsupportedVersionError(KafkaProtocolError):
    """A message was asked for at a version outside its supported range."""


class CorruptRecordError(KafkaProtocolError):
    """A record batch is corrupt: CRC mismatch, impossible counts or truncated records."""


class UnsupportedCompressionError(KafkaProtocolError):
    """A batch names a compression codec this library does not know."""


class DecompressionLimitError(KafkaProtocolError):
    """Decompressing a batch would exceed the configured size cap."""


class FramingError(KafkaProtocolError):
    """The byte stream is not a Kafka frame stream (bad size prefix, TLS or HTTP peer, ...)."""


class CorrelationIdMismatch(FramingError):
    """A response arrived whose correlation id matches no request in flight."""


class BrokerResponseError(KafkaError):
    """The broker answered with a non-zero error code.

    Subclasses (one per code) are generated in ``protocol.errors``; use
    ``protocol.errors.error_for_code`` to map a code to its class.
    """

    errno: ClassVar[int] = -1
    error_name: ClassVar[str] = "UNKNOWN_SERVER_ERROR"
    invalid_metadata: ClassVar[bool] = False
    """Whether cached metadata should be refreshed before retrying."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message
        text = f"[Error {self.errno}] {self.error_name}"
        if message:
            text = f"{text}: {message}"
        super().__init__(text)
