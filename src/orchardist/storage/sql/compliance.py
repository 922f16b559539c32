"""Compliance verdicts on SQL (see `orchardist.storage.compliance` for the contracts)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchardist.storage.compliance import (
    ComplianceInput,
    ComplianceStatus,
    DeviceCompliance,
    LibraryProfile,
)
from orchardist.storage.profiles import ProfileState
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.mdm import enrollment_from_row
from orchardist.storage.sql.push import BATCH
from orchardist.storage.sql.tables import (
    device_compliance,
    device_profiles,
    enrollments,
    inventory,
    inventory_profiles,
    issued_certificates,
)

_verdicts = device_compliance


class SqlComplianceStorage:
    database: Database

    async def compliance_inputs(
        self, device_ids: Sequence[str], profiles: Sequence[str] = ()
    ) -> list[ComplianceInput]:
        unique = list(dict.fromkeys(device_ids))
        found: list[ComplianceInput] = []
        for start in range(0, len(unique), BATCH):
            read = functools.partial(_inputs, unique[start : start + BATCH], list(profiles))
            found += await self.database.read(read)
        return sorted(found, key=lambda i: i.enrollment.device_id)

    async def save_compliance(self, rows: Sequence[DeviceCompliance]) -> None:
        if not rows:
            return
        values = [
            {
                "device_id": row.device_id,
                "status": row.status.value,
                "reasons": list(row.reasons),
                "rules": row.rules,
                "evaluated_at": row.evaluated_at,
                "recheck_at": row.recheck_at,
                "stale": row.stale,
            }
            for row in {row.device_id: row for row in rows}.values()
        ]

        def work(conn: Connection) -> None:
            for start in range(0, len(values), BATCH // 8):  # 7 parameters per row
                conn.execute(_upsert(conn), values[start : start + BATCH // 8])

        await self.database.write(work)

    async def get_compliance(self, device_id: str) -> DeviceCompliance | None:
        query = select(_verdicts).where(_verdicts.c.device_id == device_id)
        row = await self.database.read(lambda conn: conn.execute(query).first())
        return None if row is None else compliance_from_row(row)

    async def compliance_due(
        self, now: datetime, rules: str, *, after: str | None = None, limit: int = 500
    ) -> list[str]:
        e, v = enrollments, _verdicts
        out_of_date = or_(
            v.c.device_id.is_(None),
            v.c.rules != rules,
            v.c.recheck_at <= now,
            and_(v.c.stale.is_(True), e.c.last_seen_at > v.c.evaluated_at),
            e.c.authenticated_at > v.c.evaluated_at,
            e.c.checked_out_at > v.c.evaluated_at,
            inventory.c.updated_at > v.c.evaluated_at,
        )
        query = (
            select(e.c.device_id)
            .select_from(
                e.outerjoin(v, v.c.device_id == e.c.device_id).outerjoin(
                    inventory, inventory.c.device_id == e.c.device_id
                )
            )
            .where(out_of_date, *([] if after is None else [e.c.device_id > after]))
            .order_by(e.c.device_id)
            .limit(limit)
        )
        rows = await self.database.read(lambda conn: list(conn.execute(query).scalars()))
        return [str(row) for row in rows]

    async def compliance_counts(self) -> dict[str, int]:
        status = func.coalesce(_verdicts.c.status, ComplianceStatus.UNKNOWN.value)
        query = (
            select(status, func.count())
            .select_from(
                enrollments.outerjoin(_verdicts, _verdicts.c.device_id == enrollments.c.device_id)
            )
            .group_by(status)
        )
        rows = await self.database.read(lambda conn: list(conn.execute(query).all()))
        return {**dict.fromkeys(ComplianceStatus, 0), **{ComplianceStatus(s): n for s, n in rows}}


def compliance_from_row(row: Row[Any], prefix: str = "") -> DeviceCompliance:
    """The verdict in `row`, whose columns may carry a prefix (a join's labels)."""
    fields = row._mapping
    return DeviceCompliance(
        device_id=fields[f"{prefix}device_id"],
        status=ComplianceStatus(fields[f"{prefix}status"]),
        reasons=tuple(fields[f"{prefix}reasons"]),
        evaluated_at=fields[f"{prefix}evaluated_at"],
        rules=fields[f"{prefix}rules"],
        recheck_at=fields[f"{prefix}recheck_at"],
        stale=fields[f"{prefix}stale"],
    )


def _inputs(device_ids: list[str], profiles: list[str], conn: Connection) -> list[ComplianceInput]:
    rows = conn.execute(select(enrollments).where(enrollments.c.device_id.in_(device_ids))).all()
    if not rows:
        return []
    security = dict(
        conn.execute(
            select(inventory.c.device_id, inventory.c.security).where(
                inventory.c.device_id.in_(device_ids)
            )
        ).all()
    )
    listed: dict[str, set[str]] = {}
    library: dict[str, list[LibraryProfile]] = {}
    if profiles:
        for device_id, identifier in conn.execute(
            select(inventory_profiles.c.device_id, inventory_profiles.c.identifier).where(
                inventory_profiles.c.device_id.in_(device_ids),
                inventory_profiles.c.identifier.in_(profiles),
            )
        ):
            listed.setdefault(device_id, set()).add(identifier)
        dp = device_profiles.c
        for row in conn.execute(
            select(dp.device_id, dp.identifier, dp.state, dp.installed_version).where(
                dp.device_id.in_(device_ids), dp.identifier.in_(profiles)
            )
        ):
            library.setdefault(row.device_id, []).append(
                LibraryProfile(row.identifier, ProfileState(row.state), row.installed_version)
            )
    certs = issued_certificates.c
    expiries = dict(
        conn.execute(
            select(certs.sha256, certs.not_after).where(
                certs.sha256.in_({row.identity_sha256 for row in rows})
            )
        ).all()
    )
    return [
        ComplianceInput(
            enrollment=enrollment_from_row(row),
            has_inventory=row.device_id in security,
            security=security.get(row.device_id) or {},
            listed_profiles=frozenset(listed.get(row.device_id, ())),
            library_profiles=tuple(library.get(row.device_id, ())),
            identity_not_after=expiries.get(row.identity_sha256),
        )
        for row in rows
    ]


def _upsert(conn: Connection) -> Any:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(_verdicts)
    changed = {c.name: statement.excluded[c.name] for c in _verdicts.c if c.name != "device_id"}
    return statement.on_conflict_do_update(index_elements=["device_id"], set_=changed)
