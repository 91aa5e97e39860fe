"""ApiVersions negotiation: which version of each API to use with one broker.

Pure functions; the connection drives them. The handshake:

1. Send ApiVersions at our highest version, with ``client_software_name`` and
   ``client_software_version`` (v3+).
2. A broker that does not know that version answers in the v0 layout with
   UNSUPPORTED_VERSION and, usually, its own ApiVersions range: retry once at
   ``min(ours, theirs)`` (v0 if it gave no range).
3. Otherwise keep its table. For each API the connection then uses
   ``min(our max, broker max)`` provided that is >= both minimums; if not,
   :class:`UnsupportedVersionForApiError` names the API and both ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kclient.errors import UnsupportedVersionForApiError
from protocol.api import Request
from protocol.errors import error_for_code
from protocol.messages import REGISTRY
from protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse

__all__ = [
    "CLIENT_SOFTWARE_NAME",
    "CLIENT_SOFTWARE_VERSION",
    "ApiVersionTable",
    "api_versions_request",
    "handle_api_versions_response",
    "our_range",
]

API_VERSIONS_KEY = 18
UNSUPPORTED_VERSION = 35
CLIENT_SOFTWARE_NAME = "kclient"
CLIENT_SOFTWARE_VERSION = "0.1.0"

# Highest version per API key that the client logic (not only the codec) handles,
# where that is below what the codec can encode. Empty: the codec's range is used.
CLIENT_MAX_VERSION: dict[int, int] = {}


def our_range(api_key: int) -> tuple[int, int]:
    """(min, max) version this client can speak for ``api_key``."""
    request_cls = REGISTRY[api_key][0]
    high = min(request_cls.MAX_VERSION, CLIENT_MAX_VERSION.get(api_key, request_cls.MAX_VERSION))
    return request_cls.MIN_VERSION, high


def _api_name(api_key: int) -> str:
    entry = REGISTRY.get(api_key)
    return entry[0].API_NAME if entry else f"api {api_key}"


@dataclass(frozen=True, slots=True)
class ApiVersionTable:
    """The API version ranges one broker advertised."""

    broker: Mapping[int, tuple[int, int]]
    node: str | None = None
    _cache: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_response(
        cls, response: ApiVersionsResponse, node: str | None = None
    ) -> ApiVersionTable:
        ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        return cls(broker=ranges, node=node)

    def supports(self, api_key: int) -> bool:
        try:
            self.version_for(api_key)
        except UnsupportedVersionForApiError:
            return False
        return True

    def version_for(
        self,
        api: int | type[Request],
        *,
        min_version: int | None = None,
        max_version: int | None = None,
    ) -> int:
        """Highest version both sides support, within [min_version, max_version] if given."""
        api_key = api if isinstance(api, int) else api.API_KEY
        if min_version is None and max_version is None and api_key in self._cache:
            return self._cache[api_key]
        lo, hi = our_range(api_key)
        if min_version is not None:
            lo = max(lo, min_version)
        if max_version is not None:
            hi = min(hi, max_version)
        theirs = self.broker.get(api_key)
        if theirs is None or max(lo, theirs[0]) > min(hi, theirs[1]):
            raise UnsupportedVersionForApiError(
                _api_name(api_key), (lo, hi), theirs, node=self.node
            )
        version = min(hi, theirs[1])
        if min_version is None and max_version is None:
            self._cache[api_key] = version
        return version


def api_versions_request() -> ApiVersionsRequest:
    return ApiVersionsRequest(
        client_software_name=CLIENT_SOFTWARE_NAME,
        client_software_version=CLIENT_SOFTWARE_VERSION,
    )


def first_api_versions_version() -> int:
    return our_range(API_VERSIONS_KEY)[1]


def handle_api_versions_response(
    response: ApiVersionsResponse, sent_version: int, node: str | None = None
) -> ApiVersionTable | int:
    """The broker's table, or the version to retry ApiVersions with.

    Raises the broker error for any other error code, and for UNSUPPORTED_VERSION
    at v0 (no lower version to fall back to).
    """
    if response.error_code == UNSUPPORTED_VERSION and sent_version > 0:
        theirs = {k.api_key: k.max_version for k in response.api_keys}.get(API_VERSIONS_KEY)
        retry = 0 if theirs is None else max(0, min(sent_version - 1, theirs))
        return retry
    if response.error_code != 0:
        raise error_for_code(response.error_code)(
            f"ApiVersions v{sent_version} failed on {node or 'the broker'}"
        )
    return ApiVersionTable.from_response(response, node)
