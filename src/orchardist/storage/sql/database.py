"""How statements reach each backend: a `Database` runs a plain function over a SQLAlchemy
`Connection` inside one transaction, so every query is written once, synchronously, and
runs on both backends.

- PostgreSQL: the asyncpg engine, through `AsyncConnection.run_sync`.
- SQLite: the standard library driver, called directly on the event loop thread. aiosqlite
  hands each call to a worker thread and back, which measured ~1.3 ms of CPU per
  single-statement transaction here against ~0.15 ms inline; SQLite does its work in
  microseconds in-process, so the thread hop was the cost. Running inline also makes each
  transaction atomic with respect to other coroutines (`work` cannot await), which is the
  single-writer discipline SQLite wants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import sqlalchemy
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool

from orchardist.storage.sql.engine import async_url, create_engine, is_sqlite, sqlite_pragmas

T = TypeVar("T")


class Database(Protocol):
    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction that commits when it returns, rolls back if it raises."""

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a connection for reading."""

    async def close(self) -> None:
        """Release every connection."""

    def pool(self) -> Pool:
        """The connection pool, for its usage figures."""


class AsyncDatabase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(self, work: Callable[[Connection], T]) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(work)

    async def close(self) -> None:
        await self.engine.dispose()

    def pool(self) -> Pool:
        return self.engine.pool


class InlineSqliteDatabase:
    def __init__(self, url: str) -> None:
        sync_url = async_url(url).replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1)
        # One connection: statements run one at a time on the loop thread anyway.
        self.engine = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=0)
        sqlalchemy.event.listen(self.engine, "connect", sqlite_pragmas)

    async def write(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    async def read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)

    async def close(self) -> None:
        self.engine.dispose()

    def pool(self) -> Pool:
        return self.engine.pool


def open_database(url: str) -> Database:
    if is_sqlite(url):
        return InlineSqliteDatabase(url)
    return AsyncDatabase(create_engine(url))
