"""The audit log on SQL (see `orchardist.storage.audit`): an entry and its targets in one
transaction; pages newest first by entry_id, the keyset cursor, so a later page costs what
the first does."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.engine import Connection

from orchardist.storage.audit import AuditEntry, AuditQuery, AuditRecord, Outcome, Via
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import audit_log as _log
from orchardist.storage.sql.tables import audit_targets as _targets


class SqlAuditStorage:
    database: Database

    async def add_audit_entry(self, record: AuditRecord) -> int:
        row = {
            "at": record.at,
            "actor": record.actor,
            "via": record.via.value,
            "action": record.action,
            "outcome": record.outcome.value,
            "reason": record.reason,
            "detail": dict(record.detail),
        }

        def work(conn: Connection) -> int:
            entry_id: int = conn.execute(insert(_log).returning(_log.c.entry_id), row).scalar_one()
            targets = [
                {"entry_id": entry_id, "position": position, "target": target}
                for position, target in enumerate(record.targets)
            ]
            if targets:
                conn.execute(insert(_targets), targets)
            return entry_id

        return await self.database.write(work)

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        page = _filtered(query).order_by(_log.c.entry_id.desc()).limit(query.limit)

        def work(conn: Connection) -> list[AuditEntry]:
            rows = conn.execute(page).all()
            named: dict[int, list[str]] = defaultdict(list)
            if rows:
                ids = [row.entry_id for row in rows]
                targets = (
                    select(_targets.c.entry_id, _targets.c.target)
                    .where(_targets.c.entry_id.in_(ids))
                    .order_by(_targets.c.entry_id, _targets.c.position)
                )
                for entry_id, target in conn.execute(targets):
                    named[entry_id].append(target)
            return [_entry(row, named[row.entry_id]) for row in rows]

        return await self.database.read(work)


def _filtered(query: AuditQuery) -> Select[Any]:
    chosen = select(_log)
    for column, value in (
        (_log.c.actor, query.actor),
        (_log.c.action, query.action),
        (_log.c.outcome, None if query.outcome is None else query.outcome.value),
    ):
        if value is not None:
            chosen = chosen.where(column == value)
    if query.target is not None:
        naming = select(_targets.c.entry_id).where(_targets.c.target == query.target)
        chosen = chosen.where(_log.c.entry_id.in_(naming))
    if query.since is not None:
        chosen = chosen.where(_log.c.at >= query.since)
    if query.until is not None:
        chosen = chosen.where(_log.c.at < query.until)
    if query.before is not None:
        chosen = chosen.where(_log.c.entry_id < query.before)
    return chosen


def _entry(row: Any, targets: list[str]) -> AuditEntry:
    return AuditEntry(
        at=row.at,
        actor=row.actor,
        via=Via(row.via),
        action=row.action,
        targets=tuple(targets),
        outcome=Outcome(row.outcome),
        reason=row.reason,
        detail=row.detail,
        entry_id=row.entry_id,
    )
