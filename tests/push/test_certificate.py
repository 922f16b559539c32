"""Push certificates: what is accepted, and what is refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from orchardist.push.certificate import PushCertificateError, from_p12, from_pem, push_csr
from tests.keys import rsa_key

NOW = datetime.now(UTC)
TOPIC = "com.apple.mgmt.External.5f1c1b8e-1234-4cde-9abc-0123456789ab"


def push_certificate(
    key: rsa.RSAPrivateKey, *, topic: str | None = TOPIC, days: int = 365, ago: int = 0
) -> x509.Certificate:
    """Shaped like Apple's: the topic is the subject's UID."""
    names = [x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{TOPIC[-36:]}")]
    if topic:
        names.append(x509.NameAttribute(NameOID.USER_ID, topic))
    start = NOW - timedelta(days=ago)
    issuer_key = rsa_key(110)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(
            x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, "Apple Application Integration 2 CA")]
            )
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(
    cert: x509.Certificate, key: rsa.RSAPrivateKey, password: bytes | None = None
) -> tuple[bytes, bytes]:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def test_pem_and_p12_give_the_topic() -> None:
    key = rsa_key(111)
    cert = push_certificate(key)
    pushed = from_pem(*_pem(cert, key), password=None, now=NOW)
    assert (pushed.topic, pushed.days_left(NOW)) == (TOPIC, 364)
    p12 = pkcs12.serialize_key_and_certificates(
        b"push", key, cert, None, serialization.BestAvailableEncryption(b"pw")
    )
    assert from_p12(p12, password=b"pw", now=NOW).topic == TOPIC
    with pytest.raises(PushCertificateError, match="wrong --password"):
        from_p12(p12, password=b"nope", now=NOW)
    encrypted = _pem(cert, key, b"secret")
    assert from_pem(*encrypted, password=b"secret", now=NOW).topic == TOPIC
    with pytest.raises(PushCertificateError, match="--password"):
        from_pem(*encrypted, password=None, now=NOW)


@pytest.mark.parametrize(
    ("case", "reason"),
    [("other-key", "does not belong"), ("expired", "expired on"), ("no-topic", "not an MDM push")],
)
def test_refusals_say_what_to_do(case: str, reason: str) -> None:
    key = rsa_key(111)
    cert = push_certificate(
        key,
        topic=None if case == "no-topic" else TOPIC,
        days=30,
        ago=40 if case == "expired" else 0,
    )
    signing_key = rsa_key(112) if case == "other-key" else key
    with pytest.raises(PushCertificateError, match=reason):
        from_pem(
            cert.public_bytes(serialization.Encoding.PEM),
            _pem(cert, signing_key)[1],
            password=None,
            now=NOW,
        )


def test_csr() -> None:
    key, csr = push_csr("Orchardist MDM push")
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert key.key_size == 2048
