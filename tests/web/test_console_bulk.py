"""The device list's "with the selected devices" form on the real app: ticked rows or the
whole page, each action through the same path as the device page's buttons (the
command's permission, the audit log, the command's page after), and each bad selection
refused with nothing queued."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from orchardist.storage.audit import AuditQuery
from tests.web.console import add_account, browser, enrolled_fleet, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
SELECTED = "/console/devices/selected"


async def _request_types(server: Server, udid: str) -> list[str]:
    commands = await server.services.storage.device_commands(udid, datetime.now(UTC))
    return sorted(c.request_type for c in commands)


async def _audit(server: Server) -> set[tuple[str, str, str, tuple[str, ...], object]]:
    entries = await server.services.storage.audit_entries(AuditQuery())
    return {
        (e.actor, e.action, e.outcome.value, tuple(e.targets), e.detail.get("request_type"))
        for e in entries
    }


async def _post(client: httpx.AsyncClient, token: str, **fields: object) -> httpx.Response:
    return await client.post(SELECTED, data={"csrf_token": token, **fields})


async def test_an_operator_locks_the_ticked_devices(server: Server) -> None:
    udids = await enrolled_fleet(server, 3, "UDID-BULK")
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = (await client.get("/console/devices")).text
        assert f'action="{SELECTED}"' in page
        assert page.count('type="checkbox" form="selection" name="udid"') == 3
        assert '<label for="pick-1" class="visually-hidden">Select Phone 000</label>' in page
        assert '<option value="lock">Lock</option>' in page
        assert 'value="erase"' not in page  # an operator is offered no erase
        locked = await _post(client, token, udid=udids[:2], action="lock", message="Call IT")
        assert locked.status_code == 303
        command_uuid = locked.headers["location"].removeprefix("/console/commands/")
        shown = await client.get(locked.headers["location"])
    assert shown.status_code == 200
    assert "DeviceLock" in shown.text
    assert shown.text.count('href="/console/devices/UDID-BULK-') == 2
    assert [await _request_types(server, u) for u in udids] == [["DeviceLock"], ["DeviceLock"], []]
    entries = await server.services.storage.audit_entries(AuditQuery(action="command.queue"))
    assert [(e.actor, e.targets, e.detail) for e in entries] == [
        ("olga", tuple(udids[:2]),
         {"request_type": "DeviceLock", "params": ["Message"], "command_uuid": command_uuid,
          "devices": 2}),
    ]  # fmt: skip


async def test_every_device_on_the_page_is_queried_without_script(server: Server) -> None:
    udids = await enrolled_fleet(server, 3, "UDID-PAGE")
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = (await client.get("/console/devices", params={"q": "UDID-PAGE-00"})).text
        on_page = re.findall(r'name="page_udid" value="([^"]+)"', page)
        assert on_page == udids
        # Nothing ticked: "every device on this page" sends the page's own list.
        queried = await _post(client, token, page_udid=on_page, all_on_page="1", action="query")
        assert (queried.status_code, queried.headers["location"]) == (303, "/console/commands")
    inventory = sorted(["DeviceInformation", "SecurityInfo", "InstalledApplicationList",
                        "CertificateList", "ProfileList"])  # fmt: skip
    assert [await _request_types(server, u) for u in udids] == [inventory] * 3


async def test_a_viewer_gets_no_form_and_a_forged_post_is_refused(server: Server) -> None:
    udids = await enrolled_fleet(server, 2, "UDID-VIEW")
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        page = (await client.get("/console/devices")).text
        assert "Phone 000" in page
        assert 'type="checkbox"' not in page
        assert SELECTED not in page
        for action in ("lock", "query", "push"):
            forged = await _post(client, token, udid=udids, action=action)
            assert forged.status_code == 403, action
            assert "needs operator" in forged.text
    assert [await _request_types(server, u) for u in udids] == [[], []]
    assert ("vera", "devices.lock", "denied", (SELECTED,), None) in await _audit(server)


async def test_an_operator_may_not_erase_a_selection(server: Server) -> None:
    udids = await enrolled_fleet(server, 2, "UDID-NOERASE")
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        for action in ("erase", "clear_passcode"):
            refused = await _post(client, token, udid=udids, action=action,
                                  confirm="ERASE 2 devices")  # fmt: skip
            assert (refused.status_code, "needs admin" in refused.text) == (403, True)
    assert [await _request_types(server, u) for u in udids] == [[], []]
    recorded = await _audit(server)
    assert ("olga", "devices.erase", "denied", (SELECTED,), None) in recorded
    assert ("olga", "devices.clear_passcode", "denied", (SELECTED,), None) in recorded


async def test_erasing_several_needs_their_count_typed(server: Server) -> None:
    udids = await enrolled_fleet(server, 3, "UDID-WIPE")
    await add_account(server, "ada", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ada")
        page = (await client.get("/console/devices")).text
        assert "<strong>ERASE 3 devices</strong> for every device on this page" in page
        for typed in ("", "ERASE 3 devices", "erase 2 devices", "Phone 000"):
            wrong = await _post(client, token, udid=udids[:2], action="erase", confirm=typed)
            assert wrong.status_code == 422, typed
            assert "To erase, type: ERASE 2 devices. Nothing was sent." in wrong.text
        assert [await _request_types(server, u) for u in udids] == [[], [], []]
        erased = await _post(client, token, udid=udids[:2], action="erase",
                             confirm="ERASE  2 devices ")  # fmt: skip
        assert erased.status_code == 303
        assert erased.headers["location"].startswith("/console/commands/")
        one = await _post(client, token, udid=udids[2], action="erase", confirm="ERASE 1 device")
        assert one.status_code == 303
    assert [await _request_types(server, u) for u in udids] == [["EraseDevice"]] * 3
    recorded = await _audit(server)
    assert ("ada", "command.queue", "failed", tuple(udids[:2]), "EraseDevice") in recorded
    assert ("ada", "command.queue", "ok", tuple(udids[:2]), "EraseDevice") in recorded


async def test_clear_passcode_and_push_for_several(server: Server) -> None:
    udids = await enrolled_fleet(server, 2, "UDID-CLEAR")
    no_token = await server.device("UDID-CLEAR-NOTOKEN", 392)
    assert (await server.checkin(no_token, "Authenticate", Topic="com.apple.mgmt.t")).is_success
    await add_account(server, "ada", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ada")
        refused = await _post(client, token, udid=[*udids, no_token.udid], action="clear_passcode")
        assert (refused.status_code, "UDID-CLEAR-NOTOKEN" in refused.text) == (409, True)
        not_pushed = await _post(client, token, udid=[*udids, no_token.udid], action="push")
        assert (not_pushed.status_code, "Not enrolled" in not_pushed.text) == (409, True)
        assert [await _request_types(server, u) for u in udids] == [[], []]
        cleared = await _post(client, token, udid=udids, action="clear_passcode")
        assert (cleared.status_code, cleared.headers["location"]) == (303, "/console/commands")
        pushed = await _post(client, token, udid=udids, action="push")
        assert pushed.headers["location"] == "/console/devices?done=pushed+2+devices"
        assert "Done: pushed 2 devices." in (await client.get(pushed.headers["location"])).text
    assert [await _request_types(server, u) for u in udids] == [["ClearPasscode"]] * 2
    recorded = await _audit(server)
    assert ("ada", "device.push", "ok", tuple(udids), None) in recorded
    for udid in udids:  # each its own UnlockToken: one command per device
        assert ("ada", "command.queue", "ok", (udid,), "ClearPasscode") in recorded


async def test_bad_selections_are_refused_and_nothing_is_queued(server: Server) -> None:
    udids = await enrolled_fleet(server, 1, "UDID-KNOWN")
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        unknown = await _post(client, token, udid=[udids[0], "NOPE-1", "NOPE-2"], action="lock")
        assert unknown.status_code == 422
        assert "There is no device NOPE-1, NOPE-2. Nothing was sent" in unknown.text
        many = [f"UDID-{n:04}" for n in range(1001)]
        too_many = await _post(client, token, udid=many, action="query")
        assert too_many.status_code == 422
        assert "1001 devices were selected; one action takes at most 1000" in too_many.text
        none = await _post(client, token, action="lock")
        assert (none.status_code, "No devices selected" in none.text) == (422, True)
        odd = await _post(client, token, udid=udids, action="self_destruct")
        assert (odd.status_code, "Choose one of: Query inventory" in odd.text) == (422, True)
        unforged = await client.post(SELECTED, data={"udid": udids, "action": "lock"})
        assert unforged.status_code == 403  # no CSRF token
    assert await _request_types(server, udids[0]) == []
    assert not await server.services.storage.audit_entries(AuditQuery(action="command.queue"))
