"""A SCEP enrolment recorded in one transaction, in plain SQL.

Every PKCSReq runs this, so it skips SQLAlchemy's statement building and result wrapping
(which cost more than the four statements): the SQL goes to the driver as written, with
`$n` placeholders (asyncpg's; SQLite takes `?n`).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from orchardist.storage import (
    ChallengeOutcome,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
)
from orchardist.storage.sql.database import utc_datetime
from orchardist.storage.sql.tables import SERIAL_HEX_DIGITS

_PREVIOUS = (
    "SELECT status, csr_der, created_at, certificate_serial, device_id"
    " FROM scep_transactions WHERE transaction_id = $1"
)
# One conditional UPDATE: the database decides which of two racing requests wins.
_CLAIM = (
    "UPDATE scep_challenges SET used_at = $1"
    " WHERE challenge_sha256 = $2 AND used_at IS NULL AND expires_at > $1"
    " RETURNING device_id"
)
_USED_AT = "SELECT used_at FROM scep_challenges WHERE challenge_sha256 = $1"
_INSERT_CERTIFICATE = (
    "INSERT INTO issued_certificates (serial, subject, not_before, not_after, sha256, der,"
    " status, revoked_at, device_id, renewal_of)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)"
)
_INSERT_TRANSACTION = (
    "INSERT INTO scep_transactions (transaction_id, status, csr_der, created_at,"
    " certificate_serial, device_id) VALUES ($1, $2, $3, $4, $5, $6)"
)


def record_enrolment(
    conn: Connection,
    cert: IssuedCertificate,
    tx: ScepTransaction,
    challenge_sha256: str | None,
    now: datetime,
) -> ScepTransaction | ChallengeOutcome:
    """See `ScepTransactionStore.record_enrolment`; `conn` is in a transaction that rolls
    back unless this returns CONSUMED."""
    run = _Runner(conn)
    previous = run.one(_PREVIOUS, tx.transaction_id)
    if previous is not None:
        status, csr_der, created_at, serial, device_id = previous
        return ScepTransaction(
            transaction_id=tx.transaction_id,
            status=ScepTransactionStatus(status),
            csr_der=bytes(csr_der),
            created_at=utc_datetime(created_at) or now,
            certificate_serial=None if serial is None else int(serial, 16),
            device_id=device_id,
        )
    device_id = cert.device_id
    if challenge_sha256 is not None:
        claimed = run.one(_CLAIM, now, challenge_sha256)
        if claimed is None:
            used = run.one(_USED_AT, challenge_sha256)
            if used is None:
                return ChallengeOutcome.UNKNOWN
            return ChallengeOutcome.ALREADY_USED if used[0] else ChallengeOutcome.EXPIRED
        device_id = claimed[0] or device_id
    serial = _key(cert.serial)
    renewal_of = None if cert.renewal_of is None else _key(cert.renewal_of)
    run.execute(
        _INSERT_CERTIFICATE,
        serial,
        cert.subject,
        cert.not_before,
        cert.not_after,
        cert.sha256,
        cert.der,
        cert.status.value,
        device_id,
        renewal_of,
    )
    run.execute(
        _INSERT_TRANSACTION,
        tx.transaction_id,
        tx.status.value,
        tx.csr_der,
        tx.created_at,
        serial,
        device_id,
    )
    return ChallengeOutcome.CONSUMED


class _Runner:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sqlite = conn.dialect.name == "sqlite"

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        row = self._run(sql, params).first()
        return None if row is None else tuple(row)

    def execute(self, sql: str, *params: Any) -> None:
        self._run(sql, params)

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        if self._sqlite:
            sql = _numbered(sql)
            params = tuple(_sqlite_value(value) for value in params)
        return self._conn.exec_driver_sql(sql, params)


def _key(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"  # as repositories.serial_key stores it


@functools.lru_cache(maxsize=16)
def _numbered(sql: str) -> str:
    return re.sub(r"\$(\d+)", r"?\1", sql)


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy's UtcDateTime stores it in SQLite: UTC text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
