"""Sans-IO SASL mechanisms: RFC 7677 vector, nonce/iteration/signature checks, redaction."""

from __future__ import annotations

import base64

import pytest

from kclient._secret import Secret
from kclient.errors import AuthenticationError
from kclient.net.sasl.oauthbearer import OAuthBearerMechanism, OAuthBearerToken, as_token
from kclient.net.sasl.plain import PlainMechanism
from kclient.net.sasl.scram import ScramMechanism

# RFC 7677 section 3 test vector (SCRAM-SHA-256)
CNONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_client() -> ScramMechanism:
    return ScramMechanism("SCRAM-SHA-256", "user", Secret("pencil"), nonce_factory=lambda: CNONCE)


def test_scram_sha256_rfc7677_vector() -> None:
    mech = rfc_client()
    assert mech.start() == b"n,,n=user,r=" + CNONCE.encode()
    assert mech.step(SERVER_FIRST) == CLIENT_FINAL
    assert mech.step(SERVER_FINAL) is None


def test_scram_bad_server_signature_fails() -> None:
    mech = rfc_client()
    mech.start()
    mech.step(SERVER_FIRST)
    bad = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(AuthenticationError, match="server signature"):
        mech.step(bad)


def test_scram_server_error_attribute_fails() -> None:
    mech = rfc_client()
    mech.start()
    mech.step(SERVER_FIRST)
    with pytest.raises(AuthenticationError, match="invalid-proof"):
        mech.step(b"e=invalid-proof")


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # not extended
    ],
)
def test_scram_rejects_foreign_nonce(server_first: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr("hashlib.pbkdf2_hmac", lambda *a: calls.append(a))
    mech = rfc_client()
    mech.start()
    with pytest.raises(AuthenticationError, match="nonce"):
        mech.step(server_first)
    assert calls == []  # rejected before any PBKDF2 work


@pytest.mark.parametrize("iterations", [0, 4095, 1_000_001, 2**31])
def test_scram_iteration_bounds_checked_before_pbkdf2(
    iterations: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr("hashlib.pbkdf2_hmac", lambda *a: calls.append(a))
    mech = rfc_client()
    mech.start()
    server_first = SERVER_FIRST.replace(b"i=4096", b"i=%d" % iterations)
    with pytest.raises(AuthenticationError, match="iteration count"):
        mech.step(server_first)
    assert calls == []


def test_scram_sha512_round_trip_with_server_math() -> None:
    import hashlib
    import hmac

    salt, iterations = b"salty", 4096
    mech = ScramMechanism("SCRAM-SHA-512", "u,=x", Secret("pw"), nonce_factory=lambda: "abc")
    first = mech.start()
    assert first == b"n,,n=u=2C=3Dx,r=abc"
    server_first = b"r=abcdef,s=" + base64.b64encode(salt) + b",i=4096"
    final = mech.step(server_first)
    assert final is not None
    salted = hashlib.pbkdf2_hmac("sha512", b"pw", salt, iterations)
    without_proof = final.rsplit(b",p=", 1)[0]
    auth = first[3:] + b"," + server_first + b"," + without_proof
    server_key = hmac.new(salted, b"Server Key", "sha512").digest()
    signature = hmac.new(server_key, auth, "sha512").digest()
    assert mech.step(b"v=" + base64.b64encode(signature)) is None


def test_plain_message_and_repr() -> None:
    mech = PlainMechanism("alice", Secret("S3cr3t-XYZ"))
    assert mech.start() == b"\0alice\0S3cr3t-XYZ"
    assert mech.step(b"") is None
    assert "S3cr3t" not in repr(mech)


def test_oauthbearer_message_and_failure_ack() -> None:
    token = OAuthBearerToken(Secret("tok-123"), {"traceId": "abc"})
    mech = OAuthBearerMechanism(token)
    assert mech.start() == b"n,,\x01auth=Bearer tok-123\x01traceId=abc\x01\x01"
    assert mech.step(b'{"status":"invalid_token"}') == b"\x01"
    assert "tok-123" not in repr(mech) and "tok-123" not in repr(token)
    assert as_token("x").value == Secret("x")
    with pytest.raises(AuthenticationError):
        OAuthBearerToken(Secret("t"), {"auth": "x"})


def test_scram_errors_never_contain_password() -> None:
    mech = ScramMechanism(
        "SCRAM-SHA-256", "user", Secret("S3cr3t-XYZ"), nonce_factory=lambda: CNONCE
    )
    mech.start()
    mech.step(SERVER_FIRST)
    with pytest.raises(AuthenticationError) as info:
        mech.step(b"v=AAAA")
    assert "S3cr3t" not in str(info.value) and "S3cr3t" not in repr(mech)
