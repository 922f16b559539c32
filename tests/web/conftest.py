"""`server`: a running app on SQL storage, for every backend this run covers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.db import backends
from tests.web.mdm_server import Server, running


@pytest.fixture(params=backends())
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    async with running(request.param, tmp_path) as started:
        yield started
