"""Enrolled devices put straight into the database for the profile passes at scale (the
paced delivery tests, `python -m bench.profiles_scale`). They share one identity
certificate: the library encrypts to whatever certificate an enrollment names, and issuing
one per device would cost more than the passes measured (tests/mdm/crash_fleet.py issues
one each, for the tests that speak for the devices over HTTP)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import insert

from orchardist.storage.sql.repositories import SqlStorage
from orchardist.storage.sql.tables import enrollments, issued_certificates
from tests.keys import rsa_key

CHUNK = 5000  # rows a statement


def self_signed(key: rsa.RSAPrivateKey, common_name: str, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )  # fmt: skip


def signer(
    now: datetime, bits: int = 2048
) -> tuple[x509.Certificate, rsa.RSAPrivateKey, list[x509.Certificate]]:
    """What a ProfileLibrary signs with: a self-signed server certificate (tests that
    sign thousands and check no signature may take a cheaper key)."""
    key = rsa_key(1, bits)
    return self_signed(key, "server", now), key, []


async def seed_enrolled(storage: SqlStorage, udids: Sequence[str], now: datetime) -> None:
    """`udids` enrolled, all bound to one identity certificate of ours."""
    der = self_signed(rsa_key(0), "fleet", now).public_bytes(Encoding.DER)
    sha256 = hashlib.sha256(der).hexdigest()
    certificate = {"serial": "07", "status": "valid", "subject": "CN=fleet", "der": der,
                   "sha256": sha256, "not_before": now, "not_after": now,
                   "device_id": None}  # fmt: skip
    one = insert(issued_certificates)
    await storage.database.write(lambda conn: conn.execute(one, certificate))
    many = insert(enrollments)
    for start in range(0, len(udids), CHUNK):
        rows = [
            {"device_id": udid, "topic": "com.apple.mgmt.test", "identity_sha256": sha256,
             "enrolled": True, "token": b"\x01" * 32, "push_magic": "m", "authenticated_at": now,
             "enrolled_at": now}
            for udid in udids[start : start + CHUNK]
        ]  # fmt: skip
        await storage.database.write(lambda conn, rows=rows: conn.execute(many, rows))
