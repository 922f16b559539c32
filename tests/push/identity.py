"""A stand-in for Apple's push certificate: a CA the local APNs peer trusts, and an MDM
push certificate it issued with the topic in the subject UID, written as PEM files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.keys import rsa_key

TOPIC = "com.apple.mgmt.External.0b7c3c52-8d8c-4f0e-9a35-2b1a4f6c1d20"


@dataclass(frozen=True)
class PushIdentity:
    ca_pem: bytes  # what the peer trusts for client certificates
    cert_file: Path
    key_file: Path
    topic: str


def push_identity(directory: Path, *, topic: str = TOPIC, days: int = 365) -> PushIdentity:
    now = datetime.now(UTC)
    ca_key, key = rsa_key(120), rsa_key(121)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Apple Push CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{topic[-36:]}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "push.pem", directory / "push.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return PushIdentity(ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file, topic)
