"""Webhooks from a running app: device events and command results reach a real HTTP
receiver in MicroMDM's format, signed with the configured secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import plistlib
from pathlib import Path
from typing import Any

import pytest

from tests.web.mdm_server import running
from tests.webhooks.receiver import Receiver, receiving

pytestmark = pytest.mark.anyio
SECRET = "webhook-secret-value"


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    events = []
    for request in receiver.received:
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Orchardist-Signature-256"] == f"sha256={expected}"
        event = json.loads(request.body)
        assert request.headers["X-Orchardist-Event-Id"] == event["event_id"]
        assert request.headers["X-Orchardist-Event"] == event["topic"]
        assert request.path == "/hooks/mdm"
        events.append(event)
    return events


async def test_device_events_and_results_reach_the_receiver(backend: str, tmp_path: Path) -> None:
    with receiving() as receiver:
        async with running(
            backend, tmp_path, webhook_urls=[receiver.url], webhook_secret=SECRET
        ) as server:
            assert server.services.webhooks is not None
            device = await server.device("UDID-HOOK", 150)
            await server.enroll(device)
            lock = await server.queue("DeviceLock", {}, device)
            query = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, device)
            later = await server.queue("ProfileList", {}, device)
            await server.report(device, "Idle")
            await server.report(device, "Acknowledged", CommandUUID=lock)
            chain = [{"ErrorCode": 12021, "ErrorDomain": "MCMDM"}]
            await server.report(device, "Error", CommandUUID=query, ErrorChain=chain)
            await server.report(device, "NotNow", CommandUUID=later)
            await server.report(device, "Acknowledged", CommandUUID=lock)  # a repeat: no event
            assert (await server.checkin(device, "CheckOut")).status_code == 200
            assert await server.services.webhooks.drain() == 6
    events = _events(receiver)
    topics = sorted(e["topic"] for e in events)
    assert topics == sorted(["mdm.Authenticate", "mdm.TokenUpdate", "mdm.Connect",
                             "mdm.Connect", "mdm.Connect", "mdm.CheckOut"])  # fmt: skip
    assert len({e["event_id"] for e in events}) == 6
    results = {e["acknowledge_event"]["command_uuid"]: e["acknowledge_event"] for e in events
               if e["topic"] == "mdm.Connect"}  # fmt: skip
    assert {uuid: r["status"] for uuid, r in results.items()} == {
        lock: "Acknowledged", query: "Error", later: "NotNow",
    }  # fmt: skip
    error = plistlib.loads(base64.b64decode(results[query]["raw_payload"]))
    assert error["ErrorChain"][0]["ErrorCode"] == 12021
    authenticate = next(e for e in events if e["topic"] == "mdm.Authenticate")
    assert authenticate["checkin_event"]["udid"] == "UDID-HOOK"
    sent = plistlib.loads(base64.b64decode(authenticate["checkin_event"]["raw_payload"]))
    assert (sent["MessageType"], sent["SerialNumber"]) == ("Authenticate", "S1")
    assert authenticate["created_at"].endswith("Z")


async def test_refused_requests_and_idle_send_nothing(backend: str, tmp_path: Path) -> None:
    with receiving() as receiver:
        async with running(backend, tmp_path, webhook_urls=[receiver.url]) as server:
            assert server.services.webhooks is not None
            device = await server.device("UDID-QUIET", 151)
            stranger = await server.device("UDID-STRANGER", 152)
            await server.enroll(device)
            await server.services.webhooks.drain()
            receiver.received.clear()
            await server.report(device, "Idle")
            assert (await server.report(stranger, "Idle")).status_code == 403
            assert await server.services.webhooks.drain() == 0
    assert receiver.received == []


async def test_profile_states_are_sent_as_they_move(backend: str, tmp_path: Path) -> None:
    from tests.web.test_profiles_api import _signed_profile, _token

    with receiving() as receiver:
        async with running(
            backend, tmp_path, webhook_urls=[receiver.url], webhook_secret=SECRET
        ) as server:
            assert server.services.webhooks is not None
            admin = await _token(server)
            device = await server.device("UDID-PROFILED", 153)
            await server.enroll(device)
            data = _signed_profile(server, tmp_path)
            assert (
                await server.http.post("/api/v1/profiles", content=data, headers=admin)
            ).status_code == 201
            assigned = await server.http.post(
                "/api/v1/profiles/com.example.wifi/assignments",
                json={"devices": ["UDID-PROFILED"]},
                headers=admin,
            )
            assert assigned.json()["installs"] == 1
            sent = plistlib.loads((await server.report(device, "Idle")).content)
            chain = [{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain",
                      "LocalizedDescription": "The profile is not valid"}]  # fmt: skip
            await server.report(device, "Error", CommandUUID=sent["CommandUUID"],
                                ErrorChain=chain)  # fmt: skip
            await server.services.webhooks.drain()
    in_order = sorted(_events(receiver), key=lambda e: str(e["created_at"]))  # sent in parallel
    changes = [e["profile_event"] for e in in_order if e["topic"] == "orchardist.ProfileStatus"]
    assert [(c["udid"], c["identifier"], c["state"]) for c in changes] == [
        ("UDID-PROFILED", "com.example.wifi", "pending"),
        ("UDID-PROFILED", "com.example.wifi", "failed"),
    ]
    assert changes[0]["desired_version"] == 1
    assert "4001" in changes[1]["error"]
