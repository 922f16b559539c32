"""The console's dashboard on the real app: every figure equals GET /api/v1/dashboard's,
the OS chart is drawn without script or inline style, and what devices say is escaped."""

from __future__ import annotations

import re

import pytest

from orchardist.tokens import create_api_token
from tests.web.console import page_as
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
FIGURES = ("enrolled", "seen_24h", "seen_7d", "stale", "non_compliant", "commands_pending",
           "commands_failed_24h", "profile_installs_failed")  # fmt: skip


async def test_the_dashboard_shows_the_apis_figures(server: Server) -> None:
    devices = [await server.device(f"UDID-DASH-{n}", 380 + n) for n in range(3)]
    for device in devices:
        await server.enroll(device)
    await server.services.storage.refresh_facts(devices[0].udid, {"os_version": "17.9"})  # type: ignore[attr-defined]
    failing = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, devices[0])
    await server.queue("DeviceLock", {}, devices[1], devices[2])
    await server.report(devices[0], "Idle")
    await server.report(devices[0], "Error", CommandUUID=failing,
                        ErrorChain=[{"LocalizedDescription": "no", "ErrorCode": 1}])  # fmt: skip
    token = await create_api_token(server.services.storage, "dash", "viewer")
    answer = await server.http.get(
        "/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    api = answer.json()
    assert (api["enrolled"], api["seen_24h"], api["stale"]) == (3, 3, 0)
    assert (api["commands_pending"], api["commands_failed_24h"]) == (2, 1)
    assert api["os_versions"] == {"17.9": 1, "18.1": 2}
    assert api["push_certificate_days_left"] is None  # none imported in the tests' server
    page = (await page_as(server, "vera", "viewer", "/console")).text
    for name in FIGURES:
        shown = re.search(rf'<dd id="{name}">([^<]*)</dd>', page)
        assert shown is not None, name
        assert shown[1] == str(api[name]), name
    assert 'id="push_certificate_days_left">none<' in page
    assert "no push certificate yet" in page
    assert page.count("<rect ") == 2  # one bar per OS version
    assert "<title>18.1: 2</title>" in page
    assert "style=" not in page
    assert "<script>" not in page.replace('<script src="/console/static/htmx.min.js"', "")


async def test_os_versions_are_escaped(server: Server) -> None:
    device = await server.device("UDID-DASH-X", 390)
    await server.enroll(device)
    hostile = '<script>alert("x")</script>'
    await server.services.storage.refresh_facts(device.udid, {"os_version": hostile})  # type: ignore[attr-defined]
    page = (await page_as(server, "vera", "viewer", "/console")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


async def test_the_api_needs_a_token(server: Server) -> None:
    assert (await server.http.get("/api/v1/dashboard")).status_code == 401
