"""Does the database answer? One cheap read, for /healthz and /readyz (polled every few
seconds by load balancers) and for `serve` before it starts.

SQLite is asked on a connection of its own, opened for the question: the server's open
connections keep reading a file that was deleted, overwritten or lost its permissions
(the open descriptor outlives all three), so they would answer for a database that the
next start could not open. PostgreSQL is asked on the pool, as requests are: a dropped
database or a stopped server fails it the same way."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs upstream
from sqlalchemy import text
from sqlalchemy.engine import make_url

from orchardist.storage.sql.database import AsyncDatabase, Database, InlineSqliteDatabase
from orchardist.storage.sql.engine import async_url, is_sqlite

PROBE_SECONDS = 3.0  # a probe that waits longer than a load balancer's own timeout helps no one
START_SECONDS = 10.0  # `serve` waits a little longer for a database that is just starting


async def database_problem(database: Database) -> str | None:
    """None when the database answers a read now; otherwise why not, in one line."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            if isinstance(database, InlineSqliteDatabase):
                path = Path(database.engine.url.database or "")
                await asyncio.to_thread(_read_sqlite, path)
            elif isinstance(database, AsyncDatabase):
                await _select_one(database)
    except TimeoutError:
        return f"no answer within {PROBE_SECONDS:g} s"
    except Exception as exc:  # any failure to read is the answer, not a crash
        return _reason(exc)
    return None


async def url_problem(url: str) -> str | None:
    """`database_problem` for a URL before anything is opened (`serve`'s start). A SQLite
    file that does not exist yet is no problem: the migrations create it."""
    try:
        async with asyncio.timeout(START_SECONDS):
            if is_sqlite(url):
                path = Path(make_url(async_url(url)).database or "")
                await asyncio.to_thread(_read_sqlite, path, missing_ok=True)
            else:
                await _postgres_select_one(url)
    except TimeoutError:
        return f"no answer within {START_SECONDS:g} s"
    except Exception as exc:  # any failure to connect or read is the answer
        return _reason(exc)
    return None


def safe_url(url: str) -> str:
    """The URL as an admin may see it in a message: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _read_sqlite(path: Path, *, missing_ok: bool = False) -> None:
    if missing_ok and not path.exists():
        return
    # mode=rw: never create an empty database in place of a missing one.
    with closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1)) as conn:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header


async def _select_one(database: AsyncDatabase) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _postgres_select_one(url: str) -> None:
    plain = make_url(async_url(url)).set(drivername="postgresql")
    conn = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _reason(exc: BaseException) -> str:
    """The driver's own error (SQLAlchemy wraps it with the statement and a link), one line."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
