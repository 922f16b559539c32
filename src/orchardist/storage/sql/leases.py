"""LeaseStore and CleanupStore on SQL (see orchardist.storage.leases).

A lease is taken by one conditional UPDATE (or, the first time, one INSERT … ON CONFLICT
DO NOTHING): on PostgreSQL a concurrent UPDATE of the same row waits for the other's
commit and re-checks its WHERE against the row as committed, and SQLite runs one writer at
a time, so of several processes asking at once exactly one sees its row changed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Row, Table, and_, delete, or_, select, update
from sqlalchemy.engine import Connection

from orchardist.storage.leases import Lease
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import (
    console_sessions,
    enrollment_tokens,
    invitations,
    leases,
    ota_sessions,
    scep_challenges,
)
from orchardist.storage.sql.upsert import dialect_insert

_l = leases.c


def _lease(row: Row[tuple[object, ...]]) -> Lease:
    return Lease(row.name, row.holder, row.expires_at, row.done_at)


def _stale(kind: str, before: datetime) -> tuple[Table, ColumnElement[bool]]:
    """The table of `kind` and which of its rows were dead before `before`."""
    if kind == "console_sessions":
        return console_sessions, console_sessions.c.expires_at < before
    if kind == "ota_sessions":  # enrollment and app catalog sign-ins
        # A completed enrollment's session says who enrolled the device, with which
        # groups (the device list's enrolled_by, directory-group profile rules): kept.
        c = ota_sessions.c
        return ota_sessions, and_(c.expires_at < before, c.phase != "enrolled")
    if kind in ("scep_challenges", "enrollment_tokens"):
        table = scep_challenges if kind == "scep_challenges" else enrollment_tokens
        return table, or_(table.c.used_at < before, table.c.expires_at < before)
    if kind == "invitations":
        return invitations, invitations.c.expires_at < before
    raise ValueError(f"no clean-up of {kind!r}")


class SqlLeaseStorage:
    database: Database

    async def take_lease(
        self, name: str, holder: str, now: datetime, until: datetime, *, done_before: datetime
    ) -> Lease | None:
        free = or_(_l.holder == holder, _l.holder.is_(None), _l.expires_at <= now)
        due = or_(_l.done_at.is_(None), _l.done_at <= done_before)
        take = update(leases).where(_l.name == name, free, due)

        def work(conn: Connection) -> Lease | None:
            if not conn.execute(take.values(holder=holder, expires_at=until)).rowcount:
                first = dialect_insert(conn, leases).values(
                    name=name, holder=holder, expires_at=until, done_at=None
                )
                if not conn.execute(first.on_conflict_do_nothing()).rowcount:
                    return None  # held by another, or not due
            return _lease(conn.execute(select(leases).where(_l.name == name)).one())

        return await self.database.write(work)

    async def renew_lease(self, name: str, holder: str, until: datetime) -> bool:
        change = update(leases).where(_l.name == name, _l.holder == holder)
        renewed = await self.database.write(
            lambda conn: conn.execute(change.values(expires_at=until)).rowcount
        )
        return bool(renewed)

    async def release_lease(self, name: str, holder: str, now: datetime, *, done: bool) -> None:
        values = {"holder": None, "expires_at": now, **({"done_at": now} if done else {})}
        change = update(leases).where(_l.name == name, _l.holder == holder).values(values)
        await self.database.write(lambda conn: conn.execute(change))

    # -- CleanupStore

    async def purge_stale(self, kind: str, before: datetime, limit: int) -> int:
        table, stale = _stale(kind, before)
        key = next(iter(table.primary_key))
        # A bounded batch: DELETE … LIMIT is neither SQLite's default build nor PostgreSQL.
        batch = select(key).where(stale).limit(limit).scalar_subquery()
        change = delete(table).where(key.in_(batch))
        deleted: int = await self.database.write(lambda conn: conn.execute(change).rowcount)
        return deleted
