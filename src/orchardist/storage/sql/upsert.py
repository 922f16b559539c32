"""INSERT … ON CONFLICT for both backends: each dialect has it, under its own import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The connection's dialect's INSERT, which has `on_conflict_do_nothing|update`."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(
    conn: Connection,
    table: Table,
    sample: Mapping[str, Any],
    where: ColumnElement[bool] | None = None,
) -> Any:
    """An INSERT of rows shaped like `sample` that, for a row whose primary key exists,
    updates every other column of `sample` instead; with `where`, only a row that meets it
    (the others are left as they are, and not counted in the rowcount)."""
    statement = dialect_insert(conn, table)
    key = [column.name for column in table.primary_key]
    changed = {name: statement.excluded[name] for name in sample if name not in key}
    return statement.on_conflict_do_update(index_elements=key, set_=changed, where=where)
