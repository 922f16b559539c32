"""StatsStore on SQL: counts for `/metrics`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.pool import QueuePool

from orchardist.storage.sql.database import Database
from orchardist.storage.sql.push import UNANSWERED as PENDING
from orchardist.storage.sql.tables import command_targets
from orchardist.storage.stats import PoolUsage

_targets = command_targets


class SqlStatsStorage:
    database: Database

    async def queue_depth(self, now: datetime) -> dict[str, int]:
        # ix_command_targets_status (status, expires_at) answers this from the index alone,
        # reading only the pending entries however many answered targets pile up.
        query = (
            select(_targets.c.status, func.count())
            .where(
                _targets.c.status.in_(PENDING),
                or_(_targets.c.expires_at.is_(None), _targets.c.expires_at > now),
            )
            .group_by(_targets.c.status)
        )
        rows = await self.database.read(lambda conn: list(conn.execute(query).all()))
        return {**dict.fromkeys(PENDING, 0), **dict(rows)}

    def pool_usage(self) -> PoolUsage:
        pool = self.database.pool()
        if not isinstance(pool, QueuePool):  # our engines always make one; others say nothing
            return PoolUsage(checked_out=0, size=0)
        return PoolUsage(checked_out=pool.checkedout(), size=pool.size())
