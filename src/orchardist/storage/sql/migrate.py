"""Schema migrations: `upgrade(url)` brings a database to the latest revision.

The Alembic config is built in code (no alembic.ini to find at run time), and the
migrations ship inside the package. Every CLI command upgrades first, and almost always
finds the schema current: that case is answered from the migration files' revision lines
without importing Alembic, which would cost each command half a second.
"""

from __future__ import annotations

import fcntl
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from orchardist.storage.sql.engine import async_url, create_engine, is_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

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
                if revision == "head" and await connection.run_sync(_at_packaged_head):
                    return
                await connection.run_sync(lambda sync: _alembic_upgrade(sync, revision))
        finally:
            await engine.dispose()


def _alembic_upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def _at_packaged_head(connection: Connection) -> bool:
    """Whether the database's revision is the newest one shipped (False whenever that
    is not certain: Alembic then decides)."""
    head = packaged_head()
    if head is None or not inspect(connection).has_table("alembic_version"):
        return False
    current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(current) == [head]


# `revision = "0016"`, also as Alembic's newer templates write it: `revision: str = "0016"`.
_REVISION = re.compile(r"^revision(?:: [^=]+)? = [\"']([^\"']+)[\"']$", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision(?:: [^=]+)? = (?:None|[\"']([^\"']+)[\"'])$", re.MULTILINE
)


@functools.cache
def packaged_head() -> str | None:
    """The newest revision in migrations/versions, read from each file's `revision =` and
    `down_revision =` lines; None unless they form one chain with one head (merges, or a
    file written differently, are left to Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text()
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        parents.add(down[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


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
