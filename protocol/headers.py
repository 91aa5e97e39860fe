"""Which request/response header version goes with an API version.

Wire layouts (the classes are generated in ``protocol.messages.headers``)::

    RequestHeader v0   int16 api_key, int16 api_version, int32 correlation_id
    RequestHeader v1   v0 + nullable string client_id (int16 length, never compact)
    RequestHeader v2   v1 + tagged-field section
    ResponseHeader v0  int32 correlation_id
    ResponseHeader v1  v0 + tagged-field section

A flexible API version uses the flexible headers (request v2, response v1).
Two exceptions: ControlledShutdown v0 predates client ids (request header v0),
and ApiVersions responses always use response header v0, because a client
must be able to read the answer before it knows which versions the broker
speaks.
"""

from __future__ import annotations

from protocol._errors_base import UnsupportedVersionError
from protocol.messages import REGISTRY

__all__ = ["request_header_version", "response_header_version"]

_CONTROLLED_SHUTDOWN = 7
_API_VERSIONS = 18


def _is_flexible(api_key: int, version: int) -> bool:
    entry = REGISTRY.get(api_key)
    if entry is None:
        raise UnsupportedVersionError(f"unknown API key {api_key}")
    request = entry[0]
    if not request.MIN_VERSION <= version <= request.MAX_VERSION:
        raise UnsupportedVersionError(
            f"{request.API_NAME} supports versions {request.MIN_VERSION}-"
            f"{request.MAX_VERSION}, not {version}"
        )
    flexible = request.FLEXIBLE_VERSION
    return flexible is not None and version >= flexible


def request_header_version(api_key: int, version: int) -> int:
    """Request header version for ``api_key`` at API ``version``."""
    if api_key == _CONTROLLED_SHUTDOWN and version == 0:
        return 0
    return 2 if _is_flexible(api_key, version) else 1


def response_header_version(api_key: int, version: int) -> int:
    """Response header version for ``api_key`` at API ``version``."""
    if api_key == _API_VERSIONS:
        return 0
    return 1 if _is_flexible(api_key, version) else 0
