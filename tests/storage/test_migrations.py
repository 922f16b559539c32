"""Migrations build exactly the schema the tables declare, on every backend."""

from __future__ import annotations

import asyncio
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from orchardist.storage.sql.engine import create_engine
from orchardist.storage.sql.migrate import alembic_config, packaged_head, upgrade
from orchardist.storage.sql.tables import POSTGRESQL_ONLY_INDEXES, metadata
from tests.db import fresh_database

pytestmark = pytest.mark.anyio


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():
        if connection.dialect.name != "postgresql":
            # Not made there; Alembic leaves them out (SQLite cannot reflect an index on an
            # expression) and says so.
            for index in POSTGRESQL_ONLY_INDEXES:
                warnings.filterwarnings("ignore", f".*expression-based index '{index.name}'")
        return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        await upgrade(url)  # a second upgrade is a no-op
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                assert await conn.run_sync(_differences) == []
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        finally:
            await engine.dispose()
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


def test_the_head_read_without_alembic_is_alembics() -> None:
    """upgrade() skips Alembic when the database is at packaged_head(): it must be the head
    Alembic itself would migrate to."""
    assert packaged_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_an_upgrade_from_an_older_revision_runs_the_rest(
    backend: str, tmp_path: Path
) -> None:
    """A database one migration behind is not mistaken for a current one."""
    async with fresh_database(backend, tmp_path, migrate=False) as url:
        await upgrade(url, "0001")
        await upgrade(url)
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                assert await conn.run_sync(_differences) == []
                version = await conn.execute(text("SELECT version_num FROM alembic_version"))
                assert version.scalars().all() == [packaged_head()]
        finally:
            await engine.dispose()


async def test_processes_starting_together_take_turns(backend: str, tmp_path: Path) -> None:
    """Several servers starting at once on one database: every one of them comes up."""
    script = "import asyncio, sys; from orchardist.storage.sql.migrate import upgrade; "
    script += "asyncio.run(upgrade(sys.argv[1]))"
    async with fresh_database(backend, tmp_path, migrate=False) as url:
        runs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, url, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(4)
        ]
        results = [await run.communicate() for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, [err for _, err in results]
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                assert await conn.run_sync(_differences) == []
        finally:
            await engine.dispose()
