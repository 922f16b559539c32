"""The console's commands on the real app: recent commands with the storage's counts, a
command's page with each device's answer (escaped), and Cancel pending — shown to and done
by an operator, recorded as command.cancel; a viewer sees no button and a forged POST is
refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from orchardist.audit import AuditQuery, Outcome
from tests.web.console import add_account, browser, page_as, signed_in
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert("x")</script>'


async def _lock_three(server: Server) -> tuple[list[Device], str]:
    devices = [await server.device(f"UDID-CMD-{n}", 395 + n) for n in range(3)]
    for device in devices:
        await server.enroll(device)
    command_uuid = await server.queue("DeviceLock", {}, *devices)
    await server.report(devices[0], "Idle")
    await server.report(devices[0], "Error", CommandUUID=command_uuid,
                        ErrorChain=[{"LocalizedDescription": HOSTILE, "ErrorCode": 1}])  # fmt: skip
    return devices, command_uuid


def _count(html: str, status: str) -> int:
    found = re.search(rf'<dd id="count-{status}">(\d+)</dd>', html)
    assert found is not None, status
    return int(found[1])


async def test_a_viewer_reads_and_may_not_cancel(server: Server) -> None:
    _, command_uuid = await _lock_three(server)
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        listed = await client.get("/console/commands")
        device = await client.get("/console/devices/UDID-CMD-0")
        page = await client.get(f"/console/commands/{command_uuid}")
        forged = await client.post(
            f"/console/commands/{command_uuid}/cancel", data={"csrf_token": token}
        )
    assert f'href="/console/commands/{command_uuid}"' in listed.text
    assert f'href="/console/commands/{command_uuid}"' in device.text  # the device's history
    row = listed.text.split(f'id="command-{command_uuid}"')[1].split("</tr>")[0]
    assert '<td class="count-waiting">2</td>' in row
    assert '<td class="count-error">1</td>' in row
    counts = await server.services.storage.command_counts(command_uuid, datetime.now(UTC))
    for status, count in counts.items():
        assert _count(page.text, status) == count
    assert "<script>alert" not in page.text
    assert "&amp;lt;script&amp;gt;alert" in page.text  # the plist's XML, escaped again
    assert "/cancel" not in page.text
    assert forged.status_code == 403
    assert (await server.services.storage.command_counts(command_uuid, datetime.now(UTC))) == counts


async def test_an_operator_cancels_what_is_pending(server: Server) -> None:
    devices, command_uuid = await _lock_three(server)
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = await client.get(f"/console/commands/{command_uuid}")
        assert f'action="/console/commands/{command_uuid}/cancel"' in page.text
        assert "Cancel pending (2)" in page.text
        done = await client.post(
            f"/console/commands/{command_uuid}/cancel", data={"csrf_token": token}
        )
        assert done.headers["location"] == f"/console/commands/{command_uuid}?done=2"
        after = await client.get(done.headers["location"])
        unknown = await client.post("/console/commands/NO-SUCH/cancel", data={"csrf_token": token})
    assert (_count(after.text, "cancelled"), _count(after.text, "error")) == (2, 1)
    assert "Cancel pending" not in after.text
    assert unknown.status_code == 404
    for device in devices[1:]:
        assert (await server.report(device, "Idle")).content == b""  # never offered now
    entries = await server.services.audit.entries(AuditQuery(action="command.cancel"))
    assert [(e.actor, e.targets, e.outcome, e.detail) for e in entries] == [
        ("olga", (command_uuid,), Outcome.OK, {"cancelled": 2})
    ]


async def test_an_unknown_command_is_a_404_page(server: Server) -> None:
    page = await page_as(server, "vera", "viewer", "/console/commands/NO-SUCH")
    assert (page.status_code, "There is no command NO-SUCH" in page.text) == (404, True)


async def test_a_broken_page_link_is_a_422(server: Server) -> None:
    page = await page_as(server, "vera", "viewer", "/console/commands?at=yesterday&before=X")
    assert (page.status_code, "ISO 8601" in page.text) == (422, True)
