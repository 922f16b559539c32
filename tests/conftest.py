"""Suite-wide fixtures: async tests run on asyncio through anyio's pytest plugin;
`storage` is a migrated SqlStorage and `server` a running app on SQL storage, on every
backend this run covers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchardist.storage.sql.repositories import SqlStorage, open_storage
from tests.db import backends, fresh_database
from tests.web.mdm_server import Server, running


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def storage(backend: str, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with fresh_database(backend, tmp_path) as url:
        storage = await open_storage(url)
        try:
            yield storage
        finally:
            await storage.close()


@pytest.fixture(params=backends())
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    async with running(request.param, tmp_path) as started:
        yield started
