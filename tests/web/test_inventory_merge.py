"""A DeviceInformation answer adds to what is known: the API keeps every key, with when."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from orchardist.tokens import create_api_token
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio


async def _answer(server: Server, device: Device, responses: dict[str, object]) -> None:
    command_uuid = await server.queue("DeviceInformation", {"Queries": sorted(responses)}, device)
    await server.report(device, "Idle")
    done = await server.report(
        device, "Acknowledged", CommandUUID=command_uuid, QueryResponses=responses
    )
    assert done.status_code == 200


async def test_two_answers_merge_in_the_api(server: Server) -> None:
    device = await server.device("UDID-INV-MERGE", 140)
    await server.enroll(device)
    await _answer(server, device, {"BatteryLevel": 0.81, "DeviceCapacity": 128.0})
    await _answer(server, device, {"DeviceName": "Front desk", "OSVersion": "18.2"})
    token = await create_api_token(server.services.storage, f"t-{uuid.uuid4().hex}", "viewer")
    shown = await server.http.get(
        "/api/v1/devices/UDID-INV-MERGE", headers={"Authorization": f"Bearer {token}"}
    )
    inventory = shown.json()["inventory"]
    assert inventory["facts"] == {
        "BatteryLevel": 0.81,
        "DeviceCapacity": 128.0,
        "DeviceName": "Front desk",
        "OSVersion": "18.2",
    }
    seen = {k: datetime.fromisoformat(v) for k, v in inventory["facts_seen_at"].items()}
    assert set(seen) == set(inventory["facts"])
    assert seen["BatteryLevel"] <= seen["DeviceName"]
