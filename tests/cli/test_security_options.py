"""The security flags and ``--config FILE`` reach the client config objects (no network)."""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path
from typing import Any

import pytest

from kclient._secret import Secret
from kclient.cli import build_parser, main
from kclient.cli._common import CliError, client_settings
from kclient.cli._security import ENV_SASL_PASSWORD, parse_properties
from kclient.config import AdminConfig, ConsumerConfig, ProducerConfig

SECRET = "pw-Zq81-never-shown"
BOOT = "127.0.0.1:9"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SASL_PASSWORD, raising=False)
    monkeypatch.delenv("KCLIENT_BOOTSTRAP", raising=False)


def parse(*argv: str) -> argparse.Namespace:
    from kclient.cli._security import hide_password

    args = build_parser().parse_args(["topics", "list", *argv])
    hide_password(args)
    return args


def settings(*argv: str) -> dict[str, Any]:
    return client_settings(parse(*argv), BOOT)


def test_flags_reach_every_config_class(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "c.pem", "k.pem"))
    s = settings(
        "--security-protocol", "SASL_SSL", "--ssl-cafile", str(ca), "--ssl-certfile", str(cert),
        "--ssl-keyfile", str(key), "--sasl-mechanism", "SCRAM-SHA-512",
        "--sasl-username", "alice", "--sasl-password", SECRET,
    )  # fmt: skip
    for cls in (AdminConfig, ProducerConfig, ConsumerConfig):
        config = cls(**s)
        assert config.security_protocol == "SASL_SSL"
        assert config.ssl_ca_location == str(ca)
        assert config.ssl_certificate_location == str(cert)
        assert config.ssl_key_location == str(key)
        assert config.sasl_mechanism == "SCRAM-SHA-512"
        assert config.sasl_username == "alice"
        assert config.sasl_password == Secret(SECRET)
        assert config.bootstrap_addresses == (("127.0.0.1", 9),)
        assert config.client_id == "kclient-cli"
        assert SECRET not in repr(config)


def test_options_before_the_subcommand_count_too() -> None:
    args = build_parser().parse_args(
        ["--sasl-username", "bob", "--sasl-password", "x", "topics", "list"]
    )
    config = AdminConfig(**client_settings(args, BOOT))
    assert (config.security_protocol, config.sasl_username) == ("SASL_PLAINTEXT", "bob")


@pytest.mark.parametrize(
    ("argv", "protocol"),
    [
        ((), "PLAINTEXT"),
        (("--sasl-username", "u", "--sasl-password", "p"), "SASL_PLAINTEXT"),
        (("--sasl-username", "u", "--sasl-password", "p", "--ssl-cafile", "ca"), "SASL_SSL"),
        (("--ssl-cafile", "ca"), "SSL"),
        (("--ssl-no-verify",), "SSL"),
        (("--security-protocol", "SASL_SSL", "--sasl-username", "u", "--sasl-password", "p"),
         "SASL_SSL"),
    ],
)  # fmt: skip
def test_protocol_is_inferred_from_the_flags(argv: tuple[str, ...], protocol: str) -> None:
    assert AdminConfig(**settings(*argv)).security_protocol == protocol


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--security-protocol", "PLAINTEXT", "--sasl-username", "u"), "--sasl-username needs"),
        (("--security-protocol", "SASL_PLAINTEXT", "--ssl-cafile", "c"), "--ssl-cafile needs"),
        (("--sasl-password", "a", "--sasl-password-file", "f"), "not both"),
        (("--sasl-username", "u"), "sasl_password: required"),
    ],
)
def test_contradictions_are_clear_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(CliError, match=message):
        settings(*argv)


def test_ssl_no_verify_turns_off_chain_and_host_checks() -> None:
    config = AdminConfig(**settings("--ssl-no-verify"))
    assert config.enable_ssl_certificate_verification is False
    assert config.ssl_check_hostname is False


def test_password_sources_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = ("--sasl-username", "u")
    monkeypatch.setenv(ENV_SASL_PASSWORD, "from-env")
    assert settings(*user)["sasl_password"] == Secret("from-env")
    (tmp_path / "pw").write_text("from file \n")  # the editor's newline goes, spaces stay
    assert settings(*user, "--sasl-password-file", str(tmp_path / "pw"))["sasl_password"] == Secret(
        "from file "
    )
    assert settings(*user, "--sasl-password", "flag")["sasl_password"] == Secret("flag")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CliError, match="is empty"):
        settings(*user, "--sasl-password-file", str(tmp_path / "empty"))
    with pytest.raises(CliError, match="No such file"):
        settings(*user, "--sasl-password-file", str(tmp_path / "missing"))


def test_password_is_a_secret_from_the_moment_it_is_parsed() -> None:
    args = parse("--sasl-username", "u", "--sasl-password", SECRET)
    assert isinstance(args.sasl_password, Secret)
    assert SECRET not in repr(args) + repr(
        settings("--sasl-username", "u", "--sasl-password", SECRET)
    )


# -- --config FILE ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return str(path)


def test_config_file_with_java_and_librdkafka_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a Java client's file\n"
        "bootstrap.servers=127.0.0.1:19092\n"
        "security.protocol=sasl_ssl\n"
        "sasl.mechanism=SCRAM-SHA-256\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        f'    username="alice" password="{SECRET}";\n'
        "ssl.truststore.type=PEM\n"
        "ssl.truststore.location=/etc/ca.pem\n"
        "! librdkafka style\n"
        "ssl.endpoint.identification.algorithm=\n"
        "request.timeout.ms=1234\n",
    )
    args = parse("--config", path)
    from kclient.cli._common import bootstrap_from

    assert bootstrap_from(args) == "127.0.0.1:19092"  # no flag, no env: the file's
    config = ConsumerConfig(**client_settings(args, "127.0.0.1:19092"))
    assert config.security_protocol == "SASL_SSL"
    assert config.sasl_mechanism == "SCRAM-SHA-256"
    assert (config.sasl_username, config.sasl_password) == ("alice", Secret(SECRET))
    assert config.ssl_ca_location == "/etc/ca.pem"
    assert config.ssl_check_hostname is False
    assert config.request_timeout_ms == 1234  # the file wins over --timeout's defaults


def test_flags_override_the_environment_which_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, "security.protocol=SASL_PLAINTEXT\nsasl.username=file\nsasl.password=file\n"
    )
    assert AdminConfig(**settings("--config", path)).sasl_password == Secret("file")
    monkeypatch.setenv(ENV_SASL_PASSWORD, "env")
    assert AdminConfig(**settings("--config", path)).sasl_password == Secret("env")
    config = AdminConfig(
        **settings("--config", path, "--sasl-username", "flag", "--sasl-password", "p2")
    )
    assert (config.sasl_username, config.sasl_password) == ("flag", Secret("p2"))


def test_file_setup_timeout_replaces_the_timeout_pair(tmp_path: Path) -> None:
    path = write(tmp_path, "socket.connection.setup.timeout.ms=60000\n")
    config = AdminConfig(**settings("--config", path, "--timeout", "5"))
    assert config.socket_connection_setup_timeout_ms == 60000
    assert config.socket_connection_setup_timeout_max_ms == 60000  # raised to the base
    assert config.request_timeout_ms == 5000


def test_pem_keystore_is_the_client_certificate_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location=/k/me.pem\n",
    )
    config = AdminConfig(**settings("--config", path))
    assert config.ssl_certificate_location == config.ssl_key_location == "/k/me.pem"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linger.ms=5\n", r"line 1: linger\.ms: unknown configuration property.*all commands"),
        ("\n\nsasl.pasword=x\n", r"line 3: sasl\.pasword: unknown configuration property"),
        ("security.protocol=SASL\n", r"line 1: security_protocol: 'SASL' is not one of"),
        ("ssl.truststore.location=/ts.jks\n", r"line 1: ssl\.truststore\.type JKS is not"),
        ("sasl.jaas.config=com.example.Kerberos required;\n", "only PlainLoginModule"),
        (f"sasl.password {SECRET}\n", r"line 1: expected key=value$"),
        ("a=1\na=2\n", "line 2: a is set twice"),
    ],
)  # fmt: skip
def test_config_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CliError, match=message) as info:
        settings("--config", path)
    assert str(info.value).startswith(f"--config {path}")
    assert SECRET not in str(info.value)


def test_properties_parser_continuations_and_comments() -> None:
    parsed = parse_properties("# c\n! c\n\n a = 1 \nb=x=y\nc=one \\\n   two\n", "f")
    assert parsed.properties == {"a": "1", "b": "x=y", "c": "one two"}
    assert parsed.lines == {"a": 4, "b": 5, "c": 6}


def test_topic_config_pairs_given_to_config_get_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["topics", "create", "t", "--config", "retention.ms=1", "-b", BOOT])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().endswith("topic settings are --topic-config)")


def test_secret_never_in_errors_even_with_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f"security.protocol=SASL_SSL\nsasl.password={SECRET}\nbad.key=1\n")
    for extra in ((), ("--debug",)):
        code = main(["topics", "list", "--config", path, "-b", BOOT, *extra])
        captured = capsys.readouterr()
        assert code == 1
        assert "bad.key: unknown configuration property" in captured.err
        assert SECRET not in captured.err + captured.out
    assert "Traceback" in captured.err  # the --debug run did print one
    code = main(["topics", "list", "--sasl-username", "u", "--sasl-password", SECRET,
                 "--ssl-cafile", str(tmp_path / "missing.pem"), "-b", BOOT, "--debug"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and "ssl_ca_location" in captured.err
    assert SECRET not in captured.err + captured.out


def test_embedded_broker_refuses_security_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "--ssl-cafile", "ca.pem"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "kclient bench: error: the embedded Tansu broker speaks PLAINTEXT only: "
        "give --bootstrap-server to use TLS or SASL"
    )


def test_traceback_formatting_of_a_settings_error_hides_the_secret() -> None:
    with pytest.raises(CliError) as info:
        settings("--security-protocol", "PLAINTEXT", "--sasl-password", SECRET)
    assert SECRET not in "".join(traceback.format_exception(info.value))
