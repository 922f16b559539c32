"""A device search on PostgreSQL is looked up through the indexes of migration 0018, one
for each way of matching; SQLite has none and reads the table. Where pg_trgm cannot be
created, the migration still completes and says what to run, and search still works.

Plans are checked with sequential scans priced out (enable_seqscan off), so that a table of
a few rows shows which index each lookup can range over, as one of 100,000 would choose it.
How fast that is belongs to `make bench` (scenario `console`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from orchardist.storage import OtaSession
from orchardist.storage.listing import DeviceFilters
from orchardist.storage.sql.database import AsyncDatabase, InlineSqliteDatabase
from orchardist.storage.sql.engine import async_url, create_engine
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from orchardist.storage.sql.tables import POSTGRESQL_ONLY_INDEXES
from tests.db import POSTGRES_ENV, fresh_database
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio

# What each lookup of a search (storage.sql.listing._lookups: name, serial, UDID, enrolling
# user, in that order) ranges over on PostgreSQL.
LOOKUP_INDEXES = [
    "ix_enrollments_device_name_trigram",
    "ix_enrollments_serial_number_lower",
    "ix_enrollments_device_id_lower",
    "ix_ota_sessions_user_lower",
]
TRIGRAM = "ix_enrollments_device_name_trigram"


async def _fleet(storage: SqlStorage) -> None:
    for n in range(3):
        await add_device(storage, Spec(f"00008030-00{n}", name=f"Alice's iPhone {n}",
                                       serial=f"C02X{n}"))  # fmt: skip
    await storage.save_ota_session(
        OtaSession("t" * 64, "bob.smith", ("sales",), "enrolled", NOW, NOW, None, "00008030-002")
    )


async def test_each_lookup_of_a_search_ranges_over_its_index(
    storage: SqlStorage, backend: str
) -> None:
    await _fleet(storage)
    with _statements(storage) as ran:
        page = await storage.list_devices(DeviceFilters(search="ICE"), limit=10)
    assert [d.enrollment.device_id for d in page.devices] == [f"00008030-00{n}" for n in range(3)]
    lookups = [(statement, parameters) for statement, parameters in ran if "LIKE" in statement]
    assert len(lookups) == len(LOOKUP_INDEXES)  # few found: each way looked up, then paged
    plans = await storage.database.write(  # a transaction, for SET LOCAL
        lambda conn: [_plan(conn, statement, parameters) for statement, parameters in lookups]
    )
    if backend == "sqlite":  # every row of the table (or of an index holding the column)
        tables = ["enrollments"] * 3 + ["ota_sessions"]
        assert [[step.split(" USING ")[0] for step in plan] for plan in plans] == [
            [f"SCAN {table}"] for table in tables
        ]
        return
    for plan, index in zip(plans, LOOKUP_INDEXES, strict=True):
        lines = "\n".join(plan)
        assert index in lines, lines
        assert "Index Cond" in lines, lines
        assert "Seq Scan" not in lines, lines


@contextmanager
def _statements(storage: SqlStorage) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the storage sends while this is open, with its parameters."""
    ran: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        ran.append((statement, parameters))

    engine = _engine(storage)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield ran
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _engine(storage: SqlStorage) -> Engine:
    database = storage.database
    if isinstance(database, AsyncDatabase):
        return database.engine.sync_engine
    assert isinstance(database, InlineSqliteDatabase)
    return database.engine


def _plan(conn: Connection, statement: str, parameters: Any) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return [row.detail for row in rows]
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))  # as the search does
    return list(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())


async def test_without_pg_trgm_the_migration_completes_and_search_works(
    backend: str, tmp_path: Path
) -> None:
    """Here the owner of the tables may not create an extension in the database (a right
    of the database's owner): the prefix indexes are made, the trigram one is not, and the
    log says what to run. SQLite never gets any of them."""
    async with _migrated_by_a_role_without_create(backend, tmp_path) as (url, logs):
        indexes = await _index_names(url)
        storage = await open_storage(url)
        try:
            await _fleet(storage)
            page = await storage.list_devices(DeviceFilters(search="'s IPH"), limit=10)
        finally:
            await storage.close()
    assert len(page.devices) == 3  # by name, read from every device
    made = {index.name for index in POSTGRESQL_ONLY_INDEXES} & indexes
    if backend == "sqlite":
        assert made == set()
        assert logs == []
        return
    assert made == set(LOOKUP_INDEXES) - {TRIGRAM}
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert "pg_trgm could not be created" in warning["event"]
    assert "permission denied" in warning["error"]
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in warning["statements"]
    assert f"CREATE INDEX {TRIGRAM}" in warning["statements"]


@asynccontextmanager
async def _migrated_by_a_role_without_create(
    backend: str, tmp_path: Path
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A database migrated by a role that owns no database, and what the migration logged.
    On SQLite, one migrated as usual."""
    if backend == "sqlite":
        async with fresh_database(backend, tmp_path, migrate=False) as url:
            with capture_logs() as logs:
                await upgrade(url)
            yield url, logs
        return
    async with _role() as (role, password), fresh_database(backend, tmp_path, migrate=False) as url:
        await _execute(url, f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        limited = make_url(url).set(username=role, password=password)
        limited_url = limited.render_as_string(hide_password=False)
        with capture_logs() as logs:
            await upgrade(limited_url)
        yield limited_url, logs


@asynccontextmanager
async def _role() -> AsyncIterator[tuple[str, str]]:
    """A role that may log in and nothing more, dropped afterwards (after the databases
    holding its tables)."""
    role, password = f"orchardist_test_{secrets.token_hex(6)}", secrets.token_hex(16)
    await _execute(os.environ[POSTGRES_ENV], f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        yield role, password
    finally:
        await _execute(os.environ[POSTGRES_ENV], f"DROP ROLE {role}")


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _index_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_indexes_of_searched_tables)
    finally:
        await engine.dispose()


def _indexes_of_searched_tables(conn: Connection) -> set[str]:
    found = inspect(conn)
    return {
        index["name"]
        for table in ("enrollments", "ota_sessions")
        for index in found.get_indexes(table)
        if index["name"]
    }
