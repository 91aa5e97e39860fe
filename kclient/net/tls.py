"""Build the ssl.SSLContext for SSL and SASL_SSL listeners.

Defaults are safe: ``ssl.create_default_context()`` verifies the certificate
chain against the system store (or ``ssl_ca_location``) and checks the host
name, with TLS 1.2 as the minimum. Verification is turned off only by an
explicit ``ssl_check_hostname=False`` or
``enable_ssl_certificate_verification=False``, and doing so logs a WARNING.
A user-supplied ``ssl_context`` is used as given.
"""

from __future__ import annotations

import logging
import os
import ssl

from kclient._secret import Secret
from kclient.config import CommonConfig
from kclient.errors import ConfigError

__all__ = ["build_ssl_context"]

log = logging.getLogger("kclient.net.tls")


def build_ssl_context(config: CommonConfig) -> ssl.SSLContext | None:
    """The context for ``config``, or None when the security protocol has no TLS."""
    if not config.uses_ssl:
        return None
    if config.ssl_context is not None:
        return config.ssl_context
    try:
        context = ssl.create_default_context(cafile=_file(config.ssl_ca_location))
        if config.ssl_ca_location and _is_dir(config.ssl_ca_location):
            context.load_verify_locations(capath=config.ssl_ca_location)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("ssl_ca_location", f"cannot load CA certificates: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # With certificate verification off the host name check is moot: one warning, not two.
    if not config.ssl_check_hostname and config.enable_ssl_certificate_verification:
        log.warning("TLS host name verification is disabled (ssl_check_hostname=False)")
        context.check_hostname = False
    if not config.enable_ssl_certificate_verification:
        log.warning(
            "TLS certificate verification is disabled "
            "(enable_ssl_certificate_verification=False): the broker is not authenticated"
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.ssl_certificate_location:
        _load_client_cert(context, config)
    return context


def _load_client_cert(context: ssl.SSLContext, config: CommonConfig) -> None:
    password = config.ssl_key_password
    # Handed over as a callable, so the plain password never sits in a local of this
    # frame, where a traceback formatted with its locals would show it.
    reveal = password.get_secret_value if isinstance(password, Secret) else None
    try:
        context.load_cert_chain(
            certfile=str(config.ssl_certificate_location),
            keyfile=config.ssl_key_location,
            password=reveal,
        )
    except (OSError, ssl.SSLError) as exc:
        # the exception text never holds the password; still name only the files
        raise ConfigError(
            "ssl_certificate_location",
            f"cannot load the client certificate/key ({type(exc).__name__}: {exc.strerror or exc})",
        ) from None


def _file(location: str | None) -> str | None:
    if location and not _is_dir(location):
        return location
    return None


def _is_dir(location: str) -> bool:
    return os.path.isdir(location)
