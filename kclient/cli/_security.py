"""TLS and SASL options of every command, and ``--config FILE`` client properties.

Every source ends up as one map of dotted client properties that
:meth:`CommonConfig.from_properties` converts and validates as a whole, so the command line
keeps no second copy of the config rules. Precedence, highest first: command-line flags,
``$KCLIENT_SASL_PASSWORD``, the ``--config`` file, then what ``--timeout`` implies.

Passwords are wrapped in :class:`~kclient._secret.Secret` the moment they are read (flag,
file, environment), and no error raised here quotes a value or a line of the properties
file: a malformed line might be ``sasl.password hunter2``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kclient._secret import Secret, as_secret
from kclient.cli._errors import CliError
from kclient.config import SECURITY_PROTOCOLS

ENV_SASL_PASSWORD = "KCLIENT_SASL_PASSWORD"
# OAUTHBEARER needs a token provider (code), so it is a library-only mechanism.
CLI_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# flag attribute -> the dotted property it sets
_SASL_FLAGS = {
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
}
_TLS_FLAGS = {
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
}
_PASSWORD_FLAGS = ("sasl_password", "sasl_password_file")
_FILE_ATTR = "_kclient_properties"  # where the parsed --config file is cached on args


def add_security_options(
    parser: argparse.ArgumentParser, default: Callable[[object], object]
) -> None:
    """The security flags; ``default`` is the connection options' default policy."""
    group = parser.add_argument_group("security (also settable in --config FILE)")
    group.add_argument(
        "--config",
        "--command-config",
        dest="config",
        metavar="FILE",
        default=default(None),
        help="client properties, one key=value a line (Java or librdkafka names)",
    )
    group.add_argument(
        "--security-protocol",
        choices=SECURITY_PROTOCOLS,
        default=default(None),
        help="default: SASL_SSL, SASL_PLAINTEXT or SSL when SASL or TLS flags are given",
    )
    group.add_argument("--ssl-cafile", metavar="PEM", default=default(None))
    group.add_argument("--ssl-certfile", metavar="PEM", default=default(None))
    group.add_argument("--ssl-keyfile", metavar="PEM", default=default(None))
    group.add_argument(
        "--ssl-no-verify",
        action="store_true",
        default=default(False),
        help="do not verify the broker's certificate (insecure; warns)",
    )
    group.add_argument("--sasl-mechanism", choices=CLI_SASL_MECHANISMS, default=default(None))
    group.add_argument("--sasl-username", metavar="USER", default=default(None))
    group.add_argument(
        "--sasl-password",
        metavar="PASSWORD",
        default=default(None),
        help=f"visible to other local users; prefer ${ENV_SASL_PASSWORD} or --sasl-password-file",
    )
    group.add_argument("--sasl-password-file", metavar="FILE", default=default(None))


def hide_password(args: argparse.Namespace) -> None:
    """Wrap --sasl-password in a Secret before anything can print the namespace."""
    value = getattr(args, "sasl_password", None)
    if isinstance(value, str):
        args.sasl_password = Secret(value)


# -- the --config file ------------------------------------------------------------------


@dataclass(frozen=True)
class PropertiesFile:
    """A parsed ``--config`` file: dotted properties and the line each came from."""

    path: str
    properties: dict[str, object] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def parse_properties(text: str, path: str) -> PropertiesFile:
    """``key=value`` lines; ``#``/``!`` comments; a trailing backslash continues a line.

    Values may contain ``=`` (``sasl.jaas.config`` does). Errors name the line number only.
    """
    parsed = PropertiesFile(path)
    for number, line in _logical_lines(text):
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            raise CliError(f"--config {path}, line {number}: expected key=value")
        if key in parsed.properties:
            raise CliError(f"--config {path}, line {number}: {key} is set twice")
        parsed.properties[key] = value.strip()
        parsed.lines[key] = number
    return parsed


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip() if not pending else raw.lstrip()
        if not pending:
            if not line or line[0] in "#!":
                continue
            start = number
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:  # an odd count: the last backslash escapes the line break
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, "".join(pending)))
        pending = []
    if pending:
        out.append((start, "".join(pending)))
    return out


def load_properties(args: argparse.Namespace) -> PropertiesFile | None:
    """The ``--config`` file of this command (read once, then cached on ``args``)."""
    path: str | None = getattr(args, "config", None)
    if path is None:
        return None
    cached: PropertiesFile | None = getattr(args, _FILE_ATTR, None)
    if cached is not None:
        return cached
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        hint = ""
        if "=" in path and not os.path.exists(path):
            hint = " (--config takes a properties file; topic settings are --topic-config)"
        raise CliError(f"--config {path}: {exc.strerror or exc}{hint}") from None
    except UnicodeDecodeError:
        raise CliError(f"--config {path}: not UTF-8 text") from None
    parsed = _translate_java(parse_properties(text, path))
    setattr(args, _FILE_ATTR, parsed)
    return parsed


# -- Java names that do not map one to one ----------------------------------------------

_JAAS_MODULES = ("PlainLoginModule", "ScramLoginModule")
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))')


def _translate_java(parsed: PropertiesFile) -> PropertiesFile:
    """Rewrite the Java client's keys that carry our settings in another shape.

    ``sasl.jaas.config`` holds the user name and password; PEM trust and key stores
    (``ssl.truststore.type=PEM``) are our CA and certificate files. JKS/PKCS12 stores are
    refused by name instead of being reported as unknown keys.
    """
    props, lines = dict(parsed.properties), dict(parsed.lines)

    def move(old: str, new: str, value: object) -> None:
        lines[new] = lines.get(old, 0)
        props.setdefault(new, value)

    jaas = props.pop("sasl.jaas.config", None)
    if jaas is not None:
        for key, value in _jaas_credentials(str(jaas), parsed, lines["sasl.jaas.config"]).items():
            move("sasl.jaas.config", key, value)
    for store, targets in (
        ("truststore", ("ssl.ca.location",)),
        ("keystore", ("ssl.certificate.location", "ssl.key.location")),
    ):
        kind = str(props.pop(f"ssl.{store}.type", "JKS")).strip().upper()
        location = props.pop(f"ssl.{store}.location", None)
        if location is None:
            continue
        if kind != "PEM":
            line = lines[f"ssl.{store}.location"]
            raise CliError(
                f"--config {parsed.path}, line {line}: ssl.{store}.type {kind} is not supported;"
                f" convert the store to PEM (ssl.{store}.type=PEM)"
            )
        for target in targets:  # a PEM key store holds the key and the certificate chain
            move(f"ssl.{store}.location", target, location)
    return PropertiesFile(parsed.path, props, lines)


def _jaas_credentials(text: str, parsed: PropertiesFile, line: int) -> dict[str, object]:
    where = f"--config {parsed.path}, line {line}: sasl.jaas.config"
    module = text.split(None, 1)[0] if text.split() else ""
    if not module.endswith(_JAAS_MODULES):
        raise CliError(f"{where}: only PlainLoginModule and ScramLoginModule are supported")
    options = {m[1]: m[2] if m[2] is not None else m[3] for m in _JAAS_OPTION.finditer(text)}
    out: dict[str, object] = {}
    if "username" in options:
        out["sasl.username"] = options["username"].replace('\\"', '"')
    if "password" in options:
        out["sasl.password"] = Secret(options["password"].replace('\\"', '"'))
    if not out:
        raise CliError(f"{where}: no username or password option")
    return out


# -- merging everything ------------------------------------------------------------------


def security_properties(args: argparse.Namespace) -> dict[str, object]:
    """Dotted properties from the --config file, the environment and the flags, merged."""
    parsed = load_properties(args)
    props: dict[str, object] = dict(parsed.properties) if parsed else {}
    props.pop("bootstrap.servers", None)  # the bootstrap is resolved on its own
    if "security.protocol" in props:  # Java reads it case-insensitively
        props["security.protocol"] = str(props["security.protocol"]).strip().upper()
    flags: dict[str, object] = {
        prop: getattr(args, attr)
        for attr, prop in {**_SASL_FLAGS, **_TLS_FLAGS}.items()
        if getattr(args, attr, None) is not None
    }
    if getattr(args, "ssl_no_verify", False):
        flags["enable.ssl.certificate.verification"] = False
    password = _password(args)
    if password is not None:
        flags["sasl.password"] = password
    protocol = _protocol(args, props)
    if protocol is not None:
        flags["security.protocol"] = protocol
    props.update(flags)
    return props


def file_bootstrap(args: argparse.Namespace) -> str | None:
    parsed = load_properties(args)
    value = parsed.properties.get("bootstrap.servers") if parsed else None
    return str(value) if value else None


def file_key_line(args: argparse.Namespace, key: str) -> str | None:
    """``"--config FILE, line N"`` when ``key`` came from the properties file."""
    parsed = load_properties(args)
    if parsed is None or key not in parsed.lines:
        return None
    return f"--config {parsed.path}, line {parsed.lines[key]}"


def _password(args: argparse.Namespace) -> Secret | None:
    flag: Secret | str | None = getattr(args, "sasl_password", None)
    path: str | None = getattr(args, "sasl_password_file", None)
    if flag is not None and path is not None:
        raise CliError("give either --sasl-password or --sasl-password-file, not both")
    if flag is not None:
        return as_secret(flag)
    if path is not None:
        return _read_password_file(path)
    env = os.environ.get(ENV_SASL_PASSWORD)
    return Secret(env) if env else None


def _read_password_file(path: str) -> Secret:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--sasl-password-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"--sasl-password-file {path}: not UTF-8 text") from None
    # Only the line break an editor adds is dropped: spaces may be part of a password.
    value = text.rstrip("\r\n")
    if not value:
        raise CliError(f"--sasl-password-file {path} is empty")
    return Secret(value)


def _protocol(args: argparse.Namespace, file_props: Mapping[str, Any]) -> str | None:
    """The flag's protocol, checked against the other flags; else one inferred from the flags.

    Inferring saves ``--security-protocol SASL_SSL`` next to options that only make sense
    with it; a flag that contradicts an explicit protocol is an error rather than ignored.
    """
    sasl = [a for a in (*_SASL_FLAGS, *_PASSWORD_FLAGS) if getattr(args, a, None) is not None]
    tls = [a for a in _TLS_FLAGS if getattr(args, a, None) is not None]
    if getattr(args, "ssl_no_verify", False):
        tls.append("ssl_no_verify")
    explicit: str | None = getattr(args, "security_protocol", None)
    if explicit is None and "security.protocol" in file_props:
        explicit = str(file_props["security.protocol"]).strip().upper()
    if explicit is None:  # a Java-style file names its protocol: only flags infer one
        if sasl:
            return "SASL_SSL" if tls else "SASL_PLAINTEXT"
        return "SSL" if tls else None
    if sasl and not explicit.startswith("SASL_"):
        raise CliError(f"--{_flag(sasl[0])} needs security protocol SASL_PLAINTEXT or SASL_SSL")
    if tls and explicit not in ("SSL", "SASL_SSL"):
        raise CliError(f"--{_flag(tls[0])} needs security protocol SSL or SASL_SSL")
    return explicit if getattr(args, "security_protocol", None) else None


def _flag(attr: str) -> str:
    return attr.replace("_", "-")
