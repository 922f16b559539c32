"""`fetch_row`, the hot path's one statement, is all its connection runs: no statement of
the pool's after it (asyncpg's pool resets a session it takes back with a round trip of
four statements unless told what to do instead; that cost PostgreSQL more CPU than a
check-in's own statement)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import text

from orchardist.storage.sql.database import HOT_CONNECTIONS, AsyncDatabase, InlineSqliteDatabase
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


async def test_first_statements_at_once_share_one_pool(storage: SqlStorage) -> None:
    """Requests arriving together at a fresh process each ask for the hot pool; they share
    the one made first instead of each leaving a pool of its own open."""
    database = storage.database
    answers = await asyncio.gather(*(database.fetch_row(COUNT, (f"{n:064x}",)) for n in range(8)))
    assert answers == [(0,)] * 8
    if isinstance(database, AsyncDatabase):
        # The connections that ran it (a pool closed unused, or the storage's own pool's,
        # would not count).
        others = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            " AND query LIKE '%scep_challenges%'"
        )
        opened = await database.read(lambda conn: conn.execute(others).scalar_one())
        assert 1 <= opened <= HOT_CONNECTIONS
