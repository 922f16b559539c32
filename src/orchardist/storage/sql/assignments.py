"""Assignment tables of the shape (key, kind, target), all three columns the primary key:
which devices, groups or all devices an app or a provisioning profile is assigned to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, and_, delete, select
from sqlalchemy.engine import Connection

from orchardist.storage.profiles import Assignment, TargetKind
from orchardist.storage.sql.upsert import dialect_insert


def change_assignments(
    conn: Connection,
    key: Column[Any],
    value: str,
    kind: TargetKind,
    targets: Sequence[str],
    *,
    assigned: bool,
) -> None:
    """Add (kept once if there already) or remove the assignments of `value` to targets."""
    table = key.table
    rows = [{key.name: value, "kind": kind.value, "target": t} for t in dict.fromkeys(targets)]
    if not rows:
        return
    if assigned:
        conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), rows)
        return
    for target in dict.fromkeys(targets):
        conn.execute(
            delete(table).where(
                and_(key == value, table.c.kind == kind.value, table.c.target == target)
            )
        )


def read_assignments(conn: Connection, key: Column[Any], value: str | None) -> list[Assignment]:
    """Every assignment (of `value`, if given), by key, kind, target."""
    table = key.table
    query = select(key, table.c.kind, table.c.target).order_by(key, table.c.kind, table.c.target)
    if value is not None:
        query = query.where(key == value)
    return [Assignment(row[0], TargetKind(row.kind), row.target) for row in conn.execute(query)]
