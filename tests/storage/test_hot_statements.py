"""`fetch_row`, the hot path's one statement, is all its connection runs: no statement of
the pool's after it (asyncpg's pool resets a session it takes back with a round trip of
four statements unless told what to do instead; that cost PostgreSQL more CPU than a
check-in's own statement)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from orchardist.storage.sql.database import AsyncDatabase, InlineSqliteDatabase
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
COUNT = "SELECT count(*) FROM scep_challenges WHERE challenge_sha256 = $1"


async def test_a_hot_statement_is_the_last_its_connection_ran(storage: SqlStorage) -> None:
    database = storage.database
    assert await database.fetch_row(COUNT, ("a" * 64,)) == (0,)  # the connection is made
    if isinstance(database, AsyncDatabase):
        assert await database.fetch_row(COUNT, ("b" * 64,)) == (0,)
        # A connection's last statement, as PostgreSQL reports it: the pool's reset would
        # show there ("SELECT pg_advisory_unlock_all(); CLOSE ALL; …").
        last = text(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND query LIKE '%scep_challenges%'"
        )
        seen = await database.read(lambda conn: conn.execute(last).scalars().all())
        assert seen == [COUNT]
        return
    assert isinstance(database, InlineSqliteDatabase)
    connection = database._raw
    assert isinstance(connection, sqlite3.Connection)
    ran: list[str] = []
    connection.set_trace_callback(ran.append)
    try:
        assert await database.fetch_row(COUNT, ("b" * 64,)) == (0,)
    finally:
        connection.set_trace_callback(None)
    assert ran == [COUNT.replace("$1", f"'{'b' * 64}'")]  # as SQLite expands it
