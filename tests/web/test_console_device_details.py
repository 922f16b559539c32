"""A device's console page beyond its list fields: groups and push state, hardware and
network facts, the restrictions in force — and the answers a role may not read (an
Activation Lock bypass code) hidden on the device's page and the command's page alike."""

from __future__ import annotations

import pytest

from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
BYPASS = "8KDS-X0H7-A1WQ-8FNG-5X3G-YT4F"


async def test_the_page_shows_groups_push_hardware_network_and_restrictions(
    server: Server,
) -> None:
    device = await server.device("UDID-DETAIL", 380)
    await server.enroll(device)
    await server.services.storage.set_group("field-sales", [device.udid])
    facts = {
        "WiFiMAC": "a4:83:e7:01:02:03",
        "IMEI": "35 441007 654321 2",
        "PhoneNumber": "+44 20 7946 0000",
        "IsSupervised": True,
        "CellularTechnology": 1,
    }
    asked = await server.queue("DeviceInformation", {"Queries": list(facts)}, device)
    await server.report(device, "Acknowledged", CommandUUID=asked, QueryResponses=facts)
    asked = await server.queue("Restrictions", {}, device)
    restrictions = {"restrictedBool": {"allowCamera": {"value": False}},
                    "restrictedValue": {"maxInactivity": {"value": 5}}}  # fmt: skip
    await server.report(
        device, "Acknowledged", CommandUUID=asked,
        GlobalRestrictions=restrictions, ProfileRestrictions={},
    )  # fmt: skip
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        await signed_in(client, "vera")
        page = (await client.get("/console/devices/UDID-DETAIL")).text
    assert 'href="/console/groups/field-sales"' in page
    assert "reachable by push" in page
    for shown in ("a4:83:e7:01:02:03", "35 441007 654321 2", "+44 20 7946 0000", "GSM"):
        assert shown in page
    assert "allowCamera" in page
    assert "not allowed" in page
    assert "maxInactivity" in page


async def test_secret_answers_are_hidden_from_viewers_on_every_page(server: Server) -> None:
    device = await server.device("UDID-BYPASS", 381)
    await server.enroll(device)
    asked = await server.queue("ActivationLockBypassCode", {}, device)
    await server.report(device, "Acknowledged", CommandUUID=asked, ActivationLockBypassCode=BYPASS)
    await add_account(server, "vera", "viewer")
    await add_account(server, "ada", "admin")
    pages = ("/console/devices/UDID-BYPASS", f"/console/commands/{asked}")
    async with browser(server) as client:
        await signed_in(client, "vera")
        seen_by_viewer = [(await client.get(path)).text for path in pages]
    async with browser(server) as client:
        await signed_in(client, "ada")
        seen_by_admin = [(await client.get(path)).text for path in pages]
    for html in seen_by_viewer:
        assert "ActivationLockBypassCode" in html
        assert BYPASS not in html
        assert "needs the admin role" in html
    for html in seen_by_admin:
        assert BYPASS in html
