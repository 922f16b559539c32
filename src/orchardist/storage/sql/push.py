"""The pusher's job table on SQL (see `orchardist.storage.PushStore` and
`orchardist.push.pusher`).

Which jobs a claim takes, in which order, and why two pushers never hold the same job:
`orchardist.storage.sql.push_claims`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, String, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchardist.storage import PushDone, PushTarget, TargetStatus
from orchardist.storage.sql.among import array
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.push_claims import IDLE_ROUNDS, claim_due, pushable
from orchardist.storage.sql.push_claims import UNANSWERED as UNANSWERED  # others import it here
from orchardist.storage.sql.tables import (
    FIRST_PUSH,
    REPUSH,
    command_targets,
    enrollments,
    push_jobs,
)

_targets = command_targets
# Statement parameters per batch: well under PostgreSQL's 32,767 and SQLite's limits.
BATCH = 2000


def schedule_pushes(
    conn: Connection, device_ids: Sequence[str], now: datetime, *, forced: bool = False
) -> None:
    """Upsert a job due now for each device (in the caller's transaction). A job already
    claimed is released: the push in flight may have gone out before the new command.
    `forced`: push even when nothing is pending (a push asked for by hand)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(push_jobs)
    statement = statement.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "due_at": statement.excluded.due_at,
            "attempts": 0,
            "claim": None,
            "claimed_until": None,
            "forced": statement.excluded.forced,
        },
    )
    for start in range(0, len(device_ids), BATCH):
        rows = [
            {"device_id": device_id, "due_at": now, "attempts": 0, "forced": forced}
            for device_id in device_ids[start : start + BATCH]
        ]
        conn.execute(statement, rows)


def _finish_on_postgresql(
    conn: Connection, claim: str, later: Sequence[PushDone], accepted: Sequence[PushDone]
) -> None:
    """A batch's outcomes in two statements, each joining its rows from arrays (UPDATE …
    FROM unnest(…)): a batch of 1,000 as 2,000 single-row UPDATEs cost PostgreSQL and the
    driver a statement execution each, the larger part of a push's database CPU."""
    if later:
        rows = (
            func.unnest(
                array([d.device_id for d in later], String()),
                array([d.next_due for d in later], DateTime(timezone=True)),
                array([d.attempts for d in later], Integer()),
            )
            .table_valued("device_id", "due_at", "attempts")
            .render_derived()
        )
        conn.execute(
            update(push_jobs)
            .where(push_jobs.c.device_id == rows.c.device_id, push_jobs.c.claim == claim)
            .values(
                due_at=rows.c.due_at,
                attempts=rows.c.attempts,
                claim=None,
                claimed_until=None,
                forced=False,
            )
        )
    if accepted:
        rows = (
            func.unnest(
                array([d.device_id for d in accepted], String()),
                array([d.accepted_at for d in accepted], DateTime(timezone=True)),
            )
            .table_valued("device_id", "pushed_at")
            .render_derived()
        )
        conn.execute(
            update(enrollments)
            .where(enrollments.c.device_id == rows.c.device_id)
            .values(pushed_at=rows.c.pushed_at)
        )


def _finish_row_by_row(
    conn: Connection, claim: str, later: Sequence[PushDone], accepted: Sequence[PushDone]
) -> None:
    """SQLite has no arrays: one UPDATE per row, in one executemany each."""
    ours = and_(push_jobs.c.device_id == bindparam("d"), push_jobs.c.claim == claim)
    if later:
        reschedule = (
            update(push_jobs)
            .where(ours)
            .values(
                due_at=bindparam("due"),
                attempts=bindparam("n"),
                claim=None,
                claimed_until=None,
                forced=False,
            )
        )
        conn.execute(
            reschedule, [{"d": d.device_id, "due": d.next_due, "n": d.attempts} for d in later]
        )
    if accepted:
        pushed = (
            update(enrollments)
            .where(enrollments.c.device_id == bindparam("d"))
            .values(pushed_at=bindparam("at"))
        )
        conn.execute(pushed, [{"d": d.device_id, "at": d.accepted_at} for d in accepted])


class SqlPushStorage:
    database: Database

    async def request_push(self, device_ids: Sequence[str], now: datetime) -> None:
        unique = list(dict.fromkeys(device_ids))
        await self.database.write(lambda conn: schedule_pushes(conn, unique, now, forced=True))

    async def claim_pushes(self, now: datetime, lease: timedelta, limit: int) -> list[PushTarget]:
        claim = uuid.uuid4().hex

        def work(conn: Connection) -> list[PushTarget]:
            # A batch whose devices all turn out idle is removed; look again, a few times,
            # so that a run of answered devices does not end the caller's drain early.
            for _ in range(IDLE_ROUNDS):
                rows = claim_due(conn, claim, now, lease, limit)
                if not rows:
                    return []
                claimed = pushable(conn, rows, claim, now)
                if claimed:
                    return claimed
            return []

        return await self.database.write(work)

    async def finish_pushes(self, claim: str, done: Sequence[PushDone], now: datetime) -> None:
        later = [d for d in done if d.next_due is not None]
        finished = [d.device_id for d in done if d.next_due is None]
        accepted = [d for d in done if d.accepted_at is not None]
        invalid = [d.device_id for d in done if d.token_invalid]

        def work(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                _finish_on_postgresql(conn, claim, later, accepted)
            else:
                _finish_row_by_row(conn, claim, later, accepted)
            for start in range(0, max(len(finished), len(invalid)), BATCH):
                end = start + BATCH
                if finished[start:end]:
                    conn.execute(
                        delete(push_jobs).where(
                            and_(
                                push_jobs.c.device_id.in_(finished[start:end]),
                                push_jobs.c.claim == claim,
                            )
                        )
                    )
                if invalid[start:end]:
                    conn.execute(
                        update(enrollments)
                        .where(enrollments.c.device_id.in_(invalid[start:end]))
                        .values(token_invalid_at=now)
                    )

        await self.database.write(work)

    async def push_backlog(self, now: datetime) -> int:
        # A count from each kind's partial index: no index holds every job's due_at.
        due = push_jobs.c.due_at <= now
        first = select(func.count()).where(FIRST_PUSH, due).scalar_subquery()
        later = select(func.count()).where(REPUSH, due).scalar_subquery()
        query = select(first + later)
        count = await self.database.read(lambda conn: conn.execute(query).scalar_one())
        return int(count)

    async def command_counts(self, command_uuid: str, now: datetime) -> dict[str, int]:
        found = await self.database.read(lambda conn: tally(conn, [command_uuid], now))
        return found.get(command_uuid, dict.fromkeys(COUNTS, 0))


def tally(
    conn: Connection, command_uuids: Sequence[str], now: datetime
) -> dict[str, dict[str, int]]:
    """Per-status target counts of each command (one grouped query), queued split into
    queued / pushed; commands without targets are left out."""
    unanswered = _targets.c.status.in_(UNANSWERED)
    expired = and_(unanswered, _targets.c.expires_at.is_not(None), _targets.c.expires_at <= now)
    pushed = and_(
        _targets.c.status == TargetStatus.QUEUED.value,
        enrollments.c.pushed_at.is_not(None),
        enrollments.c.pushed_at >= _targets.c.created_at,
    )
    uuid = _targets.c.command_uuid
    query = (
        select(
            uuid, _targets.c.status, expired.label("expired"), pushed.label("pushed"), func.count()
        )
        .select_from(
            _targets.outerjoin(enrollments, enrollments.c.device_id == _targets.c.device_id)
        )
        .where(uuid.in_(command_uuids))
        .group_by(uuid, _targets.c.status, expired, pushed)
    )
    tallies: dict[str, dict[str, int]] = {}
    for command_uuid, status, is_expired, is_pushed, count in conn.execute(query).all():
        if is_expired:
            key = "expired"
        elif status == TargetStatus.QUEUED.value:
            key = "pushed" if is_pushed else "queued"
        else:
            key = _COUNT_OF.get(status, status)
        counts = tallies.setdefault(command_uuid, dict.fromkeys(COUNTS, 0))
        counts[key] = counts.get(key, 0) + count
    return tallies


COUNTS = ("queued", "pushed", "sent", "acknowledged", "error", "not_now", "expired", "cancelled")
_COUNT_OF = {TargetStatus.COMMAND_FORMAT_ERROR.value: "error"}
