"""Which push jobs a pusher claims next, and how it claims them (see
`orchardist.storage.PushStore.claim_pushes`).

Order: first pushes before re-pushes. A fan-out to 100,000 devices can outlast the first
step of the re-push schedule (1 minute); ordered by due time alone, the devices pushed
first would come due again and compete with the devices still waiting for their first
push. So a job never pushed since its command was queued (attempts = 0, a failed push
included) is claimed before any re-push, oldest due first; re-pushes are claimed, oldest
due first, only once no first push is due or in flight: every device gets its first push
before any gets a second. Each kind has a partial index on due_at (ix_push_jobs_first_due,
ix_push_jobs_repush_due); the queries spell the index's condition as the same literal
(FIRST_PUSH, REPUSH), since a bound parameter would not prove it to either planner.

How: each batch is one conditional UPDATE … RETURNING of the rows an ordered, limited
sub-select picks. On PostgreSQL the sub-select takes `FOR UPDATE SKIP LOCKED`, so pushers
in several processes claim different rows without waiting on each other; and a row whose
lease another pusher holds is skipped by the WHERE clause itself. On SQLite the UPDATE
takes the database's write lock for its whole statement, so two processes take turns.
A claim changes nothing else: `attempts` and `due_at` move only when the push is reported
(finish_pushes), so a job whose lease ends before it was pushed is due again as the same
first push (or re-push) it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Row, TextClause, and_, any_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from orchardist.storage import PushTarget, TargetStatus
from orchardist.storage.sql.among import among
from orchardist.storage.sql.tables import (
    FIRST_PUSH,
    REPUSH,
    command_targets,
    enrollments,
    push_jobs,
)

UNANSWERED = (TargetStatus.QUEUED.value, TargetStatus.SENT.value, TargetStatus.NOT_NOW.value)
# Batches of idle jobs (answered, unenrolled, no token) removed before giving up on one call.
IDLE_ROUNDS = 5

_jobs = push_jobs.c


def claim_due(
    conn: Connection, claim: str, now: datetime, lease: timedelta, limit: int
) -> Sequence[Row[tuple[str, int, bool]]]:
    """Claim up to `limit` due jobs for `lease` under `claim`: first pushes if any are due,
    else re-pushes, unless a first push is still in flight (then nothing)."""
    rows = _claim(conn, FIRST_PUSH, claim, now, lease, limit)
    if rows or _first_push_in_flight(conn, now):
        return rows
    return _claim(conn, REPUSH, claim, now, lease, limit)


def _claim(
    conn: Connection,
    kind: TextClause,
    claim: str,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> Sequence[Row[tuple[str, int, bool]]]:
    due = (
        select(_jobs.device_id)
        .where(
            kind,
            _jobs.due_at <= now,
            or_(_jobs.claimed_until.is_(None), _jobs.claimed_until <= now),
        )
        .order_by(_jobs.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if conn.dialect.name == "postgresql":
        # = ANY(ARRAY(…)): the planner looks the picked rows up by primary key; with IN
        # (…) it hashed them and scanned the whole table, each claim.
        picked = _jobs.device_id == any_(func.array(due.scalar_subquery()))
    else:
        picked = _jobs.device_id.in_(due.scalar_subquery())
    statement = (
        update(push_jobs)
        .where(picked)
        .values(claim=claim, claimed_until=now + lease)
        .returning(_jobs.device_id, _jobs.attempts, _jobs.forced)
    )
    return conn.execute(statement).all()


def _first_push_in_flight(conn: Connection, now: datetime) -> bool:
    """A due first push the claim above did not get is one another pusher holds (or is
    claiming right now): re-pushes wait until it is reported."""
    # Ordered, so that PostgreSQL walks ix_push_jobs_first_due rather than scan the table
    # for a row that is usually not there.
    query = (
        select(_jobs.device_id)
        .where(FIRST_PUSH, _jobs.due_at <= now)
        .order_by(_jobs.due_at)
        .limit(1)
    )
    return conn.execute(query).first() is not None


def pushable(
    conn: Connection, rows: Sequence[Row[tuple[str, int, bool]]], claim: str, now: datetime
) -> list[PushTarget]:
    """The claimed jobs worth a push: an enrolled device with a usable token and something
    pending (or a push asked for by hand). The others are removed: nothing to push."""
    attempts = {row.device_id: row.attempts for row in rows}
    forced = {row.device_id for row in rows if row.forced}
    ids = list(attempts)
    postgres = conn.dialect.name == "postgresql"
    devices = conn.execute(
        select(enrollments.c.device_id, enrollments.c.token, enrollments.c.push_magic).where(
            and_(
                among(enrollments.c.device_id, ids, postgres),
                enrollments.c.enrolled.is_(True),
                enrollments.c.token.is_not(None),
                enrollments.c.push_magic.is_not(None),
                enrollments.c.token_invalid_at.is_(None),
            )
        )
    ).all()
    reachable = [row.device_id for row in devices]
    waiting = forced | set(
        conn.execute(
            select(command_targets.c.device_id)
            .distinct()
            .where(
                and_(
                    among(command_targets.c.device_id, reachable, postgres),
                    command_targets.c.status.in_(UNANSWERED),
                    or_(
                        command_targets.c.expires_at.is_(None),
                        command_targets.c.expires_at > now,
                    ),
                )
            )
        ).scalars()
    )
    idle = [device_id for device_id in ids if device_id not in waiting]
    if idle:
        conn.execute(
            delete(push_jobs).where(among(_jobs.device_id, idle, postgres), _jobs.claim == claim)
        )
    return [
        PushTarget(row.device_id, row.token, row.push_magic, attempts[row.device_id], claim)
        for row in devices
        if row.device_id in waiting
    ]
