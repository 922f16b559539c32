"""/api/v1: tokens and roles, devices, commands, 422s naming the key, OpenAPI."""

from __future__ import annotations

import base64
import plistlib
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.pki.store import PkiFiles
from orchardist.storage import PushDone
from orchardist.tokens import create_api_token
from tests.captures import capture
from tests.keys import rsa_key
from tests.push.test_certificate import TOPIC, push_certificate
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


async def _token(server: Server, role: str = "admin") -> dict[str, str]:
    token = await create_api_token(server.services.storage, f"test-{role}", role)
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_are_required_and_roles_apply(server: Server) -> None:
    assert (await server.http.get("/api/v1/devices")).status_code == 401
    bad = await server.http.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.headers["www-authenticate"]) == (401, "Bearer")
    viewer = await _token(server, "viewer")
    assert (await server.http.get("/api/v1/devices", headers=viewer)).json() == []
    body = {"request_type": "DeviceLock", "targets": {"all": True}}
    refused = await server.http.post("/api/v1/commands", json=body, headers=viewer)
    assert refused.status_code == 403


async def test_lock_every_device_and_follow_the_results(server: Server) -> None:
    admin = await _token(server)
    devices = [await server.device(f"UDID-{n}", 90 + n) for n in range(3)]
    for device in devices:
        await server.enroll(device)
    listed = (await server.http.get("/api/v1/devices", headers=admin)).json()
    assert [(d["udid"], d["serial_number"], d["os_version"], d["enrolled"]) for d in listed] == [
        (f"UDID-{n}", "S1", "18.1", True) for n in range(3)
    ]
    body = {"request_type": "DeviceLock", "params": {"Message": "Lost"}, "targets": {"all": True}}
    queued = await server.http.post("/api/v1/commands", json=body, headers=admin)
    assert queued.status_code == 201
    command_uuid = queued.json()["command_uuid"]
    assert queued.json()["targets"] == 3

    sent = plistlib.loads((await server.report(devices[0], "Idle")).content)
    assert sent["CommandUUID"] == command_uuid
    await server.report(
        devices[0], "Acknowledged", CommandUUID=command_uuid, MessageResult="Success"
    )
    detail = (await server.http.get(f"/api/v1/commands/{command_uuid}", headers=admin)).json()
    states = {t["udid"]: (t["status"], t["result"]) for t in detail["targets"]}
    assert detail["request_type"] == "DeviceLock"
    assert states["UDID-0"][0] == "acknowledged"
    assert states["UDID-0"][1]["MessageResult"] == "Success"
    assert states["UDID-1"] == ("queued", None)
    # No push certificate here: nothing was pushed, two still wait for their check-in.
    assert detail["counts"] == {
        "queued": 2, "pushed": 0, "sent": 0, "acknowledged": 1, "error": 0, "not_now": 0,
        "expired": 0, "cancelled": 0,
    }  # fmt: skip
    page = await server.http.get(
        f"/api/v1/commands/{command_uuid}", params={"limit": 2}, headers=admin
    )
    assert [t["udid"] for t in page.json()["targets"]] == ["UDID-0", "UDID-1"]
    assert sum(page.json()["counts"].values()) == 3  # counts cover every target
    following = page.headers["link"].split(">")[0].lstrip("<")
    assert following.startswith(f"/api/v1/commands/{command_uuid}/targets?")
    rest = (await server.http.get(following, headers=admin)).json()
    assert [t["udid"] for t in rest] == ["UDID-2"]
    history = (await server.http.get("/api/v1/devices/UDID-0/commands", headers=admin)).json()
    assert [h["command_uuid"] for h in history] == [command_uuid]
    shown = (await server.http.get("/api/v1/devices/UDID-0", headers=admin)).json()
    assert (shown["udid"], shown["topic"]) == ("UDID-0", "com.apple.mgmt.t")


async def test_data_parameters_travel_as_base64(server: Server) -> None:
    admin = await _token(server)
    device = await server.device("UDID-P", 95)
    await server.enroll(device)
    profile = b"<?xml version='1.0'?><plist><dict/></plist>"
    body = {
        "request_type": "InstallProfile",
        "params": {"Payload": base64.b64encode(profile).decode()},
        "targets": ["UDID-P"],
    }
    assert (await server.http.post("/api/v1/commands", json=body, headers=admin)).status_code == 201
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["Command"]["Payload"] == profile


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        (
            {"request_type": "DeviceLock", "params": {"Message": 5}},
            ["body", "params", "Message"],
            "must be a string",
        ),
        (
            {"request_type": "DeviceLock", "params": {"Mesage": "x"}},
            ["body", "params", "Mesage"],
            "not a key",
        ),
        ({"request_type": "InstallProfile"}, ["body", "params", "Payload"], "is required"),
        ({"request_type": "Nope"}, ["body", "request_type"], "unknown RequestType"),
        (
            {"request_type": "DeviceLok"},
            ["body", "request_type"],
            "unknown RequestType 'DeviceLok' (did you mean DeviceLock",
        ),
        ({"request_type": "EraseDevice"}, ["body", "confirm"], "cannot be undone"),
        (
            {"request_type": "DeviceLock", "targets": ["NEVER-SEEN"]},
            ["body", "targets"],
            "unknown device NEVER-SEEN",
        ),
        ({"request_type": "DeviceLock", "targets": "UDID"}, ["body", "targets"], ""),
    ],
)
async def test_invalid_commands_are_422_naming_the_key(
    server: Server, body: dict[str, object], loc: list[str], message: str
) -> None:
    admin = await _token(server)
    body = {"targets": {"all": True}, **body}
    response = await server.http.post("/api/v1/commands", json=body, headers=admin)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(error["loc"][: len(loc)] == loc and message in error["msg"] for error in errors), (
        errors
    )


async def test_confirmed_erase_is_queued(server: Server) -> None:
    admin = await _token(server)
    device = await server.device("UDID-X", 96)
    await server.enroll(device)
    body = {"request_type": "EraseDevice", "targets": ["UDID-X"], "confirm": True}
    assert (await server.http.post("/api/v1/commands", json=body, headers=admin)).json()[
        "targets"
    ] == 1


async def test_unknown_things_are_404(server: Server) -> None:
    admin = await _token(server)
    for path in ("/api/v1/devices/NOPE", "/api/v1/devices/NOPE/commands", "/api/v1/commands/NOPE"):
        assert (await server.http.get(path, headers=admin)).status_code == 404


async def test_openapi_document(server: Server) -> None:
    document = (await server.http.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/devices", "/api/v1/commands", "/api/v1/commands/{command_uuid}"} <= set(
        document["paths"]
    )
    assert "/scep" not in document["paths"]


async def test_inventory_from_query_results(server: Server) -> None:
    admin = await _token(server)
    device = await server.device("UDID-INV", 97)
    await server.enroll(device)
    certificate_list = plistlib.loads(
        capture("zentralopensource_zentral/tests/mdm/testdata/certificate_list.plist")
    )
    answers = {
        "CertificateList": {"CertificateList": certificate_list["CertificateList"]},
        "DeviceInformation": {
            "QueryResponses": {"OSVersion": "18.1", "SerialNumber": "S1", "ModelName": "iPhone"}
        },
    }
    for request_type, params in (
        ("CertificateList", {}),
        ("DeviceInformation", {"Queries": ["OSVersion"]}),
    ):
        body = {"request_type": request_type, "params": params, "targets": ["UDID-INV"]}
        assert (
            await server.http.post("/api/v1/commands", json=body, headers=admin)
        ).status_code == 201
    reply = await server.report(device, "Idle")
    while reply.content:
        sent = plistlib.loads(reply.content)
        reply = await server.report(
            device,
            "Acknowledged",
            CommandUUID=sent["CommandUUID"],
            **answers[sent["Command"]["RequestType"]],
        )
    shown = (await server.http.get("/api/v1/devices/UDID-INV", headers=admin)).json()
    inventory = shown["inventory"]
    assert inventory["facts"]["ModelName"] == "iPhone"
    assert shown["model_name"] == "iPhone"  # the listing follows the latest answer
    assert inventory["certificates"]
    assert all(c["not_after"] for c in inventory["certificates"])
    # The same presenter as `orchardist device show`.
    summary = shown["summary"]
    soon = datetime.now(UTC) + timedelta(days=30)
    expiring = [
        c["common_name"]
        for c in inventory["certificates"]
        if datetime.fromisoformat(c["not_after"]) <= soon
    ]
    assert [c["common_name"] for c in summary["expiring_certificates"]] == expiring
    assert (summary["battery_percent"], summary["app_count"]) == (None, 0)


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"priority": 10**12}, "priority"), ({"expires_in_seconds": 10**15}, "expires_in_seconds")],
)
async def test_out_of_range_numbers_are_422_not_500(
    server: Server, extra: dict[str, int], field: str
) -> None:
    admin = await _token(server)
    body = {"request_type": "DeviceLock", "targets": {"all": True}, **extra}
    response = await server.http.post("/api/v1/commands", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_push_certificate_in_the_api(server: Server) -> None:
    admin = await _token(server)
    missing = await server.http.get("/api/v1/pushcert", headers=admin)
    assert (missing.status_code, "pushcert csr" in missing.json()["detail"]) == (404, True)
    key = rsa_key(115)
    cert = push_certificate(key, days=20)
    PkiFiles.in_data_dir(server.services.settings.data_dir).save_push(cert, key)
    shown = (await server.http.get("/api/v1/pushcert", headers=admin)).json()
    assert (shown["topic"], shown["days_left"]) == (TOPIC, 19)
    assert "expires in 19 days" in shown["warning"]


async def test_push_a_device_by_hand(server: Server) -> None:
    admin, viewer = await _token(server), await _token(server, "viewer")
    enrolled, half = await server.device("UDID-P", 96), await server.device("UDID-H", 97)
    await server.enroll(enrolled)
    await server.checkin(half, "Authenticate", Topic="com.apple.mgmt.t")
    pushed = await server.http.post("/api/v1/devices/UDID-P/push", headers=admin)
    assert pushed.status_code == 202
    assert pushed.json() == {"udid": "UDID-P", "push_certificate": False}
    storage = server.services.storage
    assert await storage.push_backlog(datetime.now(UTC)) == 1
    assert (
        await server.http.post("/api/v1/devices/UDID-P/push", headers=viewer)
    ).status_code == 403
    unknown = await server.http.post("/api/v1/devices/NOPE/push", headers=admin)
    assert unknown.status_code == 404
    unenrolled = await server.http.post("/api/v1/devices/UDID-H/push", headers=admin)
    assert (unenrolled.status_code, "not enrolled" in unenrolled.json()["detail"]) == (409, True)
    # APNs said the token is dead: refused with why, until the device sends a new one.
    now = datetime.now(UTC)
    (claimed,) = await storage.claim_pushes(now, timedelta(seconds=60), 10)
    await storage.finish_pushes(
        claimed.claim, [PushDone("UDID-P", None, 0, token_invalid=True)], now
    )
    dead = await server.http.post("/api/v1/devices/UDID-P/push", headers=admin)
    assert (dead.status_code, "new token" in dead.json()["detail"]) == (409, True)
    shown = (await server.http.get("/api/v1/devices/UDID-P", headers=admin)).json()
    assert shown["push_token_invalid_at"] is not None
    await server.enroll(enrolled)  # Authenticate + TokenUpdate: a fresh token
    assert (await server.http.post("/api/v1/devices/UDID-P/push", headers=admin)).status_code == 202


async def test_invitations_through_the_api(server: Server) -> None:
    admin, viewer = await _token(server), await _token(server, "viewer")
    body = {"user": "alice", "email": "alice@example.com"}
    assert (
        await server.http.post("/api/v1/invitations", json=body, headers=viewer)
    ).status_code == 403
    sent = await server.http.post("/api/v1/invitations", json=body, headers=admin)
    assert sent.status_code == 201
    # No [smtp] here: the delivery failed, said so, and the link is still handed back.
    assert sent.json()["deliveries"] == [
        {"channel": "email", "address": "alice@example.com", "ok": False,
         "detail": "no email settings"}
    ]  # fmt: skip
    assert "/enroll?invite=" in sent.json()["link"]
    nothing = await server.http.post("/api/v1/invitations", json={"user": "x"}, headers=admin)
    assert nothing.status_code == 422
    (listed,) = (await server.http.get("/api/v1/invitations", headers=viewer)).json()
    assert (listed["user"], listed["email_status"]) == ("alice", "no email settings")
