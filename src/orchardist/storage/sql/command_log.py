"""CommandLogStore on SQL: recent commands with their counts, and cancelling one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from orchardist.storage import TargetStatus
from orchardist.storage.command_log import CommandSummary
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.push import COUNTS, UNANSWERED, tally
from orchardist.storage.sql.tables import command_targets, commands

_t = command_targets


class SqlCommandLog:
    database: Database

    async def recent_commands(
        self, now: datetime, *, limit: int = 50, before: tuple[datetime, str] | None = None
    ) -> list[CommandSummary]:
        newest = commands.c.created_at.desc(), commands.c.command_uuid.desc()
        columns = (commands.c.command_uuid, commands.c.request_type, commands.c.created_at)
        query = select(*columns, commands.c.expires_at).order_by(*newest).limit(limit)
        if before is not None:
            query = query.where(tuple_(commands.c.created_at, commands.c.command_uuid) < before)

        def work(conn: Connection) -> list[CommandSummary]:
            rows = conn.execute(query).all()
            counts = tally(conn, [row.command_uuid for row in rows], now)
            none = dict.fromkeys(COUNTS, 0)
            return [CommandSummary(*row, counts.get(row.command_uuid, none)) for row in rows]

        return await self.database.read(work)

    async def cancel_command(self, command_uuid: str, now: datetime) -> int:
        statement = (
            update(_t)
            .where(
                and_(
                    _t.c.command_uuid == command_uuid,
                    _t.c.status.in_(UNANSWERED),
                    or_(_t.c.expires_at.is_(None), _t.c.expires_at > now),
                )
            )
            .values(status=TargetStatus.CANCELLED.value, answered_at=now)
        )
        return await self.database.write(lambda conn: int(conn.execute(statement).rowcount))
