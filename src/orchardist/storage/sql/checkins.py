"""Authenticate and TokenUpdate in plain SQL: every enrolling device runs them once, and in
an enrollment storm SQLAlchemy's statement building, pool and greenlet hops around each
query cost more than the queries.

- The binding checks (`binding_state`): one statement reads the presented certificate's
  record, the device's enrollment, the certificate it is bound to, and any other device
  bound to the presented one.
- Authenticate's write: the enrollment upserted and the old queue cancelled. On PostgreSQL
  one statement (a data-modifying CTE runs whether or not the query reads it) on the driver,
  its own implicit transaction; on SQLite two statements in one `write_sql` transaction.
- TokenUpdate's write: one UPDATE (CASE keeps an enrollment's start when it was enrolled).
  The unlock token comes sealed (storage/sql/sealing.py), with the id of its key.

Text a device reports is fitted as `FittedString` would (see storage/sql/types.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchardist.os_versions import sort_key
from orchardist.storage import BindingState, CertificateStatus, DeviceFacts, IssuedCertificate
from orchardist.storage.sql.database import AsyncDatabase, Database, DriverSql, utc_datetime
from orchardist.storage.sql.tables import SERIAL_HEX_DIGITS, enrollments
from orchardist.storage.sql.types import FittedString

_BINDING = """
SELECT c.serial, c.subject, c.not_before, c.not_after, c.sha256, c.der, c.status,
       c.revoked_at, c.device_id, c.renewal_of,
       e.identity_sha256, e.ended_by, b.serial,
       (SELECT o.device_id FROM enrollments o
        WHERE o.identity_sha256 = c.sha256 AND o.device_id <> $2 LIMIT 1)
FROM issued_certificates c
LEFT JOIN enrollments e ON e.device_id = $2
LEFT JOIN issued_certificates b ON b.sha256 = e.identity_sha256
WHERE c.serial = $1
"""

_FACTS = tuple(DeviceFacts.__dataclass_fields__)  # $1 … $11, in this order
# Then os_version_key, identity_sha256, authenticated_at: $12 … $14.
_UPSERT = """
INSERT INTO enrollments (device_id, topic, serial_number, model, model_name, product_name,
    os_version, build_version, device_name, imei, meid, os_version_key, identity_sha256,
    authenticated_at, enrolled, checked_out_at, ended_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, FALSE, NULL, NULL)
ON CONFLICT (device_id) DO UPDATE SET topic = excluded.topic,
    serial_number = excluded.serial_number, model = excluded.model,
    model_name = excluded.model_name, product_name = excluded.product_name,
    os_version = excluded.os_version, build_version = excluded.build_version,
    device_name = excluded.device_name, imei = excluded.imei, meid = excluded.meid,
    os_version_key = excluded.os_version_key, identity_sha256 = excluded.identity_sha256,
    authenticated_at = excluded.authenticated_at,
    enrolled = FALSE, checked_out_at = NULL, ended_by = NULL
"""
# Apple: Authenticate starts a new enrollment; what was queued for the old one must not run
# on the new (NanoMDM clears the queue the same way). Status words: TargetStatus values.
_CANCEL = (
    "UPDATE command_targets SET status = 'cancelled', answered_at = $14"
    " WHERE device_id = $1 AND status IN ('queued', 'sent', 'not_now')"
)
_AUTHENTICATE_POSTGRES = (  # constants only
    f"WITH upserted AS ({_UPSERT} RETURNING 1), cancelled AS ({_CANCEL} RETURNING 1)"  # noqa: S608
    " SELECT count(*) FROM upserted"
)

# A renewed identity (mdm/binding.py `renews`): the same enrollment on a new certificate, so
# it stays enrolled and keeps its queue (only the facts the Authenticate reports change).
_REBIND = """
UPDATE enrollments SET topic = $2, serial_number = $3, model = $4, model_name = $5,
    product_name = $6, os_version = $7, build_version = $8, device_name = $9, imei = $10,
    meid = $11, os_version_key = $12, identity_sha256 = $13, authenticated_at = $14
WHERE device_id = $1 AND ended_by IS NULL
"""
_REBIND_ONLY = (
    "UPDATE enrollments SET identity_sha256 = $2 WHERE device_id = $1 AND ended_by IS NULL"
)

# A TokenUpdate's push data; the first one after Authenticate starts the enrollment.
# Apple: a TokenUpdate without an UnlockToken keeps the stored one. SET reads the old row.
_PUSH_DATA = """
UPDATE enrollments SET token = $2, push_magic = $3, last_seen_at = $4,
    token_invalid_at = NULL, unlock_token = COALESCE($5, unlock_token),
    unlock_token_key = COALESCE($6, unlock_token_key),
    enrolled_at = CASE WHEN enrolled THEN enrolled_at ELSE $4 END,
    checked_out_at = CASE WHEN enrolled THEN checked_out_at ELSE NULL END,
    ended_by = CASE WHEN enrolled THEN ended_by ELSE NULL END,
    enrolled = TRUE
WHERE device_id = $1
"""


async def binding_state(database: Database, serial: int, device_id: str) -> BindingState:
    """See `EnrollmentStore.binding_state`."""
    row = await database.fetch_row(_BINDING, (_serial_key(serial), device_id))
    if row is None:
        return BindingState(None, None, None, False, None)
    current_sha256, ended_by, current_serial, bound_elsewhere = row[10:]
    return BindingState(
        presented=_certificate(row[:10]),
        bound_elsewhere=bound_elsewhere,
        current_sha256=current_sha256,
        current_ended=ended_by is not None,
        current_serial=None if current_serial is None else int(current_serial, 16),
    )


async def authenticate(
    database: Database, facts: DeviceFacts, identity_sha256: str, now: datetime
) -> None:
    """See `EnrollmentStore.authenticate`."""
    params = (
        *(_fitted(name, getattr(facts, name)) for name in _FACTS),
        sort_key(facts.os_version),
        identity_sha256,
        now,
    )
    if isinstance(database, AsyncDatabase):
        await database.fetch_row(_AUTHENTICATE_POSTGRES, params)
        return

    def work(sql: DriverSql) -> None:
        sql.execute(_UPSERT, *params)
        sql.execute(_CANCEL, *params)

    await database.write_sql(work)


async def rebind(
    database: Database,
    device_id: str,
    identity_sha256: str,
    facts: DeviceFacts | None,
    now: datetime,
) -> bool:
    """See `EnrollmentStore.rebind`."""
    if facts is None:
        params: tuple[Any, ...] = (device_id, identity_sha256)
        sql = _REBIND_ONLY
    else:
        params = (
            *(_fitted(name, getattr(facts, name)) for name in _FACTS),
            sort_key(facts.os_version),
            identity_sha256,
            now,
        )
        sql = _REBIND
    if isinstance(database, AsyncDatabase):
        return await database.fetch_row(sql + " RETURNING 1", params) is not None
    return await database.write_sql(lambda driver: driver.execute(sql, *params) == 1)


async def token_update(
    database: Database,
    device_id: str,
    token: bytes,
    push_magic: str,
    unlock_token: tuple[bytes | None, str | None],
    now: datetime,
) -> bool:
    """See `EnrollmentStore.token_update`; `unlock_token` is (sealed token, key id), or
    (None, None) to keep the stored one."""
    params = (device_id, token, _fitted("push_magic", push_magic), now, *unlock_token)
    if isinstance(database, AsyncDatabase):
        return await database.fetch_row(_PUSH_DATA + " RETURNING 1", params) is not None
    return await database.write_sql(lambda sql: sql.execute(_PUSH_DATA, *params) == 1)


def _fitted(column: str, value: str | None) -> str | None:
    kind: Any = enrollments.c[column].type
    if value is None or not isinstance(kind, FittedString):
        return value
    return kind.process_bind_param(value, None)  # type: ignore[arg-type]  # no dialect used


def _serial_key(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"


def _certificate(row: tuple[Any, ...]) -> IssuedCertificate:
    serial, subject, not_before, not_after, sha256, der, status, revoked_at, device, renewal = row
    return IssuedCertificate(
        serial=int(serial, 16),
        subject=subject,
        not_before=utc_datetime(not_before) or not_before,
        not_after=utc_datetime(not_after) or not_after,
        sha256=sha256,
        der=bytes(der),
        status=CertificateStatus(status),
        revoked_at=utc_datetime(revoked_at),
        device_id=device,
        renewal_of=None if renewal is None else int(renewal, 16),
    )
