"""Console sign-in through a real slapd: directory groups give the role, a user in no
mapped group cannot sign in, and failures count against the same lock as /enroll's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchardist.config import DirectorySettings
from tests.directory.slapd import (
    BASE,
    PASSWORDS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
)
from tests.web.console import add_account, browser, sign_in
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server(slapd: Slapd, backend: str, tmp_path: Path) -> AsyncIterator[Server]:
    directory = DirectorySettings(
        url=slapd.url, base_dn=BASE, bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD
    )  # type: ignore[arg-type]
    # alice is in sales and staff, bob in staff only: only sales is mapped.
    console = {"admin_groups": ["Sales"], "lockout_account_failures": 2}
    async with running(backend, tmp_path, directory=directory, console=console) as started:
        yield started


async def test_groups_give_the_role_and_no_group_no_entry(server: Server) -> None:
    async with browser(server) as client:
        answer = await sign_in(client, "alice", PASSWORDS["alice"])
        assert (answer.status_code, answer.headers["location"]) == (303, "/console")
        page = await client.get("/console")
        assert "Signed in as <strong>alice</strong> (admin)" in page.text
        assert (await client.get("/console/accounts")).status_code == 200  # admin pages
    async with browser(server) as client:
        refused = await sign_in(client, "bob", PASSWORDS["bob"])
        assert refused.status_code == 401
        assert "in no group allowed to use the console" in refused.text
        assert "orchardist_session" not in client.cookies
        wrong = await sign_in(client, "alice", "not her password")
        assert wrong.status_code == 401
        assert "Unknown user or wrong password." in wrong.text


async def test_a_local_account_shadows_the_directory_name(server: Server) -> None:
    await add_account(server, "alice", "viewer")
    async with browser(server) as client:
        directory_password = await sign_in(client, "alice", PASSWORDS["alice"])
        assert directory_password.status_code == 401  # the local password only


async def test_enrollment_and_console_share_the_lock(server: Server) -> None:
    for _ in range(2):
        page = await server.http.post("/enroll", data={"user": "alice", "password": "wrong"})
    assert page.status_code == 429
    assert "Too many failed sign-ins for this account" in page.text
    right = await server.http.post(
        "/enroll", data={"user": "alice", "password": PASSWORDS["alice"]}
    )
    assert right.status_code == 429  # the password is not even tried while locked
    async with browser(server) as client:
        console = await sign_in(client, "alice", PASSWORDS["alice"])
        assert console.status_code == 429
