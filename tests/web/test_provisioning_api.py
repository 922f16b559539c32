"""/api/v1/provisioning-profiles: upload (refusals with nothing stored), list with expiry
warnings and holders, show with each device's state, assign, renewal, unassign, remove —
each change in the audit log, each under its role."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchardist.audit import AuditQuery
from orchardist.storage.provisioning import PROVISIONING_MAX_BYTES
from orchardist.tokens import create_api_token
from tests.apps.factory import TEAM_ID, build_mobileprovision
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
URL = "/api/v1/provisioning-profiles"


async def _token(server: Server, role: str) -> dict[str, str]:
    token = await create_api_token(server.services.storage, f"test-{role}", role)
    return {"Authorization": f"Bearer {token}"}


def _profile(days: float, **fields: Any) -> bytes:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return build_mobileprovision(expires_at=expires, **fields)


async def _acknowledge_next(server: Server, device: Device) -> dict[str, Any]:
    sent: dict[str, Any] = plistlib.loads((await server.report(device, "Idle")).content)
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"])
    return sent


async def test_bad_uploads_are_refused_and_nothing_is_stored(server: Server) -> None:
    admin, operator = await _token(server, "admin"), await _token(server, "operator")
    good = _profile(200)
    assert (await server.http.post(URL, content=good, headers=operator)).status_code == 403
    forged = good.replace(b"com.example.expenses", b"com.example.expensez")
    for body, words in (
        (forged, "signature does not verify"),
        (b"\x30\x03\x02\x01\x01", "not a provisioning profile"),
        (_profile(-1), "expired"),
    ):
        refused = await server.http.post(URL, content=body, headers=admin)
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["detail"]["problems"]
        assert words in problem
    huge = await server.http.post(URL, content=b"x" * (PROVISIONING_MAX_BYTES + 1), headers=admin)
    assert huge.status_code == 413
    assert (await server.http.get(URL, headers=admin)).json() == []
    recorded = await server.services.storage.audit_entries(AuditQuery(action="provisioning.upload"))
    assert {e.outcome.value for e in recorded} == {"failed", "denied"}


async def test_upload_list_assign_renew_and_remove(server: Server) -> None:
    admin, operator = await _token(server, "admin"), await _token(server, "operator")
    viewer = await _token(server, "viewer")
    device = await server.device("UDID-A", 80)
    await server.enroll(device)

    created = await server.http.post(URL, content=_profile(20.5, name="Old"), headers=admin)
    assert created.status_code == 201, created.text
    stored = created.json()
    old = stored["uuid"]
    assert (stored["app_id"], stored["unchanged"], stored["replaces"]) == (
        f"{TEAM_ID}.com.example.expenses", False, []
    )  # fmt: skip
    assert any("expires in 20 days" in w for w in stored["warnings"])
    again = await server.http.post(URL, content=_profile(20.5, name="Old", profile_uuid=old),
                                   headers=admin)  # fmt: skip
    assert (again.status_code, again.json()["unchanged"]) == (200, True)

    (listed,) = (await server.http.get(URL, headers=viewer)).json()
    assert (listed["uuid"], listed["days_left"], listed["holders"]) == (old, 20, 0)
    assert "upload the renewed profile" in listed["warning"]
    assert listed["replaced_by"] is None

    assign = f"{URL}/{old}/assignments"
    assert (await server.http.post(assign, json={"all": True}, headers=viewer)).status_code == 403
    unknown = await server.http.post(assign, json={"devices": ["UDID-NOPE"]}, headers=operator)
    assert (unknown.status_code, "UDID-NOPE" in unknown.text) == (422, True)
    missing = await server.http.post(f"{URL}/NO-SUCH/assignments", json={"all": True},
                                     headers=operator)  # fmt: skip
    assert missing.status_code == 404
    assigned = await server.http.post(assign, json={"devices": ["UDID-A"]}, headers=operator)
    assert assigned.json() == {"installs": 1, "removals": 0}
    sent = await _acknowledge_next(server, device)
    assert sent["Command"]["RequestType"] == "InstallProvisioningProfile"
    shown = (await server.http.get(f"{URL}/{old}", headers=viewer)).json()
    assert [(d["udid"], d["state"]) for d in shown["devices"]] == [("UDID-A", "installed")]
    assert shown["assignments"] == {"device": ["UDID-A"], "group": [], "all": []}
    assert shown["holders"] == 1

    # The renewal: installed where the old one is, which then goes.
    renewed = await server.http.post(URL, content=_profile(380, name="New"), headers=admin)
    new = renewed.json()["uuid"]
    assert (renewed.json()["replaces"], renewed.json()["installs"]) == ([old], 1)
    assert renewed.json()["asked"] == 0  # the one device holds the old profile
    assert (await _acknowledge_next(server, device))["Command"]["RequestType"] == (
        "InstallProvisioningProfile"
    )
    removal = await _acknowledge_next(server, device)
    assert removal["Command"] == {"RequestType": "RemoveProvisioningProfile", "UUID": old}
    shown = (await server.http.get(f"{URL}/{old}", headers=viewer)).json()
    assert (shown["replaced_by"], shown["warning"]) == (new, None)
    assert [(d["udid"], d["state"]) for d in shown["devices"]] == [("UDID-A", "removed")]
    assert (await server.http.get(f"{URL}/{new}", headers=viewer)).json()["replaces"] == [old]
    refused = await server.http.post(assign, json={"all": True}, headers=operator)
    assert (refused.status_code, f"renewed by {new}" in refused.text) == (409, True)

    targets = {"devices": ["UDID-A"]}
    unassigned = await server.http.request(
        "DELETE", f"{URL}/{new}/assignments", json=targets, headers=operator
    )
    assert unassigned.json() == {"installs": 0, "removals": 1}
    assert (await server.http.delete(f"{URL}/{new}", headers=operator)).status_code == 403
    removed = await server.http.delete(f"{URL}/{new}", headers=admin)
    assert removed.json() == {"installs": 0, "removals": 0}  # being removed already
    assert (await server.http.get(f"{URL}/{new}", headers=viewer)).status_code == 404
    assert (await server.http.delete(f"{URL}/{new}", headers=admin)).status_code == 404

    recorded = await server.services.storage.audit_entries(AuditQuery())
    actions = [(e.action, e.outcome.value, tuple(e.targets)) for e in reversed(recorded)
               if e.action.startswith("provisioning.")]  # fmt: skip
    assert ("provisioning.upload", "ok", (old,)) in actions
    assert ("provisioning.assign", "ok", (old, "UDID-A")) in actions
    assert ("provisioning.assign", "failed", (old, "UDID-NOPE")) in actions
    assert ("provisioning.unassign", "ok", (new, "UDID-A")) in actions
    assert ("provisioning.remove", "denied", (new,)) in actions
    assert ("provisioning.remove", "ok", (new,)) in actions
