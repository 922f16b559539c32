"""GET /api/v1/devices paged by cursor, searched and filtered, with compliance; its CSV
export; refusals of bad cursors and values."""

from __future__ import annotations

import csv
import io
import plistlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchardist.tokens import create_api_token
from orchardist.web.api import device_list
from tests.db import backends
from tests.web.mdm_server import Device, Server, running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=backends())
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    rules = {"passcode": True, "min_os_version": {"iOS": "17.0"}}
    async with running(request.param, tmp_path, compliance=rules) as started:
        yield started


async def _viewer(server: Server) -> dict[str, str]:
    token = await create_api_token(server.services.storage, "lister", "viewer")
    return {"Authorization": f"Bearer {token}"}


async def _enroll(server: Server, udid: str, index: int, name: str, os: str = "17.2") -> Device:
    device = await server.device(udid, index)
    facts = {"Topic": "com.apple.mgmt.t", "SerialNumber": f"SN{index}", "OSVersion": os,
             "DeviceName": name, "ProductName": "iPhone15,2"}  # fmt: skip
    assert (await server.checkin(device, "Authenticate", **facts)).status_code == 200
    token = {"Topic": "com.apple.mgmt.t", "Token": b"\x01" * 32, "PushMagic": "M"}
    assert (await server.checkin(device, "TokenUpdate", **token)).status_code == 200
    return device


async def _answer_security(server: Server, device: Device, passcode: bool) -> None:
    """The device answers SecurityInfo through /mdm/connect, as a real one does."""
    command_uuid = await server.queue("SecurityInfo", {}, device)
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["CommandUUID"] == command_uuid
    info = {"HardwareEncryptionCaps": 3, "PasscodePresent": passcode, "PasscodeCompliant": True}
    await server.report(device, "Acknowledged", CommandUUID=command_uuid, SecurityInfo=info)


async def test_compliance_in_the_list_the_filter_and_the_device(server: Server) -> None:
    headers = await _viewer(server)
    good = await _enroll(server, "UDID-A", 201, "Good")
    bad = await _enroll(server, "UDID-B", 202, "No passcode")
    await _enroll(server, "UDID-C", 203, "Old", os="16.1")
    await _answer_security(server, good, passcode=True)
    await _answer_security(server, bad, passcode=False)  # re-evaluated on this answer
    listed = (await server.http.get("/api/v1/devices", headers=headers)).json()
    assert [(d["udid"], d["compliance"]["status"]) for d in listed] == [
        ("UDID-A", "compliant"), ("UDID-B", "non_compliant"), ("UDID-C", "non_compliant"),
    ]  # fmt: skip
    broken = await server.http.get("/api/v1/devices?compliant=false", headers=headers)
    assert [(d["udid"], d["compliance"]["reasons"]) for d in broken.json()] == [
        ("UDID-B", ["no passcode"]),
        ("UDID-C", ["iOS 16.1 is below the minimum 17.0"]),  # broken beats unknown
    ]
    fine = await server.http.get("/api/v1/devices?compliant=true", headers=headers)
    assert [d["udid"] for d in fine.json()] == ["UDID-A"]
    await _answer_security(server, bad, passcode=True)  # fixed on the device
    shown = (await server.http.get("/api/v1/devices/UDID-B", headers=headers)).json()
    assert (shown["compliance"]["status"], shown["compliance"]["reasons"]) == ("compliant", [])
    assert shown["compliance"]["evaluated_at"] is not None


async def _pages(server: Server, url: str, headers: dict[str, str]) -> list[list[str]]:
    pages = []
    while True:
        answer = await server.http.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append([d["udid"] for d in answer.json()])
        link = answer.headers.get("link")
        if link is None:
            assert "x-next-cursor" not in answer.headers
            return pages
        url = link.split(">")[0].lstrip("<")
        assert f"cursor={answer.headers['x-next-cursor']}" in url
        assert link.endswith('; rel="next"')


async def test_paging_by_cursor_with_sort_search_and_filters(server: Server) -> None:
    headers = await _viewer(server)
    names = ["delta", "alpha", "echo", "bravo", "charlie"]
    for n, name in enumerate(names):
        await _enroll(server, f"UDID-{n}", 210 + n, f"Lab {name}", os=f"17.{n}")
    pages = await _pages(server, "/api/v1/devices?sort=name&order=desc&limit=2", headers)
    assert pages == [["UDID-2", "UDID-0"], ["UDID-4", "UDID-3"], ["UDID-1"]]
    searched = await _pages(server, "/api/v1/devices?q=lab+a&limit=1", headers)
    assert searched == [["UDID-1"]]
    url = "/api/v1/devices?sort=os_version&order=desc&os_version=17&limit=4"
    assert await _pages(server, url, headers) == [
        ["UDID-4", "UDID-3", "UDID-2", "UDID-1"],
        ["UDID-0"],
    ]
    state = await server.http.get("/api/v1/devices?state=retired", headers=headers)
    assert state.json() == []


async def test_without_a_limit_the_answer_is_capped(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await _viewer(server)
    for n in range(3):
        await _enroll(server, f"UDID-{n}", 220 + n, f"d{n}")
    monkeypatch.setattr(device_list, "DEFAULT_LIMIT", 2)
    assert await _pages(server, "/api/v1/devices", headers) == [["UDID-0", "UDID-1"], ["UDID-2"]]


async def test_bad_cursors_and_values_are_422(server: Server) -> None:
    headers = await _viewer(server)
    for n in range(3):
        await _enroll(server, f"UDID-{n}", 230 + n, f"d{n}")
    first = await server.http.get("/api/v1/devices?sort=name&limit=1", headers=headers)
    cursor = first.headers["x-next-cursor"]
    for url, where in [
        (f"/api/v1/devices?sort=serial&cursor={cursor}", "cursor"),  # another sort
        (f"/api/v1/devices?sort=name&order=desc&cursor={cursor}", "cursor"),  # another order
        ("/api/v1/devices?cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("/api/v1/devices?cursor=%%%", "cursor"),
        ("/api/v1/devices?os_version=seventeen", "os_version"),
        ("/api/v1/devices?compliant=true&compliance=unknown", "compliant"),
        ("/api/v1/devices?sort=size", "sort"),
        ("/api/v1/devices?limit=0", "limit"),
        ("/api/v1/devices?limit=10001", "limit"),
        ("/api/v1/devices?last_seen_after=yesterday", "last_seen_after"),
    ]:
        answer = await server.http.get(url, headers=headers)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["query", where], url
    refused = await server.http.get(f"/api/v1/devices?sort=serial&cursor={cursor}", headers=headers)
    assert "sort=name" in refused.json()["detail"][0]["msg"]
    later = await server.http.get(f"/api/v1/devices?sort=name&cursor={cursor}", headers=headers)
    assert [d["udid"] for d in later.json()] == ["UDID-1", "UDID-2"]


async def test_csv_export_escapes_and_filters(server: Server) -> None:
    headers = await _viewer(server)
    names = ['=HYPERLINK("http://x","y")', 'Bob\'s "big", iPad', "+1", "-2", "@SUM(A1)", "ok"]
    for n, name in enumerate(names):
        await _enroll(server, f"UDID-{n}", 240 + n, name)
    answer = await server.http.get("/api/v1/devices.csv", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["device_name"] for row in rows] == [
        "'=HYPERLINK(\"http://x\",\"y\")", 'Bob\'s "big", iPad', "'+1", "'-2", "'@SUM(A1)", "ok",
    ]  # fmt: skip
    assert rows[5]["udid"] == "UDID-5"
    assert rows[5]["compliance"] == "unknown"
    assert rows[5]["compliance_reasons"] == "no inventory yet: the device has not answered a query"
    some = await server.http.get("/api/v1/devices.csv?q=ok&sort=name&order=desc", headers=headers)
    assert [r["udid"] for r in csv.DictReader(io.StringIO(some.text))] == ["UDID-5"]
    bad = await server.http.get("/api/v1/devices.csv?os_version=x", headers=headers)
    assert bad.status_code == 422
