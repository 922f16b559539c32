"""Schema migrations: `upgrade(url)` brings a database to the latest revision.

The Alembic config is built in code (no alembic.ini to find at run time), and the
migrations ship inside the package.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from orchardist.storage.sql.engine import async_url, create_engine, is_sqlite

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` (created on first use for SQLite) to `revision`.

    Safe when several processes start at once (servers behind one load balancer): they
    take turns, and whoever comes second finds the schema current and does nothing."""
    with _sqlite_migration_lock(url):
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # Held until this transaction commits; PostgreSQL DDL is transactional,
                    # so the next process sees the finished schema.
                    await connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
                await connection.run_sync(
                    lambda sync: command.upgrade(alembic_config(sync), revision)
                )
        finally:
            await engine.dispose()


# An arbitrary constant naming "Orchardist migrations" among PostgreSQL advisory locks.
_LOCK_KEY = 0x6F72636861726431


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """An exclusive file lock beside a SQLite database: SQLite's own locking starts only at
    the first write, too late to stop two processes both creating the first tables."""
    database = make_url(async_url(url)).database
    if not is_sqlite(url) or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
