"""`/healthz` and `/readyz`: 200 while the database answers, 503 with a reason when it
does not (dropped on PostgreSQL, overwritten on SQLite) or before the services open."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from orchardist.config import load_settings
from orchardist.storage.sql.engine import async_url, is_sqlite
from orchardist.web.app import create_app
from tests.db import POSTGRES_ENV
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
PROBES = ("/healthz", "/readyz")


async def test_both_answer_200_while_the_database_answers(server: Server) -> None:
    for path in PROBES:
        response = await server.http.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


async def test_both_answer_503_with_a_reason_once_the_database_is_gone(server: Server) -> None:
    url = server.services.settings.resolved_database_url
    if is_sqlite(url):
        # Overwritten in place: the server's open connections would still read their pages.
        _overwrite(Path(make_url(async_url(url)).database or ""))
        await _assert_unavailable(server, "file is not a database")
        return
    async with _dropped(url):
        await _assert_unavailable(server, "does not exist")


async def _assert_unavailable(server: Server, expected: str) -> None:
    for path in PROBES:
        response = await server.http.get(path)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert "the database does not answer" in response.json()["reason"]
        assert expected in response.json()["reason"]


async def test_neither_is_ok_before_the_services_open(tmp_path: Path) -> None:
    app = create_app(load_settings(tmp_path))  # no services, no lifespan run
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mdm.test") as http:
        for path in PROBES:
            response = await http.get(path)
            assert response.status_code == 503
            assert "not ready" in response.json()["reason"]


def _overwrite(path: Path) -> None:
    path.write_bytes(b"not a database\n" * 512)


@asynccontextmanager
async def _dropped(url: str) -> AsyncIterator[None]:
    """The server's database dropped (its connections cut) for the block, then an empty
    one of the same name, for tests.db to drop as usual."""
    name = make_url(url).database
    admin = create_async_engine(async_url(os.environ[POSTGRES_ENV]), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        yield
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
