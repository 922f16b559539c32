"""Suite-wide fixtures: async tests run on asyncio through anyio's pytest plugin;
`storage` is a migrated SqlStorage and `server` a running app on SQL storage, on every
backend this run covers; `samba` is the session's one Samba AD DC (tests/directory/samba.py).

`make test` runs the suite on pytest-xdist workers with --dist loadfile: a test file runs
on one worker, so its module-scoped fixtures (data folders, servers, browsers) are made
once. Each worker that needs the Samba DC provisions its own, on its own address.

Python may be told not to write bytecode (PYTHONDONTWRITEBYTECODE, as some sandboxes set
it): then every `orchardist` command a test starts would compile the whole package from
source again, a third of a CPU second each, and every run would compile the test modules
again. pytest_configure compiles the package once and lets this run cache what it imports.

Console passwords are hashed in this process with Argon2id at its smallest cost: the real
parameters take a third of a CPU second per hash, by design, and hundreds of console tests
create accounts and sign in. Servers the tests start as `orchardist serve` keep the real
ones.

Each worker starts a CLI fork server (tests/cli_forkserver.py): the `orchardist` commands
the tests run fork from it instead of importing the package again, ~1 to 2 s of CPU each.
TESTS_FRESH_PROCESSES=1 runs every command in a fresh interpreter instead."""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

import orchardist
from orchardist.accounts import passwords
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from tests.cli_client import SOCKET_VARIABLE
from tests.db import backends, fresh_database
from tests.directory.samba import SambaDc, running_samba
from tests.web.mdm_server import Server, running

# The longest files (pytest --durations summed per file, on 2 cores), started first: with
# --dist loadfile a long file that begins last keeps one worker busy after the others have
# run out of work. A file missing from here only loses its place; the rest keep theirs.
# xdist hands each of the 4 workers the n-th and (n+4)-th file first, so the two kill -9
# files at 1 and 5 run one after the other: at once, with the rest, they can pass
# PostgreSQL's 100 connections.
LONGEST_FIRST = (
    "tests/mdm/test_killed_server.py",
    "tests/web/test_mutations_api.py",
    "tests/apps/test_app_fleet.py",
    "tests/cli/test_device_cli.py",
    "tests/mdm/test_killed_rollout.py",
    "tests/web/test_console_browser.py",
    "tests/web/test_app_files.py",
    "tests/scep/test_scepclient_peer.py",
    "tests/cli/test_audit_cli.py",
    "tests/mdm/test_several_servers.py",
    "tests/web/test_console_auth.py",
    "tests/web/test_audit_api.py",
    "tests/web/test_api.py",
    "tests/cli/test_init.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable


def pytest_configure(config: pytest.Config) -> None:
    if sys.dont_write_bytecode:
        sys.dont_write_bytecode = False
        if "PYTEST_XDIST_WORKER" not in os.environ:  # once per run, before any worker
            compileall.compile_dir(Path(orchardist.__file__).parent, quiet=1)


@pytest.fixture(autouse=True, scope="session")
def _cli_fork_server() -> Iterator[None]:
    if os.environ.get("TESTS_FRESH_PROCESSES"):
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="orchardist-cli-"))  # a short socket path
    socket_path = folder / "fork.sock"
    with (folder / "fork-server.log").open("wb") as log:
        # Not waited for: until it listens (after its imports) the commands exec instead.
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_forkserver", str(socket_path)],
            cwd=Path(__file__).parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    os.environ[SOCKET_VARIABLE] = str(socket_path)
    try:
        yield
    finally:
        del os.environ[SOCKET_VARIABLE]
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        patch.setattr(passwords, "_hasher", cheap)
        yield


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


@pytest.fixture(scope="session")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDc]:
    """For the directory and OTA tests alike: they only sign users in, and it changes nothing
    they read."""
    with running_samba(tmp_path_factory.mktemp("samba")) as server:
        yield server
