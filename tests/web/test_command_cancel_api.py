"""POST /api/v1/commands/{uuid}/cancel: an operator token cancels what devices have not
run, a viewer token is refused (and both are in the audit log), an unknown command is 404."""

from __future__ import annotations

import pytest

from orchardist.audit import AuditQuery, Outcome
from orchardist.tokens import create_api_token
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


async def _bearer(server: Server, name: str, role: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {await create_api_token(server.services.storage, name, role)}"
    }


async def test_cancel_by_role(server: Server) -> None:
    devices = [await server.device(f"UDID-CAN-{n}", 400 + n) for n in range(2)]
    for device in devices:
        await server.enroll(device)
    command_uuid = await server.queue("DeviceLock", {}, *devices)
    path = f"/api/v1/commands/{command_uuid}/cancel"
    refused = await server.http.post(path, headers=await _bearer(server, "watcher", "viewer"))
    assert refused.status_code == 403
    assert (await server.report(devices[0], "Idle")).content != b""  # still queued: sent now
    operator = await _bearer(server, "ops", "operator")
    done = await server.http.post(path, headers=operator)
    assert (done.status_code, done.json()) == (200, {"command_uuid": command_uuid, "cancelled": 2})
    again = await server.http.post(path, headers=operator)
    assert again.json()["cancelled"] == 0
    assert (await server.report(devices[1], "Idle")).content == b""
    unknown = await server.http.post("/api/v1/commands/NO-SUCH/cancel", headers=operator)
    assert unknown.status_code == 404
    entries = await server.services.audit.entries(AuditQuery(action="command.cancel"))
    seen = [(e.actor, e.outcome, e.detail.get("cancelled")) for e in reversed(entries)]
    assert seen[:3] == [("watcher", Outcome.DENIED, None), ("ops", Outcome.OK, 2),
                        ("ops", Outcome.OK, 0)]  # fmt: skip
    assert seen[3][:2] == ("ops", Outcome.FAILED)
