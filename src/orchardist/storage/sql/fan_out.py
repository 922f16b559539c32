"""Queueing one command for every enrolled device or a static group's enrolled members on
SQL (`CommandStore.enqueue_to`): the targets and their push jobs are each one
INSERT … SELECT, so the database resolves the devices and nothing per device passes
through Python. A million targets cost two statements, not a million ids and 500 batches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, Select, String, and_, insert, literal, not_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchardist.keys.master import MasterKeys
from orchardist.storage import NewCommand, TargetStatus
from orchardist.storage.scopes import AllEnrolled, InGroup
from orchardist.storage.sql.sealing import SEALED_COMMANDS, place
from orchardist.storage.sql.tables import (
    command_targets,
    commands,
    device_groups,
    enrollments,
    push_jobs,
)
from orchardist.storage.sql.types import UtcDateTime

_TARGET_COLUMNS = ("command_uuid", "device_id", "status", "priority", "created_at", "expires_at")


def insert_command_row(
    conn: Connection, keys: MasterKeys, command: NewCommand, now: datetime
) -> None:
    """The command itself, its body sealed when it carries a secret (SEALED_COMMANDS)."""
    body, body_key = command.body, None
    if command.request_type in SEALED_COMMANDS:
        body, body_key = keys.seal(command.body, place("commands", "body", command.command_uuid))
    row = {
        "command_uuid": command.command_uuid,
        "request_type": command.request_type,
        "body": body,
        "body_key": body_key,
        "priority": command.priority,
        "created_at": now,
        "expires_at": command.expires_at,
    }
    conn.execute(insert(commands), row)


def queue_for_scope(
    conn: Connection,
    keys: MasterKeys,
    command: NewCommand,
    scope: AllEnrolled | InGroup,
    now: datetime,
) -> int:
    """Queue `command` for the scope's enrolled devices and make a push due for each, in
    the caller's transaction; how many were queued. LookupError for a group without
    members (a group exists while it has some), before anything is written."""
    if isinstance(scope, InGroup) and not _group_exists(conn, scope.name):
        raise LookupError(f"no group {scope.name!r}")
    insert_command_row(conn, keys, command, now)
    columns = [command_targets.c[name] for name in _TARGET_COLUMNS]
    queued = conn.execute(
        insert(command_targets).from_select(columns, _targets_of(scope, command, now))
    ).rowcount
    _schedule_pushes_for(conn, command.command_uuid, now)
    return int(queued)


def _group_exists(conn: Connection, name: str) -> bool:
    found = select(device_groups.c.name).where(device_groups.c.name == name).limit(1)
    return conn.execute(found).first() is not None


def _targets_of(
    scope: AllEnrolled | InGroup, command: NewCommand, now: datetime
) -> Select[tuple[object, ...]]:
    """command_targets rows, one per enrolled device of the scope."""
    query = select(
        literal(command.command_uuid, String),
        enrollments.c.device_id,
        literal(TargetStatus.QUEUED.value, String),
        literal(command.priority, Integer),
        literal(now, UtcDateTime()),
        literal(command.expires_at, UtcDateTime()),
    ).where(enrollments.c.enrolled.is_(True))
    if isinstance(scope, InGroup):
        query = query.join_from(
            device_groups, enrollments, device_groups.c.device_id == enrollments.c.device_id
        ).where(device_groups.c.name == scope.name)
        return query.order_by(device_groups.c.device_id)
    # In UDID order, so that each index keyed by device (the queue's, the push jobs') is
    # filled front to back, not at random places: UDIDs are random, and in enrollment
    # order the inserts cost 80% more CPU (300,000 on PostgreSQL: 7.9 s against 4.4 s).
    return query.order_by(enrollments.c.device_id)


def _schedule_pushes_for(conn: Connection, command_uuid: str, now: datetime) -> None:
    """A push job due now for each of the command's targets: `push.schedule_pushes`'s
    upsert (one job per device however many commands wait; a claimed job is released, as
    the push in flight may have gone out before this command), fed by a SELECT."""
    job = push_jobs.c
    due = (
        select(
            command_targets.c.device_id,
            literal(now, UtcDateTime()),
            literal(0, Integer),
            literal(False, Boolean),
        )
        .where(command_targets.c.command_uuid == command_uuid)
        .order_by(command_targets.c.device_id)
    )
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(push_jobs).from_select(
        ["device_id", "due_at", "attempts", "forced"], due
    )
    new = statement.excluded
    released = {"claim": None, "claimed_until": None}
    # A job already due, unclaimed and not backing off is what the update would make it
    # (a forced one is pushed either way): kept, a second command to the whole fleet
    # rewrites no job that waits anyway.
    waiting = and_(job.due_at <= now, job.claim.is_(None), job.attempts == 0)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["device_id"],
            set_={"due_at": new.due_at, "attempts": 0, "forced": new.forced, **released},
            where=not_(waiting),
        )
    )
