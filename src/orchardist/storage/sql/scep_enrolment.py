"""A SCEP enrolment recorded in one transaction, in plain SQL.

Every PKCSReq runs this, so it skips SQLAlchemy's statement building and result wrapping
(which cost more than the statements): the SQL goes to the driver as written, with `$n`
placeholders (asyncpg's; SQLite takes `?n`). On PostgreSQL the whole enrolment is one
statement (`_ENROL`, data-modifying CTEs) run on its own, so one round trip and one implicit
transaction instead of BEGIN, four statements and COMMIT; SQLite runs the four statements
inline, where a statement costs microseconds and there is no round trip to save.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs upstream
from sqlalchemy.exc import IntegrityError

from orchardist.storage import (
    ChallengeOutcome,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
)
from orchardist.storage.sql.database import AsyncDatabase, Database, DriverSql, utc_datetime
from orchardist.storage.sql.tables import SERIAL_HEX_DIGITS

_PREVIOUS = (
    "SELECT status, csr_der, created_at, certificate_serial, device_id, renewal_of"
    " FROM scep_transactions WHERE transaction_id = $1"
)
# One conditional UPDATE: the database decides which of two racing requests wins.
_CLAIM = (
    "UPDATE scep_challenges SET used_at = $1"
    " WHERE challenge_sha256 = $2 AND used_at IS NULL AND expires_at > $1"
    " RETURNING device_id, renewal_of"
)
_USED_AT = "SELECT used_at FROM scep_challenges WHERE challenge_sha256 = $1"
_INSERT_CERTIFICATE = (
    "INSERT INTO issued_certificates (serial, subject, not_before, not_after, sha256, der,"
    " status, revoked_at, device_id, renewal_of)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)"
)
_INSERT_TRANSACTION = (
    "INSERT INTO scep_transactions (transaction_id, status, csr_der, created_at,"
    " certificate_serial, device_id, renewal_of) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


# Every CTE sees the snapshot the statement started with; the UPDATE still waits for a
# concurrent claim of the same challenge and then re-checks `used_at IS NULL`, so two
# requests cannot both consume it. A concurrent twin with the same transactionID makes one
# of the two INSERTs fail on the primary key (the caller reads the winner's transaction).
_ENROL = """
WITH previous AS (
    SELECT status, csr_der, created_at, certificate_serial, device_id, renewal_of
    FROM scep_transactions WHERE transaction_id = $1
), challenge AS (
    SELECT used_at, expires_at FROM scep_challenges WHERE challenge_sha256 = $2
), claim AS (
    UPDATE scep_challenges SET used_at = $3
    WHERE challenge_sha256 = $2 AND used_at IS NULL AND expires_at > $3
      AND NOT EXISTS (SELECT 1 FROM previous)
    RETURNING device_id, renewal_of
), chosen AS (
    SELECT COALESCE((SELECT device_id FROM claim), $4::varchar) AS device_id,
        COALESCE((SELECT renewal_of FROM claim), $12::varchar) AS renewal_of
    WHERE NOT EXISTS (SELECT 1 FROM previous)
      AND ($2::varchar IS NULL OR EXISTS (SELECT 1 FROM claim))
), certificate AS (
    INSERT INTO issued_certificates (serial, subject, not_before, not_after, sha256, der,
        status, revoked_at, device_id, renewal_of)
    SELECT $5::varchar, $6::varchar, $7::timestamptz, $8::timestamptz, $9::varchar,
        $10::bytea, $11::varchar, NULL, device_id, renewal_of FROM chosen
    RETURNING serial
), recorded AS (
    INSERT INTO scep_transactions (transaction_id, status, csr_der, created_at,
        certificate_serial, device_id, renewal_of)
    SELECT $1, $13::varchar, $14::bytea, $15::timestamptz, $5::varchar, device_id, renewal_of
    FROM chosen
    RETURNING transaction_id
)
SELECT EXISTS (SELECT 1 FROM recorded), (SELECT count(*) FROM certificate),
    p.status, p.csr_der, p.created_at, p.certificate_serial, p.device_id, p.renewal_of,
    c.expires_at IS NOT NULL, c.used_at, c.expires_at
FROM (SELECT 1) AS one LEFT JOIN previous AS p ON true LEFT JOIN challenge AS c ON true
"""


async def record(
    database: Database,
    cert: IssuedCertificate,
    tx: ScepTransaction,
    challenge_sha256: str | None,
    now: datetime,
) -> ScepTransaction | ChallengeOutcome:
    """See `ScepTransactionStore.record_enrolment`."""
    try:
        if isinstance(database, AsyncDatabase):
            outcome = await _record_postgres(database, cert, tx, challenge_sha256, now)
        else:
            outcome = await database.write_sql(
                lambda sql: record_enrolment(sql, cert, tx, challenge_sha256, now)
            )
    except (IntegrityError, sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError):
        # A twin request (same transactionID) racing this one was recorded first: this is
        # a resend (RFC 8894 §3.3.1). Any other collision is raised again.
        resent = await _recorded(database, tx.transaction_id, now)
        if resent is None:
            raise
        return resent
    if outcome == ChallengeOutcome.ALREADY_USED:
        # The twin may also have consumed the one-time challenge a moment before this.
        return await _recorded(database, tx.transaction_id, now) or outcome
    return outcome


async def _recorded(
    database: Database, transaction_id: str, now: datetime
) -> ScepTransaction | None:
    row = await database.read(lambda conn: DriverSql(conn).one(_PREVIOUS, transaction_id))
    return None if row is None else _previous(transaction_id, row, now)


async def _record_postgres(
    database: AsyncDatabase,
    cert: IssuedCertificate,
    tx: ScepTransaction,
    challenge_sha256: str | None,
    now: datetime,
) -> ScepTransaction | ChallengeOutcome:
    """`record_enrolment` as the one statement `_ENROL`, on the driver itself."""
    params = (
        tx.transaction_id,
        challenge_sha256,
        now,
        cert.device_id,
        _key(cert.serial),
        cert.subject,
        cert.not_before,
        cert.not_after,
        cert.sha256,
        cert.der,
        cert.status.value,
        None if cert.renewal_of is None else _key(cert.renewal_of),
        tx.status.value,
        tx.csr_der,
        tx.created_at,
    )
    row = await database.fetch_row(_ENROL, params)
    assert row is not None  # the statement selects exactly one row
    recorded, _, status, *previous, found, used, expires = row
    if recorded:
        return ChallengeOutcome.CONSUMED
    if status is not None:
        return _previous(tx.transaction_id, (status, *previous), now)
    if not found:
        return ChallengeOutcome.UNKNOWN
    # Unused and unexpired when the statement began, yet not claimed: a concurrent request
    # consumed it in between.
    expired = (utc_datetime(expires) or now) <= now
    return ChallengeOutcome.EXPIRED if used is None and expired else ChallengeOutcome.ALREADY_USED


def record_enrolment(
    run: DriverSql,
    cert: IssuedCertificate,
    tx: ScepTransaction,
    challenge_sha256: str | None,
    now: datetime,
) -> ScepTransaction | ChallengeOutcome:
    """See `ScepTransactionStore.record_enrolment`, in `run`'s transaction (which writes
    nothing unless this returns CONSUMED)."""
    previous = run.one(_PREVIOUS, tx.transaction_id)
    if previous is not None:
        return _previous(tx.transaction_id, previous, now)
    device_id = cert.device_id
    renewal_of = None if cert.renewal_of is None else _key(cert.renewal_of)
    if challenge_sha256 is not None:
        claimed = run.one(_CLAIM, now, challenge_sha256)
        if claimed is None:
            used = run.one(_USED_AT, challenge_sha256)
            if used is None:
                return ChallengeOutcome.UNKNOWN
            return ChallengeOutcome.ALREADY_USED if used[0] else ChallengeOutcome.EXPIRED
        # An identity renewal's challenge (mdm/renewal.py) marks what it renews.
        device_id, renewal_of = claimed[0] or device_id, claimed[1] or renewal_of
    serial = _key(cert.serial)
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
        renewal_of,
    )
    return ChallengeOutcome.CONSUMED


def _previous(transaction_id: str, row: tuple[Any, ...], now: datetime) -> ScepTransaction:
    status, csr_der, created_at, serial, device_id, renewal_of = row
    return ScepTransaction(
        transaction_id=transaction_id,
        status=ScepTransactionStatus(status),
        csr_der=bytes(csr_der),
        created_at=utc_datetime(created_at) or now,
        certificate_serial=None if serial is None else int(serial, 16),
        device_id=device_id,
        renewal_of=None if renewal_of is None else int(renewal_of, 16),
    )


def _key(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"  # as repositories.serial_key stores it
