"""The audit log over the API: every change through /api/v1 is recorded (who, what, targets,
outcome), refusals too; GET /api/v1/audit filters and pages, newest first, for admins only;
no secret ever reaches an entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchardist.config import load_settings
from orchardist.profiles import envelope
from orchardist.profiles.spec import build_profile
from orchardist.tokens import create_api_token
from orchardist.web.api.audited import spec_of
from orchardist.web.app import create_app
from tests.web.mdm_server import Server
from tests.web.test_api_docs import _api_routes

pytestmark = pytest.mark.anyio
WIFI_SECRET = "audit-wifi-secret-42"


async def _headers(server: Server, name: str, role: str) -> dict[str, str]:
    token = await create_api_token(server.services.storage, name, role)
    return {"Authorization": f"Bearer {token}"}


async def _entries(server: Server, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    answer = await server.http.get("/api/v1/audit", params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()
    return entries


def _wifi_profile(server: Server, tmp_path: Path) -> bytes:
    spec = {"identifier": "com.example.audit", "name": "Audit Wi-Fi",
            "payloads": [{"type": "wifi", "SSID_STR": "Office", "EncryptionType": "WPA2",
                          "Password": WIFI_SECRET}]}  # fmt: skip
    return envelope.serialize(build_profile(spec, base_dir=tmp_path, env={}))


async def test_changes_are_recorded_with_token_action_targets_and_outcome(
    server: Server, tmp_path: Path
) -> None:
    admin = await _headers(server, "ci-admin", "admin")
    operator = await _headers(server, "helpdesk", "operator")
    for n in range(2):
        await server.enroll(await server.device(f"UDID-{n}", 300 + n))

    sent = await server.http.post("/api/v1/commands", headers=operator, json={
        "request_type": "DeviceLock", "params": {"Message": "Call IT"},
        "targets": ["UDID-0", "UDID-1"]})  # fmt: skip
    assert sent.status_code == 201
    pushed = await server.http.post("/api/v1/devices/UDID-0/push", headers=operator)
    assert pushed.status_code == 202
    grouped = await server.http.put("/api/v1/groups/sales", headers=operator,
                                    json={"devices": ["UDID-1"]})  # fmt: skip
    assert grouped.status_code == 200
    unknown = await server.http.post("/api/v1/devices/NOPE/push", headers=operator)
    assert unknown.status_code == 404
    unconfirmed = await server.http.post("/api/v1/devices/UDID-1/retire", headers=admin, json={})
    assert unconfirmed.status_code == 422

    entries = await _entries(server, admin)
    seen = [(e["actor"], e["via"], e["action"], e["targets"], e["outcome"]) for e in entries]
    assert seen == [
        ("ci-admin", "api", "device.retire", ["UDID-1"], "failed"),
        ("helpdesk", "api", "device.push", ["NOPE"], "failed"),
        ("helpdesk", "api", "group.set", ["group:sales", "UDID-1"], "ok"),
        ("helpdesk", "api", "device.push", ["UDID-0"], "ok"),
        ("helpdesk", "api", "command.queue", ["UDID-0", "UDID-1"], "ok"),
    ]
    retire, missing, _, _, command = entries
    assert "confirm" in retire["reason"]
    assert missing["reason"] == "no device NOPE"
    assert command["reason"] is None
    uuid = sent.json()["command_uuid"]
    assert command["detail"] == {"request_type": "DeviceLock", "params": ["Message"],
                                 "command_uuid": uuid, "devices": 2}  # fmt: skip
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert all(e["at"].endswith(("Z", "+00:00")) for e in entries)


async def test_a_viewer_posting_a_command_is_denied_and_recorded(server: Server) -> None:
    admin = await _headers(server, "root", "admin")
    viewer = await _headers(server, "dashboard", "viewer")
    refused = await server.http.post("/api/v1/commands", headers=viewer, json={
        "request_type": "EraseDevice", "params": {"PIN": "123456"}, "targets": {"all": True},
        "confirm": True})  # fmt: skip
    assert refused.status_code == 403
    (entry,) = await _entries(server, admin)
    assert (entry["actor"], entry["action"], entry["targets"], entry["outcome"]) == (
        "dashboard", "command.queue", ["all"], "denied"
    )  # fmt: skip
    assert "viewer" in entry["reason"]
    assert entry["detail"] == {"request_type": "EraseDevice", "params": ["PIN"]}
    assert "123456" not in json.dumps(entry)
    nobody = await server.http.post("/api/v1/commands", json={"targets": []})
    assert nobody.status_code == 401  # nobody known asked: nothing recorded
    assert len(await _entries(server, admin)) == 1


async def test_an_operator_erasing_is_denied_and_recorded(server: Server) -> None:
    """The route lets an operator queue commands; EraseDevice's own rule refuses it."""
    admin = await _headers(server, "root", "admin")
    operator = await _headers(server, "helpdesk", "operator")
    await server.enroll(await server.device("UDID-E", 320))
    refused = await server.http.post("/api/v1/commands", headers=operator, json={
        "request_type": "EraseDevice", "targets": ["UDID-E"], "confirm": True})  # fmt: skip
    assert refused.status_code == 403
    assert await server.services.storage.device_commands("UDID-E", datetime.now(UTC)) == []
    (entry,) = await _entries(server, admin)
    assert (entry["actor"], entry["action"], entry["targets"], entry["outcome"]) == (
        "helpdesk", "command.queue", ["UDID-E"], "denied"
    )  # fmt: skip
    assert "admin" in entry["reason"]


async def test_a_profile_upload_keeps_no_secret(server: Server, tmp_path: Path) -> None:
    admin = await _headers(server, "root", "admin")
    data = _wifi_profile(server, tmp_path)
    assert WIFI_SECRET.encode() in data
    stored = await server.http.post("/api/v1/profiles", content=data, headers=admin)
    assert stored.status_code == 201
    rejected = await server.http.post("/api/v1/profiles", content=b"<plist>x", headers=admin)
    assert rejected.status_code == 422
    wanted = {"devices": ["NOPE"], "groups": ["sales"], "all": True}
    assigned = await server.http.post("/api/v1/profiles/com.example.audit/assignments",
                                      json=wanted, headers=admin)  # fmt: skip
    assert assigned.status_code == 422
    entries = await _entries(server, admin)
    assert WIFI_SECRET not in json.dumps(entries)
    assign, bad, upload = entries
    assert (upload["action"], upload["targets"], upload["outcome"]) == (
        "profile.upload", ["com.example.audit"], "ok"
    )  # fmt: skip
    assert upload["detail"] == {"version": 1, "unchanged": False,
                                "payload_types": ["com.apple.wifi.managed"]}  # fmt: skip
    assert (bad["action"], bad["targets"], bad["outcome"]) == ("profile.upload", [], "failed")
    assert (assign["targets"], assign["outcome"]) == (
        ["com.example.audit", "NOPE", "group:sales", "all"], "failed"
    )  # fmt: skip
    assert "NOPE" in assign["reason"]


async def test_filters_and_pages_newest_first(server: Server) -> None:
    admin = await _headers(server, "root", "admin")
    operator = await _headers(server, "ops", "operator")
    for n in range(5):
        await server.http.post(f"/api/v1/devices/U{n}/push", headers=operator)
    await server.http.put("/api/v1/groups/g", headers=admin, json={"devices": []})

    assert [e["targets"] for e in await _entries(server, admin, actor="ops", limit=2)] == [
        ["U4"], ["U3"]
    ]  # fmt: skip
    first = await server.http.get("/api/v1/audit", params={"limit": 2}, headers=admin)
    assert [e["action"] for e in first.json()] == ["group.set", "device.push"]
    following = first.headers["link"].split(";")[0].strip("<>")
    second = await server.http.get(following, headers=admin)
    assert [e["targets"] for e in second.json()] == [["U3"], ["U2"]]
    last = await _entries(server, admin, before=second.json()[-1]["id"])
    assert [e["targets"] for e in last] == [["U1"], ["U0"]]
    assert len(await _entries(server, admin, action="device.push")) == 5
    assert [e["actor"] for e in await _entries(server, admin, target="group:g")] == ["root"]
    assert len(await _entries(server, admin, outcome="failed")) == 5  # no such devices
    assert await _entries(server, admin, outcome="denied") == []
    assert len(await _entries(server, admin, since="2000-01-01T00:00:00")) == 6  # naive: UTC
    assert await _entries(server, admin, until="2000-01-01T00:00:00Z") == []
    combined = await _entries(server, admin, actor="ops", action="device.push", target="U2")
    assert [e["targets"] for e in combined] == [["U2"]]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"before": "0"},
        {"before": str(2**63)},
        {"before": "-1"},
        {"outcome": "maybe"},
        {"since": "yesterday"},
        {"until": "2026-13-40"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
        {"actor": "x" * 256},
        {"target": "a\x00b"},
    ],
)
async def test_bad_query_values_are_422(server: Server, query: dict[str, str]) -> None:
    admin = await _headers(server, "root", "admin")
    answer = await server.http.get("/api/v1/audit", params=query, headers=admin)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_only_admins_read_the_audit_log(server: Server, role: str) -> None:
    headers = await _headers(server, f"a-{role}", role)
    answer = await server.http.get("/api/v1/audit", headers=headers)
    assert answer.status_code == 403
    assert "admin" in answer.json()["detail"]


def test_every_state_changing_route_names_its_action(tmp_path: Path) -> None:
    """A route added later that changes something must say what it records."""
    app = create_app(load_settings(tmp_path))
    changing = [(m, p, r) for m, p, r in _api_routes(app) if m != "get"]
    assert len(changing) >= 9
    for method, path, route in changing:
        assert spec_of(route.endpoint) is not None, f"{method.upper()} {path} is not @audited"
