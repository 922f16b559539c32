"""/api/v1 under the permission table: each route's rule, each command's own rule, token
expiry and revocation, and secrets a viewer never sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.accounts.permissions import HIDDEN, Permission
from orchardist.config import load_settings
from orchardist.tokens import create_api_token
from orchardist.web.api.auth import Requires
from orchardist.web.app import create_app
from tests.web.mdm_server import Server
from tests.web.test_api_docs import _api_routes, _calls
from tests.web.test_profiles_api import SECRET, _signed_profile

pytestmark = pytest.mark.anyio
P = Permission
# Every /api/v1 operation and the least it needs: a route added or changed shows up here.
EXPECTED = {
    ("GET", "/api/v1/devices"): P.READ,
    ("GET", "/api/v1/devices.csv"): P.READ,
    ("GET", "/api/v1/devices/{udid}"): P.READ,
    ("GET", "/api/v1/devices/{udid}/commands"): P.READ,
    ("POST", "/api/v1/commands"): P.COMMAND,  # and the command's own rule (below)
    ("GET", "/api/v1/commands"): P.READ,
    ("GET", "/api/v1/commands/{command_uuid}"): P.READ,
    ("GET", "/api/v1/commands/{command_uuid}/targets"): P.READ,
    ("POST", "/api/v1/devices/{udid}/push"): P.PUSH,
    ("POST", "/api/v1/devices/{udid}/retire"): P.RETIRE,
    ("POST", "/api/v1/invitations"): P.INVITE,
    ("GET", "/api/v1/invitations"): P.READ,
    ("GET", "/api/v1/pushcert"): P.READ,
    ("GET", "/api/v1/profiles"): P.READ,
    ("POST", "/api/v1/profiles"): P.PROFILE_EDIT,
    ("GET", "/api/v1/profiles/{identifier}"): P.READ,
    ("GET", "/api/v1/profiles/{identifier}/content"): P.PROFILE_CONTENTS,
    ("DELETE", "/api/v1/profiles/{identifier}"): P.PROFILE_EDIT,
    ("POST", "/api/v1/profiles/{identifier}/assignments"): P.PROFILE_ASSIGN,
    ("DELETE", "/api/v1/profiles/{identifier}/assignments"): P.PROFILE_ASSIGN,
    ("GET", "/api/v1/profiles/{identifier}/status"): P.READ,
    ("GET", "/api/v1/groups"): P.READ,
    ("PUT", "/api/v1/groups/{name}"): P.GROUPS_EDIT,
    ("GET", "/api/v1/audit"): P.AUDIT_READ,
    ("GET", "/api/v1/dashboard"): P.READ,
    ("POST", "/api/v1/commands/{command_uuid}/cancel"): P.CANCEL,
    ("GET", "/api/v1/apps"): P.READ,
    ("POST", "/api/v1/apps"): P.APPS_EDIT,
    ("GET", "/api/v1/apps/{bundle_id}"): P.READ,
    ("POST", "/api/v1/apps/{bundle_id}/versions"): P.APPS_EDIT,
    ("DELETE", "/api/v1/apps/{bundle_id}"): P.APPS_EDIT,
    ("POST", "/api/v1/apps/{bundle_id}/assignments"): P.APPS_ASSIGN,
    ("DELETE", "/api/v1/apps/{bundle_id}/assignments"): P.APPS_ASSIGN,
    ("GET", "/api/v1/apps/{bundle_id}/status"): P.READ,
    ("PUT", "/api/v1/apps/{bundle_id}/catalog"): P.APPS_EDIT,
    ("PUT", "/api/v1/apps/{bundle_id}/icon"): P.APPS_EDIT,
    ("DELETE", "/api/v1/apps/{bundle_id}/icon"): P.APPS_EDIT,
    ("POST", "/api/v1/apps/catalog-clip"): P.PROFILE_EDIT,
    ("GET", "/api/v1/provisioning-profiles"): P.READ,
    ("POST", "/api/v1/provisioning-profiles"): P.APPS_EDIT,
    ("GET", "/api/v1/provisioning-profiles/{uuid}"): P.READ,
    ("POST", "/api/v1/provisioning-profiles/{uuid}/assignments"): P.APPS_ASSIGN,
    ("DELETE", "/api/v1/provisioning-profiles/{uuid}/assignments"): P.APPS_ASSIGN,
    ("DELETE", "/api/v1/provisioning-profiles/{uuid}"): P.APPS_EDIT,
}


def test_every_route_asks_the_permission_table(tmp_path: Path) -> None:
    app = create_app(load_settings(tmp_path))
    found = {}
    for method, path, route in _api_routes(app):
        rules = [c.permission for c in _calls(route.dependant) if isinstance(c, Requires)]
        found[(method.upper(), path)] = rules
    assert len(found) >= 20  # the route table was read
    for (method, path), rules in found.items():
        assert (method, path) in EXPECTED, f"{method} {path}: add it to EXPECTED"
        assert rules == [EXPECTED[(method, path)]], f"{method} {path}: {rules}"


async def _bearer(server: Server, role: str, **kwargs: datetime) -> dict[str, str]:
    token = await create_api_token(server.services.storage, f"t-{role}", role, **kwargs)
    return {"Authorization": f"Bearer {token}"}


async def test_a_command_needs_its_own_role_whatever_the_route(server: Server) -> None:
    device = await server.device("UDID-1", 301)
    await server.enroll(device)
    admin, operator = await _bearer(server, "admin"), await _bearer(server, "operator")
    viewer = await _bearer(server, "viewer")

    async def send(request_type: str, headers: dict[str, str]) -> tuple[int, str]:
        body = {"request_type": request_type, "targets": ["UDID-1"], "confirm": True}
        answer = await server.http.post("/api/v1/commands", json=body, headers=headers)
        return answer.status_code, str(answer.json().get("detail", ""))

    for admins_only in ("EraseDevice", "ClearPasscode", "RequestUnlockToken"):
        status, detail = await send(admins_only, operator)
        assert status == 403
        assert detail.startswith("the operator role cannot")
        assert detail.endswith("that needs admin")
    viewing = await send("DeviceLock", viewer)
    assert viewing == (403, "the viewer role cannot send MDM commands (restart, apps, settings…): "
                       "that needs operator or higher")  # fmt: skip
    assert (await send("DeviceLock", operator))[0] == 201
    assert (await send("SecurityInfo", operator))[0] == 201
    assert (await send("EraseDevice", admin))[0] == 201
    commands = await server.services.storage.device_commands("UDID-1", datetime.now(UTC))
    queued = sorted(c.request_type for c in commands)
    assert queued == ["DeviceLock", "EraseDevice", "SecurityInfo"]  # none refused


async def test_expired_and_revoked_tokens_are_refused(server: Server) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = await _bearer(server, "admin", expires_at=past)
    answer = await server.http.get("/api/v1/devices", headers=expired)
    assert answer.status_code == 401
    assert "expired on" in answer.json()["detail"]
    later = datetime.now(UTC) + timedelta(days=1)
    live = await _bearer(server, "viewer", expires_at=later)
    assert (await server.http.get("/api/v1/devices", headers=live)).status_code == 200
    assert await server.services.storage.revoke_api_token("t-viewer", datetime.now(UTC))
    revoked = await server.http.get("/api/v1/devices", headers=live)
    assert (revoked.status_code, revoked.headers["www-authenticate"]) == (401, "Bearer")
    assert "was revoked" in revoked.json()["detail"]


async def test_secrets_are_for_admins_only(server: Server, tmp_path: Path) -> None:
    admin, operator = await _bearer(server, "admin"), await _bearer(server, "operator")
    viewer = await _bearer(server, "viewer")
    device = await server.device("UDID-1", 302)
    await server.enroll(device)
    body = {"request_type": "RequestUnlockToken", "targets": ["UDID-1"]}
    command_uuid = (await server.http.post("/api/v1/commands", json=body, headers=admin)).json()[
        "command_uuid"
    ]
    await server.report(device, "Idle")
    await server.report(device, "Acknowledged", CommandUUID=command_uuid, UnlockToken=b"unlock!")
    for headers, hidden in ((viewer, True), (operator, True), (admin, False)):
        shown = await server.http.get(f"/api/v1/commands/{command_uuid}", headers=headers)
        history = await server.http.get("/api/v1/devices/UDID-1/commands", headers=headers)
        for result in (shown.json()["targets"][0]["result"], history.json()[0]["result"]):
            assert (result["UnlockToken"] == HIDDEN) == hidden, result

    upload = _signed_profile(server, tmp_path)
    assert (await server.http.post("/api/v1/profiles", content=upload, headers=admin)).is_success
    url = "/api/v1/profiles/com.example.wifi/content"
    for headers in (viewer, operator):
        refused = await server.http.get(url, headers=headers)
        assert refused.status_code == 403
        assert SECRET not in refused.text
    content = await server.http.get(url, headers=admin)
    assert content.headers["content-type"] == "application/x-apple-aspen-config"
    assert SECRET.encode() in content.content
    assert (await server.http.get(url.replace("wifi", "none"), headers=admin)).status_code == 404
