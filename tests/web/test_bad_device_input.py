"""Device bodies that once answered 500 (issue 10): each is now a 400 with a reason and a
log line, or is stored, and never breaks the API afterwards. Every body is signed by the
enrolled device's own identity, so the parsers are reached."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from orchardist.mdm.inventory import MAX_SIZE
from orchardist.storage import TargetStatus
from orchardist.tokens import create_api_token
from tests.web.mdm_server import CHECKIN, Device, Server
from tests.web.plists import Raw, deeply_nested, nested_xml, xml

pytestmark = pytest.mark.anyio
TOPIC = "com.apple.mgmt.t"


async def _enrolled(server: Server, udid: str, index: int) -> Device:
    device = await server.device(udid, index)
    await server.enroll(device)
    return device


async def _put(server: Server, device: Device, body: bytes, *, checkin: bool) -> httpx.Response:
    path, kind = (
        ("/mdm/checkin", CHECKIN) if checkin else ("/mdm/connect", "application/x-apple-aspen-mdm")
    )
    return await server.http.put(path, content=body, headers=device.headers(body, kind))


def _token_update(device: Device, **extra: Any) -> dict[str, Any]:
    return {
        "MessageType": "TokenUpdate",
        "UDID": device.udid,
        "Topic": TOPIC,
        "Token": b"\x01" * 32,
        "PushMagic": "M",
        **extra,
    }


async def _refused(server: Server, device: Device, body: bytes, checkin: bool, why: str) -> None:
    with capture_logs() as logs:
        response = await _put(server, device, body, checkin=checkin)
    assert (response.status_code, why in response.text) == (400, True), response.text
    refusal = next(line for line in logs if line["event"] == "mdm_refused")
    assert why in refusal["reason"]
    assert not [line for line in logs if line["log_level"] in ("error", "critical")]


@pytest.mark.parametrize("checkin", [False, True], ids=["connect", "checkin"])
async def test_a_malformed_date_is_a_400(server: Server, checkin: bool) -> None:
    device = await _enrolled(server, "UDID-DATE", 120)
    bad = Raw("<date>x</date>")
    fields = (
        _token_update(device, When=bad)
        if checkin
        else {"Status": "Idle", "UDID": device.udid, "When": bad}
    )
    await _refused(server, device, xml(fields), checkin, "malformed plist")
    # Nothing was spoiled: the same device carries on.
    assert (await server.report(device, "Idle")).status_code == 200


@pytest.mark.parametrize("checkin", [False, True], ids=["connect", "checkin"])
async def test_binary_nesting_past_the_stack_is_a_400(server: Server, checkin: bool) -> None:
    device = await _enrolled(server, "UDID-DEEP", 121)
    fields = (
        {"MessageType": "CheckOut", "UDID": device.udid, "Topic": TOPIC}
        if checkin
        else {"Status": "Idle", "UDID": device.udid}
    )
    body = deeply_nested(fields, "Deep", 3000)
    await _refused(server, device, body, checkin, "nested deeper than 64 levels")
    enrollment = await server.services.storage.get_enrollment(device.udid)
    assert enrollment is not None
    assert enrollment.enrolled  # the CheckOut was not acted on


@pytest.mark.parametrize("checkin", [False, True], ids=["connect", "checkin"])
async def test_an_unknown_xml_encoding_is_a_400(server: Server, checkin: bool) -> None:
    device = await _enrolled(server, "UDID-ENC", 122)
    fields = _token_update(device) if checkin else {"Status": "Idle", "UDID": device.udid}
    body = xml(fields, encoding="U683TF-8")
    await _refused(server, device, body, checkin, "unknown encoding: U683TF-8")


async def _api(server: Server) -> dict[str, str]:
    token = await create_api_token(server.services.storage, "bad-input", "admin")
    return {"Authorization": f"Bearer {token}"}


def _nested_answer(device: Device, command_uuid: str) -> bytes:
    """A DeviceInformation answer with a value nested 1,200 arrays deep."""
    fields = {"Status": "Acknowledged", "UDID": device.udid, "CommandUUID": command_uuid}
    return xml({**fields, "QueryResponses": {"DeviceName": nested_xml(1200)}})


async def _asked(server: Server, udid: str, index: int) -> tuple[Device, dict[str, str], str]:
    """An enrolled device that was sent DeviceInformation, and an admin's headers."""
    device = await _enrolled(server, udid, index)
    command_uuid = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, device)
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["CommandUUID"] == command_uuid
    return device, await _api(server), command_uuid


async def test_a_result_nested_too_deep_is_refused_and_the_api_keeps_working(
    server: Server,
) -> None:
    device, admin, command_uuid = await _asked(server, "UDID-NEST", 123)
    await _refused(server, device, _nested_answer(device, command_uuid), False, "nested deeper")
    history = await server.http.get(f"/api/v1/devices/{device.udid}/commands", headers=admin)
    assert history.status_code == 200
    assert [(c["status"], c["result"]) for c in history.json()] == [("sent", None)]
    # The device answers again, properly: that is stored.
    fine = await server.report(
        device,
        "Acknowledged",
        CommandUUID=command_uuid,
        QueryResponses={"DeviceName": "Kim's iPhone"},
    )
    assert fine.status_code == 200
    history = await server.http.get(f"/api/v1/devices/{device.udid}/commands", headers=admin)
    assert history.json()[0]["result"]["QueryResponses"] == {"DeviceName": "Kim's iPhone"}


async def test_a_deep_result_stored_before_the_fix_does_not_break_the_api(
    server: Server,
) -> None:
    device, admin, command_uuid = await _asked(server, "UDID-OLD", 124)
    # What an earlier version stored as it came (the parser did not bound depth then).
    raw = _nested_answer(device, command_uuid)
    stored = (command_uuid, TargetStatus.ACKNOWLEDGED, raw)
    await server.services.storage.exchange(device.udid, stored, datetime.now(UTC))
    for path in (f"/api/v1/devices/{device.udid}/commands", f"/api/v1/commands/{command_uuid}"):
        response = await server.http.get(path, headers=admin)
        assert response.status_code == 200, path
    history = (
        await server.http.get(f"/api/v1/devices/{device.udid}/commands", headers=admin)
    ).json()
    assert history[0]["result"] == {"unreadable": True}


async def test_a_bundle_size_past_64_bits_signed_is_clamped_and_the_list_kept(
    server: Server,
) -> None:
    device = await _enrolled(server, "UDID-APPS", 125)
    admin = await _api(server)
    command_uuid = await server.queue("InstalledApplicationList", {}, device)
    await server.report(device, "Idle")
    apps = [
        {"Identifier": "com.example.huge", "Name": "Huge", "BundleSize": 2**64 - 1},
        {"Identifier": "com.example.mail", "Name": "Mail", "Version": "2", "BundleSize": 4096},
        {"Identifier": "com.example.odd", "Name": "Odd", "BundleSize": -1},
    ]
    answer = await server.report(
        device, "Acknowledged", CommandUUID=command_uuid, InstalledApplicationList=apps
    )
    assert answer.status_code == 200
    shown = (await server.http.get(f"/api/v1/devices/{device.udid}", headers=admin)).json()
    stored = {
        app["identifier"]: (app["name"], app["bundle_size"]) for app in shown["inventory"]["apps"]
    }
    # Clamped to the largest size storage holds (2^63 - 1); a negative size is no size.
    assert stored == {
        "com.example.huge": ("Huge", MAX_SIZE),
        "com.example.mail": ("Mail", 4096),
        "com.example.odd": ("Odd", None),
    }
    assert MAX_SIZE == 2**63 - 1
