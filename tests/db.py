"""Fresh, migrated databases for tests: SQLite always, PostgreSQL too when
ORCHARDIST_TEST_POSTGRES_URL is set (CI sets it). Each test gets its own database, created
and dropped here.

Running the migrations costs a few tenths of a second, and hundreds of tests want a
migrated database: each process migrates one template per backend, once, and every
migrated database is a copy of it (a file copy for SQLite, CREATE DATABASE … TEMPLATE on
PostgreSQL), the schema the migrations make and nothing else."""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchardist.storage.sql.engine import async_url
from orchardist.storage.sql.migrate import upgrade

POSTGRES_ENV = "ORCHARDIST_TEST_POSTGRES_URL"
# orchardist_template_<pid>_<hex>: the pid lets a later run drop what a killed one left.
_TEMPLATE_PREFIX = "orchardist_template_"
_templates: dict[str, str] = {}  # backend -> this process's migrated template


def backends() -> list[str]:
    """The backends this run covers; PostgreSQL only when a server was given (never a skip)."""
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@asynccontextmanager
async def fresh_database(
    backend: str, tmp_path: Path, *, migrate: bool = True
) -> AsyncIterator[str]:
    """The URL of an empty (migrated unless told otherwise) database, dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.db"
        if migrate:
            shutil.copyfile(await _sqlite_template(), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin_url = async_url(os.environ[POSTGRES_ENV])
    name = f"orchardist_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        template = f' TEMPLATE "{await _postgres_template(admin)}"' if migrate else ""
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        try:
            yield _database_url(admin_url, name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _sqlite_template() -> Path:
    if "sqlite" not in _templates:
        folder = Path(tempfile.mkdtemp(prefix="orchardist-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "template.db"
        await upgrade(f"sqlite+aiosqlite:///{path}")
        # Everything into the main file (WAL mode), so that copying that file copies it all.
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


async def _postgres_template(admin: AsyncEngine) -> str:
    if "postgres" not in _templates:
        await _drop_abandoned_templates(admin)
        name = f"{_TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        atexit.register(_drop_at_exit, admin.url.render_as_string(hide_password=False), name)
        # Disposed at once: CREATE DATABASE … TEMPLATE refuses a template with connections.
        await upgrade(_database_url(admin.url.render_as_string(hide_password=False), name))
        _templates["postgres"] = name
    return _templates["postgres"]


async def _drop_abandoned_templates(admin: AsyncEngine) -> None:
    """Templates whose process is gone (a run killed before its exit handlers ran)."""
    async with admin.connect() as conn:
        rows = await conn.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
            {"prefix": f"{_TEMPLATE_PREFIX}%"},
        )
        for (name,) in rows.all():
            pid = re.match(rf"{_TEMPLATE_PREFIX}(\d+)_", name)
            if pid is not None and not _alive(int(pid.group(1))):
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_at_exit(admin_url: str, name: str) -> None:
    async def drop() -> None:
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()

    asyncio.run(drop())
