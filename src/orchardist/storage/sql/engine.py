"""Engines for the two supported backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


def async_url(url: str) -> str:
    """Accept the URLs people write and give SQLAlchemy the async driver for them."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url.removeprefix(plain)
    return url


def is_sqlite(url: str) -> bool:
    return async_url(url).startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    if not is_sqlite(url):
        # No pool_pre_ping: a ping on every checkout was a round trip per transaction, a
        # sixth of an enrollment's CPU. A connection that died (a PostgreSQL restart) fails
        # one request and SQLAlchemy then drops the pool's stale connections; recycling
        # bounds how long an idle one is kept.
        # Twenty kept: an enrollment storm used them all, and connections over the pool's
        # size are closed when returned, then opened again (a PostgreSQL backend each).
        return create_async_engine(url, pool_size=20, max_overflow=10, pool_recycle=1800)
    # SQLite allows one writer at a time; several writer connections fail with "database is
    # locked" even in WAL mode with a busy timeout. One connection serialises every
    # statement through it, which is what SQLite would do anyway, minus the errors.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


def sqlite_pragmas(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> Any:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# WAL lets readers (other processes: the CLI while the server runs) proceed during a write;
# NORMAL sync is durable across application crashes, and the standard WAL pairing.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)
