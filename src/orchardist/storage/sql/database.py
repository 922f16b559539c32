"""How statements reach each backend: a `Database` runs a plain function over a SQLAlchemy
`Connection` inside one transaction, so every query is written once, synchronously, and
runs on both backends.

- PostgreSQL: the asyncpg engine's synchronous face, the whole transaction (checkout,
  BEGIN, the work, COMMIT, return to the pool) in one greenlet (`greenlet_spawn`, what
  `AsyncConnection.run_sync` uses). Going through `AsyncConnection` spawned one for each of
  those steps: ~0.35 ms more of the app's CPU a write and ~0.15 ms a read, measured.
- SQLite: the standard library driver, called directly on the event loop thread. aiosqlite
  hands each call to a worker thread and back, which measured ~1.3 ms of CPU per
  single-statement transaction here against ~0.15 ms inline; SQLite does its work in
  microseconds in-process, so the thread hop was the cost. Running inline also makes each
  transaction atomic with respect to other coroutines (`work` cannot await), which is the
  single-writer discipline SQLite wants.

`fetch_row` is the hot path's way around all of that: one statement in plain SQL on the
driver itself (asyncpg with its prepared-statement cache; a reading sqlite3 connection of
its own), for the one query every device check-in runs. SQLAlchemy's statement building,
caching and result wrapping cost more than the query.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs upstream
import sqlalchemy
from sqlalchemy import DateTime, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from orchardist import bulk_threads
from orchardist.storage.sql.engine import (
    SQLITE_PRAGMAS,
    async_url,
    create_engine,
    is_sqlite,
    sqlite_pragmas,
)
from orchardist.storage.sql.types import FittedString

T = TypeVar("T")


class Database(Protocol):
    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction that commits when it returns, rolls back if it raises."""

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a connection for reading."""

    async def write_beside(self, work: Callable[[Connection], T]) -> T:
        """`write` for a large transaction, kept off the event loop: on SQLite in a worker
        thread on a connection of its own (the driver lets other threads run meanwhile;
        reads go on, another write waits for SQLite's lock), on PostgreSQL as `write`."""

    async def write_sql(self, work: Callable[[DriverSql], T]) -> T:
        """`write` for a transaction of plain SQL only (see DriverSql): on SQLite, on the
        driver's own connection, without SQLAlchemy's transaction and pool machinery."""

    async def fetch_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """One row of one plain-SQL statement run on its own (placeholders $1, $2…; datetime
        parameters aware UTC), or None: the hot path's reads, and on PostgreSQL one
        self-contained statement (its own implicit transaction; SQLite's connection here
        only reads). Values come as the driver gives them: datetime columns through
        `utc_datetime`."""

    async def close(self) -> None:
        """Release every connection."""

    def pool(self) -> Pool:
        """The connection pool, for its usage figures."""


HOT_CONNECTIONS = 4  # per process; each statement holds one for a fraction of a millisecond


class AsyncDatabase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._hot: asyncpg.Pool | None = None
        self._hot_loop: asyncio.AbstractEventLoop | None = None
        # Turns at the hot pool's connections, first come first served. asyncpg's pool
        # queues its waiters in an asyncio.Queue, where a coroutine arriving as a connection
        # comes back takes it before the waiter woken for it, which then queues again at
        # the back: with 16 Idles in flight on 4 connections some waited 100 ms and more
        # (p99 62 ms on one process, 23 ms in turns; throughput the same). A Semaphore
        # (fair since Python 3.11.1) lets no more in than there are connections.
        self._hot_turns = asyncio.Semaphore(HOT_CONNECTIONS)

    async def write_beside(self, work: Callable[[Connection], T]) -> T:
        return await self.write(work)  # asyncpg waits on the network, not the loop

    async def write_sql(self, work: Callable[[DriverSql], T]) -> T:
        return await self.write(lambda conn: work(DriverSql(conn)))

    async def fetch_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        pool = await self._hot_pool()
        async with self._hot_turns:
            row = await pool.fetchrow(sql, *params)
        return None if row is None else tuple(row)

    async def _hot_pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._hot is None or self._hot_loop is not loop:
            if self._hot is not None:  # made on another loop (tests): unusable here
                self._hot.terminate()
            url = self.engine.url.set(drivername="postgresql")
            # `reset`: asyncpg would otherwise follow every statement with a round trip of
            # its own (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL) when it takes the
            # connection back; it cost PostgreSQL more CPU than the statement it followed.
            # Nothing here changes a session: each statement is one autocommitted DML (an
            # open transaction is still rolled back by asyncpg's own release).
            pool = await asyncpg.create_pool(
                url.render_as_string(hide_password=False),
                min_size=1,
                max_size=HOT_CONNECTIONS,
                reset=_session_untouched,
            )
            if self._hot_loop is loop and self._hot is not None:  # another call made one
                await pool.close()
                return self._hot
            self._hot, self._hot_loop = pool, loop
            self._hot_turns = asyncio.Semaphore(HOT_CONNECTIONS)  # bound to this loop
        return self._hot

    async def write(self, work: Callable[[Connection], T]) -> T:
        def in_transaction() -> T:
            with self.engine.sync_engine.begin() as conn:
                return work(conn)

        return await greenlet_spawn(in_transaction)

    async def read(self, work: Callable[[Connection], T]) -> T:
        def autocommitted() -> T:
            # Autocommit: no BEGIN before and ROLLBACK after, two round trips a read. Each
            # statement sees committed data as of its start either way (READ COMMITTED).
            with self.engine.sync_engine.connect() as conn:
                return work(conn.execution_options(isolation_level="AUTOCOMMIT"))

        return await greenlet_spawn(autocommitted)

    async def close(self) -> None:
        if self._hot is not None:
            if self._hot_loop is asyncio.get_running_loop():
                await self._hot.close()
            else:
                self._hot.terminate()
            self._hot = None
        await self.engine.dispose()

    def pool(self) -> Pool:
        return self.engine.pool


async def _session_untouched(connection: asyncpg.Connection) -> None:
    """The hot pool's reset: nothing to undo (see `AsyncDatabase._hot_pool`)."""


class InlineSqliteDatabase:
    def __init__(self, url: str) -> None:
        sync_url = async_url(url).replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1)
        # One connection: statements run one at a time on the loop thread anyway.
        self.engine = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=0)
        sqlalchemy.event.listen(self.engine, "connect", sqlite_pragmas)
        # write_beside's: one at a time, on a bulk thread (below the event loop's priority).
        self._beside = sqlalchemy.create_engine(
            sync_url,
            pool_size=1,
            max_overflow=0,
            connect_args={"check_same_thread": False},  # any worker thread, one at a time
        )
        sqlalchemy.event.listen(self._beside, "connect", sqlite_pragmas)
        self._beside_lock = asyncio.Lock()
        self._raw: sqlite3.Connection | None = None

    async def write_beside(self, work: Callable[[Connection], T]) -> T:
        def in_thread() -> T:
            with self._beside.begin() as conn:
                return work(conn)

        async with self._beside_lock:
            return await bulk_threads.run(in_thread)

    async def write_sql(self, work: Callable[[DriverSql], T]) -> T:
        # Inline like `write`: nothing else runs on this process's connections meanwhile, so
        # the second connection never waits on the first.
        conn = self._raw or self._open_raw()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(DriverSql(conn))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def fetch_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        conn = self._raw or self._open_raw()
        values = [_sqlite_value(value) for value in params]
        row = conn.execute(_numbered_for_sqlite(sql), values).fetchone()
        return None if row is None else tuple(row)

    def _open_raw(self) -> sqlite3.Connection:
        path = self.engine.url.database
        if not path or path == ":memory:":  # a second connection would see another database
            raise RuntimeError("plain SQL needs a SQLite database file")
        # Autocommit outside write_sql's explicit transactions: a read never leaves one open
        # to hold the WAL back.
        self._raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:  # the same as SQLAlchemy's connection gets
            self._raw.execute(pragma)
        return self._raw

    async def write(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    async def read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)

    async def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self._beside.dispose()
        self.engine.dispose()

    def pool(self) -> Pool:
        return self.engine.pool


_PLACEHOLDER = re.compile(r"\$(\d+)")


def utc_datetime(value: datetime | str | None) -> datetime | None:
    """A datetime column from `fetch_row`: SQLite gives SQLAlchemy's UTC text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@functools.lru_cache(maxsize=64)
def _numbered_for_sqlite(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLAlchemy stores it in SQLite: datetimes as UTC text."""
    if isinstance(value, datetime):
        # SQLAlchemy's "%Y-%m-%d %H:%M:%S.%f", by isoformat (a quarter cheaper than strftime)
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


_SQLITE = sqlite_dialect.dialect()


class DriverSql:
    """Plain SQL in a transaction, sent to the driver as written (`$n` placeholders, SQLite
    given `?n`; datetimes as each backend stores them): for statements every device request
    runs, where SQLAlchemy's statement building and caching cost more than the statement.
    On a SQLAlchemy connection (inside `write`/`read`), or on a sqlite3 one (`write_sql`)."""

    def __init__(self, conn: Connection | sqlite3.Connection) -> None:
        self._conn = conn
        self._dialect = _SQLITE if isinstance(conn, sqlite3.Connection) else conn.dialect
        # for what the two backends write differently
        self.sqlite = isinstance(conn, sqlite3.Connection) or conn.dialect.name == "sqlite"

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        cursor = self._run(sql, params)
        row = cursor.fetchone() if isinstance(self._conn, sqlite3.Connection) else cursor.first()
        return None if row is None else tuple(row)

    def execute(self, sql: str, *params: Any) -> int:
        """Runs the statement; how many rows it changed."""
        return int(self._run(sql, params).rowcount)

    def insert_many(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """INSERT the rows (values in the table's column order) in one executemany, each
        value through its column's bind processing (FittedString cut to fit, UtcDateTime
        checked as UTC; on SQLite, datetimes as its text)."""
        columns = list(table.columns)
        # Only the columns that need it pay for a conversion.
        convert = [
            (n, function)
            for n, c in enumerate(columns)
            if (function := self._converter(c.type)) is not None
        ]
        names = ", ".join(c.name for c in columns)
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608  # our tables
        values: list[Sequence[Any]] = list(rows)
        if convert:
            values = []
            for row in rows:
                changed = list(row)
                for n, function in convert:
                    changed[n] = function(changed[n])
                values.append(changed)
        if self.sqlite:
            sql = _numbered_for_sqlite(sql)
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.executemany(sql, values)
        else:
            self._conn.exec_driver_sql(sql, [tuple(v) for v in values])

    def _converter(self, kind: Any) -> Callable[[Any], Any] | None:
        if not isinstance(kind, TypeDecorator):
            return None
        if isinstance(kind, FittedString):
            return kind.fit
        process, dialect = kind.process_bind_param, self._dialect
        if self.sqlite and isinstance(kind.impl, DateTime):
            return lambda value: _sqlite_value(process(value, dialect))
        return lambda value: process(value, dialect)

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        if self.sqlite:
            sql = _numbered_for_sqlite(sql)
            params = tuple(_sqlite_value(value) for value in params)
        if isinstance(self._conn, sqlite3.Connection):
            return self._conn.execute(sql, params)
        return self._conn.exec_driver_sql(sql, params)


def open_database(url: str) -> Database:
    if is_sqlite(url):
        return InlineSqliteDatabase(url)
    return AsyncDatabase(create_engine(url))
