"""Enrolled devices written in bulk, for load tests (`orchardist simulate seed`): the rows
the server writes after a device's SCEP request, Authenticate and TokenUpdate, without the
round trips. The certificates are `IssuedCertificate`s as SCEP records them; a device
without one (seeded to be pushed and counted, never to check in) names a fingerprint no
certificate has, so nothing can speak for it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, Table, func, select

from orchardist.os_versions import sort_key
from orchardist.storage import DeviceFacts, IssuedCertificate
from orchardist.storage.sql.database import DriverSql
from orchardist.storage.sql.repositories import SqlStorage, _certificate_row
from orchardist.storage.sql.tables import enrollments, issued_certificates

CHUNK = 5000  # rows per statement: bounded memory per round trip on both backends


@dataclass(frozen=True)
class SeededDevice:
    """An enrollment as Authenticate and TokenUpdate leave it."""

    facts: DeviceFacts  # what its Authenticate said
    identity_sha256: str  # its certificate's, or one no certificate has
    token: bytes
    push_magic: str


def issued(cert: x509.Certificate, device_id: str | None) -> IssuedCertificate:
    """The record SCEP keeps of a certificate it issued (for `device_id`, when tied to one)."""
    der = cert.public_bytes(Encoding.DER)
    return IssuedCertificate(
        serial=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
        der=der,
        device_id=device_id,
    )


async def already_enrolled(storage: SqlStorage, udids: Sequence[str]) -> int:
    """How many of `udids` have an enrollment row (seeding them again would collide)."""
    total = 0
    for start in range(0, len(udids), CHUNK):
        chunk = udids[start : start + CHUNK]
        total += await storage.database.read(_counting(chunk))
    return total


async def write_seeded(
    storage: SqlStorage,
    devices: Sequence[SeededDevice],
    certificates: Sequence[IssuedCertificate],
    now: datetime,
) -> None:
    """Insert `certificates` and `devices` (enrolled, last seen `now`), CHUNK rows a
    transaction; an existing UDID or serial fails its chunk with IntegrityError."""
    for start in range(0, len(certificates), CHUNK):
        rows = [_certificate_row(c) for c in certificates[start : start + CHUNK]]
        await storage.database.write_sql(_inserting(issued_certificates, rows))
    for start in range(0, len(devices), CHUNK):
        rows = [_enrollment_row(d, now) for d in devices[start : start + CHUNK]]
        await storage.database.write_sql(_inserting(enrollments, rows))


def _counting(udids: Sequence[str]) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        query = select(func.count()).where(enrollments.c.device_id.in_(udids))
        return int(conn.scalar(query) or 0)

    return work


def _inserting(table: Table, rows: list[dict[str, Any]]) -> Callable[[DriverSql], None]:
    """One executemany on the driver (SQLAlchemy's own executemany cost more than the
    database for 100,000 enrollments); unnamed columns are NULL."""
    names = [column.name for column in table.columns]
    values = [[row.get(name) for name in names] for row in rows]
    return lambda sql: sql.insert_many(table, values)


def _enrollment_row(device: SeededDevice, now: datetime) -> dict[str, Any]:
    return {
        **vars(device.facts),  # device_id, topic, serial_number, …: columns of the same names
        "os_version_key": sort_key(device.facts.os_version),
        "identity_sha256": device.identity_sha256,
        "enrolled": True,
        "token": device.token,
        "push_magic": device.push_magic,
        "authenticated_at": now,
        "enrolled_at": now,
        "last_seen_at": now,
    }
