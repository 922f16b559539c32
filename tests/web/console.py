"""Browsers for the console tests: each its own cookie jar, on the server's app, signing in
through the real form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx

from orchardist.web.app import create_app
from tests.web.mdm_server import Server

PASSWORD = "correct horse battery staple"
BASE = "https://mdm.test"


@asynccontextmanager
async def browser(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A new browser (no cookies) on the server's services."""
    app = create_app(server.services.settings, server.services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def hidden(html: str, name: str = "csrf_token") -> str:
    """The value of the first hidden field `name` in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} field in:\n{html}"
    return found[1]


async def sign_in(
    client: httpx.AsyncClient, user: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    page = await client.get("/console/login")
    assert page.status_code == 200, page.text
    form = {"user": user, "password": password, "csrf_token": hidden(page.text),
            "next": next_path}  # fmt: skip
    return await client.post("/console/login", data=form)


async def signed_in(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> str:
    """Sign in (it must work) and return the session's CSRF token from the dashboard."""
    answer = await sign_in(client, user, password)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/console"), answer.text
    dashboard = await client.get("/console")
    assert dashboard.status_code == 200
    return hidden(dashboard.text)


async def add_account(server: Server, name: str, role: str) -> None:
    await server.services.accounts.create(name, role, PASSWORD)


def set_clock(server: Server, at: datetime) -> None:
    """Move the sessions' and the throttle's clock (the rest of the server keeps its own)."""
    accounts = server.services.accounts
    accounts.clock = accounts.sessions.clock = accounts.throttle.clock = lambda: at


async def page_as(server: Server, name: str, role: str, path: str) -> httpx.Response:
    """The page `path` as a new account of this role sees it."""
    await add_account(server, name, role)
    async with browser(server) as client:
        await signed_in(client, name)
        return await client.get(path)


async def enrolled_fleet(server: Server, count: int, prefix: str = "UDID-CON") -> list[str]:
    """`count` enrolled devices PREFIX-000…, named "Phone 000"… with serials SER000…; their
    UDIDs in the list's order."""
    udids = []
    for n in range(count):
        device = await server.device(f"{prefix}-{n:03}", 300 + n)
        await server.enroll(device)
        await server.services.storage.refresh_facts(  # type: ignore[attr-defined]
            device.udid, {"device_name": f"Phone {n:03}", "serial_number": f"SER{n:03}"}
        )
        udids.append(device.udid)
    return udids
