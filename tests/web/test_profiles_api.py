"""/api/v1/profiles and /api/v1/groups: upload, list, show (no secrets), assign, status,
unassign, delete; bad uploads refused with every problem named."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from orchardist.profiles import envelope
from orchardist.profiles.spec import build_profile
from orchardist.tokens import create_api_token
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
SECRET = "api-wifi-secret"


async def _token(server: Server, role: str = "admin") -> dict[str, str]:
    token = await create_api_token(server.services.storage, f"test-{role}", role)
    return {"Authorization": f"Bearer {token}"}


def _signed_profile(server: Server, tmp_path: Path) -> bytes:
    spec = {"identifier": "com.example.wifi", "name": "Office Wi-Fi",
            "payloads": [{"type": "wifi", "SSID_STR": "Office", "EncryptionType": "WPA2",
                          "Password": {"env": "PW"}}]}  # fmt: skip
    profile = build_profile(spec, base_dir=tmp_path, env={"PW": SECRET})
    cert, key = server.services.ca.issue_server_certificate("signer.test")
    return envelope.sign(envelope.serialize(profile), cert, key)


async def test_upload_assign_follow_unassign(server: Server, tmp_path: Path) -> None:
    admin, viewer = await _token(server), await _token(server, "viewer")
    devices = [await server.device(f"UDID-{n}", 180 + n) for n in range(2)]
    for device in devices:
        await server.enroll(device)
    data = _signed_profile(server, tmp_path)
    refused = await server.http.post("/api/v1/profiles", content=data, headers=viewer)
    assert refused.status_code == 403
    created = await server.http.post("/api/v1/profiles", content=data, headers=admin)
    assert (created.status_code, created.json()) == (
        201, {"identifier": "com.example.wifi", "version": 1, "installs": 0, "unchanged": False}
    )  # fmt: skip
    listed = (await server.http.get("/api/v1/profiles", headers=viewer)).json()
    assert [(p["identifier"], p["latest_version"], p["payload_types"]) for p in listed] == [
        ("com.example.wifi", 1, ["com.apple.wifi.managed"])
    ]
    shown = await server.http.get("/api/v1/profiles/com.example.wifi", headers=viewer)
    assert SECRET not in shown.text
    assert shown.json()["assignments"] == {"device": [], "group": [], "all": []}

    group = await server.http.put("/api/v1/groups/sales", json={"devices": ["UDID-1"]},
                                  headers=admin)  # fmt: skip
    assert group.status_code == 200
    assigned = await server.http.post(
        "/api/v1/profiles/com.example.wifi/assignments",
        json={"devices": ["UDID-0"], "groups": ["sales"]}, headers=admin,
    )  # fmt: skip
    assert assigned.json() == {"installs": 2, "removals": 0, "scheduled": 0, "skipped": []}
    status = (
        await server.http.get("/api/v1/profiles/com.example.wifi/status", headers=viewer)
    ).json()
    assert [(s["udid"], s["state"], s["overdue"]) for s in status] == [
        ("UDID-0", "pending", False), ("UDID-1", "pending", False)
    ]  # fmt: skip
    sent = plistlib.loads((await server.report(devices[0], "Idle")).content)
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"])
    status = (
        await server.http.get("/api/v1/profiles/com.example.wifi/status", headers=viewer)
    ).json()
    assert status[0]["state"] == "installed"
    assert status[0]["installed_version"] == 1

    # The same profile again (signed afresh: other bytes, same content): nothing new.
    again = await server.http.post("/api/v1/profiles", content=_signed_profile(server, tmp_path),
                                   headers=admin)  # fmt: skip
    assert (again.status_code, again.json()) == (
        200, {"identifier": "com.example.wifi", "version": 1, "installs": 0, "unchanged": True}
    )  # fmt: skip
    assert (await server.report(devices[0], "Idle")).content == b""  # no reinstall
    listed = (await server.http.get("/api/v1/profiles", headers=viewer)).json()
    assert [p["latest_version"] for p in listed] == [1]

    removed = await server.http.request(
        "DELETE", "/api/v1/profiles/com.example.wifi/assignments",
        json={"devices": ["UDID-0"]}, headers=admin,
    )  # fmt: skip
    assert removed.json()["removals"] == 1
    gone = await server.http.delete("/api/v1/profiles/com.example.wifi", headers=admin)
    assert gone.json()["removals"] == 1  # UDID-1 loses it with the profile
    assert (await server.http.get("/api/v1/profiles", headers=viewer)).json() == []
    assert (await server.http.get("/api/v1/groups", headers=viewer)).json() == {"sales": ["UDID-1"]}


async def test_bad_uploads(server: Server) -> None:
    admin = await _token(server)
    bad = plistlib.dumps({
        "PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "x",
        "PayloadUUID": "U", "PayloadContent": [{
            "PayloadType": "com.apple.webClip.managed", "PayloadVersion": "1",
            "PayloadIdentifier": "x.clip", "PayloadUUID": "V", "Label": "L"}],
    })  # fmt: skip
    refused = await server.http.post("/api/v1/profiles", content=bad, headers=admin)
    assert refused.status_code == 422
    problems = refused.json()["detail"]["problems"]
    assert "PayloadContent[0].URL: is required" in problems
    assert "PayloadContent[0].PayloadVersion: must be an integer, not string" in problems
    garbage = await server.http.post("/api/v1/profiles", content=b"\x30\x03\x02\x01", headers=admin)
    assert garbage.status_code == 422
    assert "signature does not verify" in garbage.json()["detail"]["problems"][0]
    huge = await server.http.post("/api/v1/profiles", content=b"x" * (4 * 1024 * 1024 + 1),
                                  headers=admin)  # fmt: skip
    assert huge.status_code == 413
    missing = await server.http.post("/api/v1/profiles/nope/assignments", json={"all": True},
                                     headers=admin)  # fmt: skip
    assert missing.status_code == 404
    unknown = await server.http.put("/api/v1/groups/g", json={"devices": ["NOPE"]}, headers=admin)
    assert unknown.status_code == 422
    assert (await server.http.get("/api/v1/profiles", headers=admin)).json() == []
