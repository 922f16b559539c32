"""The console's device list and device page on the real app: search and paging, the
inventory and the device's answers shown (escaped), actions by role, erase confirmed by
the device's name, every action in the audit log."""

from __future__ import annotations

import plistlib

import pytest

from orchardist.storage.audit import AuditQuery
from tests.web.console import add_account, browser, enrolled_fleet, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert("x")</script> & "Kim\'s"'


async def test_the_list_pages_and_searches(server: Server) -> None:
    await enrolled_fleet(server, 60)
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        await signed_in(client, "vera")
        first = await client.get("/console/devices")
        assert first.status_code == 200
        assert first.text.count('href="/console/devices/UDID-CON-') == 50
        assert "Phone 000" in first.text
        assert "Phone 050" not in first.text
        next_link = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        second = await client.get(next_link)
        assert second.text.count('href="/console/devices/UDID-CON-') == 10
        assert "Phone 050" in second.text
        found = await client.get("/console/devices", params={"q": "SER042"})
        assert found.text.count('href="/console/devices/UDID-CON-') == 1
        assert "Phone 042" in found.text
        bad = await client.get("/console/devices", params={"os": "seventeen"})
        assert (bad.status_code, "OS version" in bad.text) == (422, True)


async def test_the_device_page_escapes_what_devices_say(server: Server) -> None:
    device = await server.device("UDID-HOSTILE", 370)
    await server.enroll(device)
    await server.services.storage.refresh_facts(device.udid, {"device_name": HOSTILE})  # type: ignore[attr-defined]
    command_uuid = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, device)
    await server.report(device, "Idle")
    await server.report(device, "Error", CommandUUID=command_uuid,
                        ErrorChain=[{"LocalizedDescription": HOSTILE, "ErrorCode": 1}])  # fmt: skip
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        await signed_in(client, "vera")
        page = await client.get("/console/devices/UDID-HOSTILE")
        listed = await client.get("/console/devices")
    for html in (page.text, listed.text):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert" in html
    assert "DeviceInformation" in page.text
    assert "Erase" not in page.text  # a viewer sees no actions
    assert 'action="/console/devices/UDID-HOSTILE/lock"' not in page.text


async def test_an_operator_locks_and_may_not_erase(server: Server) -> None:
    device = await server.device("UDID-OPS", 371)
    await server.enroll(device)
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = await client.get("/console/devices/UDID-OPS")
        assert 'action="/console/devices/UDID-OPS/lock"' in page.text
        assert 'action="/console/devices/UDID-OPS/erase"' not in page.text
        locked = await client.post(
            "/console/devices/UDID-OPS/lock", data={"csrf_token": token, "message": "Call IT"}
        )
        assert (locked.status_code, locked.headers["location"]) == (
            303, "/console/devices/UDID-OPS?done=DeviceLock"
        )  # fmt: skip
        forged = await client.post(
            "/console/devices/UDID-OPS/erase",
            data={"csrf_token": token, "confirm_name": "UDID-OPS"},
        )
        assert forged.status_code == 403
        unforged = await client.post("/console/devices/UDID-OPS/lock", data={"message": "x"})
        assert unforged.status_code == 403  # no CSRF token
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["Command"] == {"RequestType": "DeviceLock", "Message": "Call IT"}
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"])
    assert (await server.report(device, "Idle")).content == b""  # the lock only: nothing else
    entries = await server.services.storage.audit_entries(AuditQuery())
    seen = {(e.actor, e.action, e.outcome.value, e.detail.get("request_type")) for e in entries}
    assert ("olga", "command.queue", "ok", "DeviceLock") in seen
    assert ("olga", "devices.erase", "denied", None) in seen


async def test_erase_needs_the_device_name_typed(server: Server) -> None:
    device = await server.device("UDID-ERASE", 372)
    await server.enroll(device)
    await server.services.storage.refresh_facts(device.udid, {"device_name": "Front desk"})  # type: ignore[attr-defined]
    await add_account(server, "ada", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ada")
        page = await client.get("/console/devices/UDID-ERASE")
        assert "type the device name" in page.text
        wrong = await client.post(
            "/console/devices/UDID-ERASE/erase",
            data={"csrf_token": token, "confirm_name": "front desk"},
        )
        assert (wrong.status_code, "type its name exactly" in wrong.text) == (422, True)
        assert (await server.report(device, "Idle")).content == b""  # nothing was queued
        erased = await client.post(
            "/console/devices/UDID-ERASE/erase",
            data={"csrf_token": token, "confirm_name": "Front desk"},
        )
        assert erased.status_code == 303
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["Command"]["RequestType"] == "EraseDevice"


async def test_the_list_filters_by_group_enrolling_user_and_last_seen(server: Server) -> None:
    await enrolled_fleet(server, 4)
    await server.services.storage.set_group("night shift", ["UDID-CON-001", "UDID-CON-003"])
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        await signed_in(client, "vera")
        grouped = await client.get("/console/devices", params={"group": "night shift"})
        recent = await client.get("/console/devices", params={"seen": "24h"})
        stale = await client.get("/console/devices", params={"seen": "stale"})
        nobody = await client.get("/console/devices", params={"enrolled_by": "carol"})
        bad = await client.get("/console/devices", params={"seen": "yesterday"})
    assert '<option value="night shift">' in grouped.text  # offered in the form
    assert grouped.text.count('href="/console/devices/UDID-CON-') == 2
    assert "UDID-CON-001" in grouped.text
    assert "UDID-CON-003" in grouped.text
    assert recent.text.count('href="/console/devices/UDID-CON-') == 4  # they just checked in
    assert stale.text.count('href="/console/devices/UDID-CON-') == 0
    assert nobody.text.count('href="/console/devices/UDID-CON-') == 0
    assert (bad.status_code, "last seen: 24h, 7d or stale" in bad.text) == (422, True)
