"""Fresh, migrated databases for tests: SQLite always, PostgreSQL too when
ORCHARDIST_TEST_POSTGRES_URL is set (CI sets it). Each test gets its own database, created
and dropped here."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from orchardist.storage.sql.engine import async_url
from orchardist.storage.sql.migrate import upgrade

POSTGRES_ENV = "ORCHARDIST_TEST_POSTGRES_URL"


def backends() -> list[str]:
    """The backends this run covers; PostgreSQL only when a server was given (never a skip)."""
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@asynccontextmanager
async def fresh_database(
    backend: str, tmp_path: Path, *, migrate: bool = True
) -> AsyncIterator[str]:
    """The URL of an empty (migrated unless told otherwise) database, dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / f'test-{uuid.uuid4().hex[:8]}.db'}"
        if migrate:
            await upgrade(url)
        yield url
        return
    admin_url = async_url(os.environ[POSTGRES_ENV])
    name = f"orchardist_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            if migrate:
                await upgrade(url)
            yield url
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
