"""Enrollments and the command queue on SQL (see `orchardist.storage` for the contracts).

A device request to the ServerURL is one transaction (`exchange`): store the report, pick
the next command, mark it sent. The pick is one index range on command_targets
(device_id, status, priority, created_at).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.os_versions import sort_key
from orchardist.storage import (
    ANSWERED,
    BindingState,
    CertificateStatus,
    DeviceFacts,
    EndedBy,
    Enrollment,
    Exchange,
    IdleState,
    NewCommand,
    ReportOutcome,
    TargetState,
    TargetStatus,
)
from orchardist.storage.scopes import Devices, Scope
from orchardist.storage.sql import checkins
from orchardist.storage.sql.database import Database, DriverSql, utc_datetime
from orchardist.storage.sql.fan_out import insert_command_row, queue_for_scope
from orchardist.storage.sql.push import BATCH, schedule_pushes
from orchardist.storage.sql.sealing import place, seal, unseal
from orchardist.storage.sql.tables import command_targets, commands, enrollments, push_jobs

_targets = command_targets
# A result this large (an app list of thousands) is stored off the event loop.
LARGE_RESULT = 256 * 1024
_PENDING = (TargetStatus.QUEUED.value, TargetStatus.SENT.value)

# The Idle's one query: the binding, the bound certificate's status, and whether anything
# waits (an index range on ix_command_targets_device_id). NotNow'd commands count: an Idle
# starts a session in which they are offered again. Plain SQL for `fetch_row`, on both
# backends; the status words are TargetStatus and CertificateStatus values.
_IDLE_STATE = """
SELECT e.identity_sha256, e.last_seen_at, c.status,
       EXISTS (SELECT 1 FROM command_targets t
               WHERE t.device_id = e.device_id
                 AND t.status IN ('queued', 'sent', 'not_now')
                 AND (t.expires_at IS NULL OR t.expires_at > $2))
FROM enrollments e LEFT JOIN issued_certificates c ON c.sha256 = e.identity_sha256
WHERE e.device_id = $1
"""


class SqlMdmStorage:
    database: Database
    keys: MasterKeys  # seals unlock and bootstrap tokens and secret-bearing command bodies

    # -- EnrollmentStore

    async def authenticate(self, facts: DeviceFacts, identity_sha256: str, now: datetime) -> None:
        await checkins.authenticate(self.database, facts, identity_sha256, now)

    async def binding_state(self, serial: int, device_id: str) -> BindingState:
        return await checkins.binding_state(self.database, serial, device_id)

    async def rebind(
        self, device_id: str, identity_sha256: str, facts: DeviceFacts | None, now: datetime
    ) -> bool:
        return await checkins.rebind(self.database, device_id, identity_sha256, facts, now)

    async def token_update(
        self,
        device_id: str,
        *,
        token: bytes,
        push_magic: str,
        unlock_token: bytes | None,
        now: datetime,
    ) -> bool:
        sealed = seal(self.keys, unlock_token, place("enrollments", "unlock_token", device_id))
        return await checkins.token_update(self.database, device_id, token, push_magic, sealed, now)

    async def check_out(
        self, device_id: str, now: datetime, ended_by: EndedBy = EndedBy.CHECKED_OUT
    ) -> bool:
        change = (
            update(enrollments)
            .where(enrollments.c.device_id == device_id)
            .values(enrolled=False, checked_out_at=now, ended_by=ended_by.value)
        )
        if ended_by == EndedBy.CHECKED_OUT:  # the device spoke; an admin's retire is not that
            change = change.values(last_seen_at=now)

        def work(conn: Connection) -> bool:
            if conn.execute(change).rowcount != 1:
                return False
            # Nothing queued can reach a device that is no longer enrolled.
            _cancel_pending(conn, device_id, now)
            conn.execute(delete(push_jobs).where(push_jobs.c.device_id == device_id))
            return True

        return await self.database.write(work)

    async def device_bound_to(self, identity_sha256: str, other_than: str) -> str | None:
        query = (
            select(enrollments.c.device_id)
            .where(
                and_(
                    enrollments.c.identity_sha256 == identity_sha256,
                    enrollments.c.device_id != other_than,
                )
            )
            .limit(1)
        )
        return await self.database.read(lambda conn: conn.execute(query).scalar())

    async def refresh_facts(self, device_id: str, facts: Mapping[str, str]) -> None:
        known: dict[str, str | None] = {
            k: v for k, v in facts.items() if k in DeviceFacts.__dataclass_fields__
        }
        known.pop("device_id", None)
        if "os_version" in known:
            known["os_version_key"] = sort_key(known["os_version"])
        if known:
            change = update(enrollments).where(enrollments.c.device_id == device_id).values(known)
            await self.database.write(lambda conn: conn.execute(change))

    async def set_bootstrap_token(self, device_id: str, token: bytes | None) -> bool:
        where = place("enrollments", "bootstrap_token", device_id)
        sealed, key = seal(self.keys, token, where)
        change = (
            update(enrollments)
            .where(enrollments.c.device_id == device_id)
            .values(bootstrap_token=sealed, bootstrap_token_key=key)
        )
        return await self.database.write(lambda conn: conn.execute(change).rowcount == 1)

    async def get_enrollment(self, device_id: str) -> Enrollment | None:
        query = select(enrollments).where(enrollments.c.device_id == device_id)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else enrollment_from_row(row, self.keys)

    async def list_enrollments(self) -> list[Enrollment]:
        query = select(enrollments).order_by(enrollments.c.device_id)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [enrollment_from_row(row, self.keys) for row in rows]

    async def device_ids(
        self, among: Sequence[str] | None = None, *, enrolled: bool = False
    ) -> list[str]:
        conditions = []
        if enrolled:
            conditions.append(enrollments.c.enrolled.is_(True))
        query = select(enrollments.c.device_id).order_by(enrollments.c.device_id)
        if among is None:
            query = query.where(*conditions)
            rows = await self.database.read(lambda conn: list(conn.execute(query).scalars()))
            return [str(row) for row in rows]
        wanted = list(dict.fromkeys(among))

        def work(conn: Connection) -> list[str]:
            found: list[str] = []
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start : start + BATCH]
                rows = conn.execute(query.where(enrollments.c.device_id.in_(chunk), *conditions))
                found += [str(row) for row in rows.scalars()]
            return found

        found = await self.database.read(work)
        return sorted(found)

    # -- CommandStore

    async def enqueue(self, command: NewCommand, device_ids: Sequence[str], now: datetime) -> int:
        return await self.database.write(
            lambda conn: insert_command(conn, self.keys, command, device_ids, now)
        )

    async def enqueue_to(self, command: NewCommand, scope: Scope, now: datetime) -> int:
        if isinstance(scope, Devices):
            if len(scope.device_ids) <= BATCH:
                return await self.enqueue(command, scope.device_ids, now)
            ids = scope.device_ids
            return await self.database.write_beside(
                lambda conn: insert_command(conn, self.keys, command, ids, now)
            )
        # Seconds for a large fleet: off the event loop on SQLite (write_beside).
        return await self.database.write_beside(
            lambda conn: queue_for_scope(conn, self.keys, command, scope, now)
        )

    async def exchange(
        self,
        device_id: str,
        report: tuple[str, TargetStatus, bytes] | None,
        now: datetime,
        *,
        seen: bool = True,
    ) -> Exchange:
        # Plain SQL (every command round trip runs this); see _EXCHANGE_SQL.
        def work(sql: DriverSql) -> Exchange:
            outcome, request_type = None, None
            if report is None:
                sql.execute(_NOT_NOW_AGAIN, device_id)
            else:
                outcome, request_type = _store_report(sql, device_id, report, now)
                if outcome == ReportOutcome.UNKNOWN:
                    return Exchange(outcome, None)
            if seen:
                sql.execute(_SEEN, device_id, now)
            next_command = _next_command(sql, self.keys, device_id, now)
            if outcome == ReportOutcome.DUPLICATE:
                return Exchange(outcome, next_command, duplicate_request_type=request_type)
            return Exchange(outcome, next_command, request_type)

        if report is not None and len(report[2]) >= LARGE_RESULT:  # Idles go on meanwhile
            return await self.database.write_beside(lambda conn: work(DriverSql(conn)))
        return await self.database.write_sql(work)

    async def idle_state(self, device_id: str, now: datetime) -> IdleState | None:
        row = await self.database.fetch_row(_IDLE_STATE, (device_id, now))
        if row is None:
            return None
        identity_sha256, last_seen_at, certificate_status, pending = row
        return IdleState(
            identity_sha256=identity_sha256,
            certificate_valid=certificate_status == CertificateStatus.VALID.value,
            pending=bool(pending),
            last_seen_at=utc_datetime(last_seen_at),
        )

    async def touch(self, device_id: str, now: datetime) -> None:
        change = (
            update(enrollments).where(enrollments.c.device_id == device_id).values(last_seen_at=now)
        )
        await self.database.write(lambda conn: conn.execute(change))

    async def command_targets(
        self,
        command_uuid: str,
        now: datetime,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[TargetState]:
        # A keyset range of the primary key (command_uuid, device_id): the last page of a
        # million targets costs what the first does.
        query = (
            _with_request_type()
            .where(_targets.c.command_uuid == command_uuid)
            .order_by(_targets.c.device_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_targets.c.device_id > after)
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_target_state(row, now) for row in rows]

    async def device_commands(
        self, device_id: str, now: datetime, limit: int = 100
    ) -> list[TargetState]:
        query = (
            _with_request_type()
            .where(_targets.c.device_id == device_id)
            .order_by(_targets.c.created_at.desc(), _targets.c.command_uuid)
            .limit(limit)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all())
        return [_target_state(row, now) for row in rows]


def insert_command(
    conn: Connection,
    keys: MasterKeys,
    command: NewCommand,
    device_ids: Sequence[str],
    now: datetime,
) -> int:
    """Queue `command` for the devices in the caller's transaction, so that what else the
    caller writes (a profile's or an app's device state) commits with it or not at all."""
    targets = [
        {
            "command_uuid": command.command_uuid,
            "device_id": device_id,
            "status": TargetStatus.QUEUED.value,
            "priority": command.priority,
            "created_at": now,
            "expires_at": command.expires_at,
        }
        for device_id in sorted(set(device_ids))  # in index order: see fan_out._targets_of
    ]
    insert_command_row(conn, keys, command, now)
    for start in range(0, len(targets), BATCH):
        conn.execute(insert(_targets), targets[start : start + BATCH])
    # Wake the devices: one push job each, however many commands were queued.
    schedule_pushes(conn, [str(t["device_id"]) for t in targets], now)
    return len(targets)


def _with_request_type() -> Select[Any]:
    return select(_targets, commands.c.request_type).join(
        commands, commands.c.command_uuid == _targets.c.command_uuid
    )


def _cancel_pending(conn: Connection, device_id: str, now: datetime) -> None:
    conn.execute(
        update(_targets)
        .where(
            and_(
                _targets.c.device_id == device_id,
                _targets.c.status.in_([*_PENDING, TargetStatus.NOT_NOW.value]),
            )
        )
        .values(status=TargetStatus.CANCELLED.value, answered_at=now)
    )


def _store_report(
    sql: DriverSql,
    device_id: str,
    report: tuple[str, TargetStatus, bytes],
    now: datetime,
) -> tuple[ReportOutcome, str | None]:
    command_uuid, status, body = report
    current = sql.one(_CURRENT, command_uuid, device_id)
    if current is None:
        return ReportOutcome.UNKNOWN, None
    current_status, request_type = current
    if TargetStatus(current_status) in ANSWERED:
        return ReportOutcome.DUPLICATE, request_type  # a retransmission: the first stands
    answered_at = None if status == TargetStatus.NOT_NOW else now
    sql.execute(_STORE, command_uuid, device_id, status.value, body, answered_at)
    if answered_at is not None:
        _forget_old_results(sql, device_id, request_type)
    return ReportOutcome.STORED, request_type


# Raw results kept per device and RequestType; older ones keep their status, lose the body.
RESULTS_KEPT = 5


def _forget_old_results(sql: DriverSql, device_id: str, request_type: str) -> None:
    """Bounded retention: an app list every day for a year would otherwise pile up."""
    sql.execute(_FORGET_SQLITE if sql.sqlite else _FORGET_POSTGRES, device_id, request_type)


# One statement: the results past the newest RESULTS_KEPT of this device and RequestType
# lose their body. An OFFSET without a LIMIT is written differently on each backend.
_FORGET = """
UPDATE command_targets SET result = NULL
WHERE device_id = $1 AND command_uuid IN (
    SELECT t.command_uuid FROM command_targets t
    JOIN commands c ON c.command_uuid = t.command_uuid
    WHERE t.device_id = $1 AND c.request_type = $2
      AND t.result IS NOT NULL AND t.answered_at IS NOT NULL
    ORDER BY t.answered_at DESC, t.command_uuid DESC
    {offset}
)
"""
_FORGET_SQLITE = _FORGET.format(offset=f"LIMIT -1 OFFSET {RESULTS_KEPT}")
_FORGET_POSTGRES = _FORGET.format(offset=f"OFFSET {RESULTS_KEPT}")


def _next_command(
    sql: DriverSql, keys: MasterKeys, device_id: str, now: datetime
) -> tuple[str, bytes] | None:
    found = sql.one(_NEXT, device_id, now)
    if found is None:
        return None
    command_uuid, body, body_key = found
    sql.execute(_SENT, command_uuid, device_id, now)
    # Only a secret-bearing command (SEALED_COMMANDS) is opened; the rest go out as stored.
    opened = unseal(keys, body, body_key, place("commands", "body", command_uuid))
    return command_uuid, opened or b""


# _EXCHANGE_SQL: what `exchange` runs, for both backends. The status words are TargetStatus
# values; the next command is one range of ix_command_targets_device_id.
_NOT_NOW_AGAIN = (  # a new session (Idle): what the device put off is offered again
    "UPDATE command_targets SET status = 'queued' WHERE device_id = $1 AND status = 'not_now'"
)
_CURRENT = (
    "SELECT t.status, c.request_type FROM command_targets t"
    " JOIN commands c ON c.command_uuid = t.command_uuid"
    " WHERE t.command_uuid = $1 AND t.device_id = $2"
)
_STORE = (
    "UPDATE command_targets SET status = $3, result = $4, answered_at = $5"
    " WHERE command_uuid = $1 AND device_id = $2"
)
_SEEN = "UPDATE enrollments SET last_seen_at = $2 WHERE device_id = $1"
_NEXT = (
    "SELECT t.command_uuid, c.body, c.body_key FROM command_targets t"
    " JOIN commands c ON c.command_uuid = t.command_uuid"
    " WHERE t.device_id = $1 AND t.status IN ('queued', 'sent')"
    " AND (t.expires_at IS NULL OR t.expires_at > $2)"
    " ORDER BY t.priority DESC, t.created_at, t.command_uuid LIMIT 1"
)
_SENT = (
    "UPDATE command_targets SET status = 'sent', sent_at = $3"
    " WHERE command_uuid = $1 AND device_id = $2"
)


def enrollment_from_row(row: Row[Any], keys: MasterKeys | None = None) -> Enrollment:
    """The enrollment; its unlock and bootstrap tokens are opened only with `keys` (device
    lists and compliance never need them, so they are left None there, never decrypted)."""
    facts = DeviceFacts(
        **{field: getattr(row, field) for field in DeviceFacts.__dataclass_fields__}
    )
    return Enrollment(
        facts=facts,
        identity_sha256=row.identity_sha256,
        enrolled=row.enrolled,
        authenticated_at=row.authenticated_at,
        token=row.token,
        push_magic=row.push_magic,
        unlock_token=_token(row, "unlock_token", keys),
        bootstrap_token=_token(row, "bootstrap_token", keys),
        enrolled_at=row.enrolled_at,
        last_seen_at=row.last_seen_at,
        checked_out_at=row.checked_out_at,
        pushed_at=row.pushed_at,
        token_invalid_at=row.token_invalid_at,
        ended_by=None if row.ended_by is None else EndedBy(row.ended_by),
    )


def _token(row: Row[Any], column: str, keys: MasterKeys | None) -> bytes | None:
    if keys is None:
        return None
    where = place("enrollments", column, row.device_id)
    return unseal(keys, getattr(row, column), getattr(row, column + "_key"), where)


def _target_state(row: Row[Any], now: datetime) -> TargetState:
    status = TargetStatus(row.status)
    unanswered = status in (TargetStatus.QUEUED, TargetStatus.SENT, TargetStatus.NOT_NOW)
    if unanswered and row.expires_at is not None and row.expires_at <= now:
        status = TargetStatus.EXPIRED
    return TargetState(
        command_uuid=row.command_uuid,
        device_id=row.device_id,
        request_type=row.request_type,
        status=status,
        created_at=row.created_at,
        answered_at=row.answered_at,
        result=row.result,
    )
