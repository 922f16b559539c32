"""A stand-in for Apple's push certificate (orchardist.push.stand_in) with the suite's
cached keys, written as PEM files: the CA the local APNs peer trusts, the certificate, its key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from orchardist.push.stand_in import stand_in_identity
from tests.keys import rsa_key

TOPIC = "com.apple.mgmt.External.0b7c3c52-8d8c-4f0e-9a35-2b1a4f6c1d20"


@dataclass(frozen=True)
class PushIdentity:
    ca_pem: bytes  # what the peer trusts for client certificates
    cert_file: Path
    key_file: Path
    topic: str


def push_identity(directory: Path, *, topic: str = TOPIC, days: int = 365) -> PushIdentity:
    made = stand_in_identity(
        datetime.now(UTC), topic=topic, days=days, ca_key=rsa_key(120), key=rsa_key(121)
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "push.pem", directory / "push.key"
    cert_file.write_bytes(made.certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        made.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return PushIdentity(
        made.ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file, topic
    )
