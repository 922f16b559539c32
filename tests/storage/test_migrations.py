"""Migrations build exactly the schema the tables declare, on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from orchardist.storage.sql.engine import create_engine
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.tables import metadata
from tests.db import fresh_database

pytestmark = pytest.mark.anyio


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
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
