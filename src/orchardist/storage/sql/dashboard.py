"""DashboardStore on SQL: the dashboard's figures in five grouped counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.engine import Connection

from orchardist.os_versions import sort_key
from orchardist.storage import TargetStatus
from orchardist.storage.compliance import ComplianceStatus
from orchardist.storage.dashboard import DashboardFigures
from orchardist.storage.profiles import ProfileState
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.push import UNANSWERED
from orchardist.storage.sql.tables import (
    command_targets,
    device_compliance,
    device_profiles,
    enrollments,
)

_e = enrollments
_t = command_targets
_verdicts = device_compliance
FAILED = (TargetStatus.ERROR.value, TargetStatus.COMMAND_FORMAT_ERROR.value)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class SqlDashboardStorage:
    database: Database

    async def dashboard_figures(self, now: datetime) -> DashboardFigures:
        day, week = now - timedelta(hours=24), now - timedelta(days=7)
        devices = select(
            func.count(),
            _count_if(_e.c.last_seen_at >= day),
            _count_if(_e.c.last_seen_at >= week),
        ).where(_e.c.enrolled.is_(True))
        versions = (
            select(_e.c.os_version, func.count())
            .where(_e.c.enrolled.is_(True))
            .group_by(_e.c.os_version)
        )
        non_compliant = (
            select(func.count())
            .select_from(
                _e.join(device_compliance, device_compliance.c.device_id == _e.c.device_id)
            )
            .where(device_compliance.c.status == ComplianceStatus.NON_COMPLIANT.value)
        )
        # Both use ix_command_targets_status (status, expires_at): pending and failed
        # targets only, however many acknowledged ones pile up.
        pending = select(func.count()).where(
            _t.c.status.in_(UNANSWERED), or_(_t.c.expires_at.is_(None), _t.c.expires_at > now)
        )
        failed = select(func.count()).where(and_(_t.c.status.in_(FAILED), _t.c.answered_at >= day))
        refused = select(func.count()).where(device_profiles.c.state == ProfileState.FAILED.value)

        def work(conn: Connection) -> DashboardFigures:
            enrolled, seen_24h, seen_7d = conn.execute(devices).one()
            by_version = {str(v or "unknown"): int(n) for v, n in conn.execute(versions).all()}
            return DashboardFigures(
                enrolled=int(enrolled),
                seen_24h=int(seen_24h),
                seen_7d=int(seen_7d),
                stale=int(enrolled) - int(seen_7d),
                non_compliant=int(conn.execute(non_compliant).scalar_one()),
                commands_pending=int(conn.execute(pending).scalar_one()),
                commands_failed_24h=int(conn.execute(failed).scalar_one()),
                profile_installs_failed=int(conn.execute(refused).scalar_one()),
                os_versions=dict(sorted(by_version.items(), key=_version_order)),
            )

        return await self.database.read(work)


def _version_order(item: tuple[str, int]) -> tuple[str, str]:
    """Numerically (17.10 after 17.9), unreadable versions last, by their text."""
    key = sort_key(item[0])
    return (key, "") if key is not None else ("~", item[0])
