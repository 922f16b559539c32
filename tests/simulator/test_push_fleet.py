"""End to end with push: 50 virtual devices that never poll enroll through the profile;
a DeviceLock sent to all through the API reaches each of them because the server pushed
it through the local APNs peer, and every device acknowledges it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.push.identity import push_identity, simulated_apns
from tests.server import ORCHARDIST, orchardist, running_server

DEVICES = 50
STATIC = "push-fleet-static-challenge"


def _wait(predicate: object, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_fifty_pushed_devices_acknowledge_without_polling(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    headers = {"Authorization": f"Bearer {admin['admin_token']}"}
    identity = push_identity(tmp_path / "apple")
    orchardist(
        data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
        "--key", str(identity.key_file),
    )  # fmt: skip
    apns = simulated_apns(identity, tmp_path)
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC, **apns.env}
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)
    with running_server(data_dir, http=True, env=env) as base:
        fleet = subprocess.Popen(
            [
                *ORCHARDIST, "simulate", "--devices", str(DEVICES), "--profile", str(profile),
                "--server", base, *apns.simulate_args, "--duration", "120", "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:

            def enrolled() -> int:
                listed = httpx.get(f"{base}/api/v1/devices", headers=headers).json()
                return sum(1 for d in listed if d["enrolled"])

            _wait(lambda: enrolled() == DEVICES, "50 enrollments")
            queued = httpx.post(
                f"{base}/api/v1/commands",
                json={
                    "request_type": "DeviceLock",
                    "params": {"Message": "Pushed"},
                    "targets": {"all": True},
                },
                headers=headers,
            )
            assert queued.status_code == 201, queued.text
            command_uuid = queued.json()["command_uuid"]

            def counts() -> dict[str, int]:
                detail = httpx.get(f"{base}/api/v1/commands/{command_uuid}", headers=headers)
                found: dict[str, int] = detail.json()["counts"]
                return found

            _wait(lambda: counts()["acknowledged"] == DEVICES, "50 acknowledgements")
            final = counts()
            device = httpx.get(f"{base}/api/v1/devices", headers=headers).json()[0]["udid"]
            detail = httpx.get(f"{base}/api/v1/devices/{device}", headers=headers).json()
            by_hand = httpx.post(f"{base}/api/v1/devices/{device}/push", headers=headers)
            _wait(lambda: _pushed_since(base, headers, device, detail["pushed_at"]), "hand push")
        finally:
            fleet.terminate()
            out, errors = fleet.communicate(timeout=60)
    assert fleet.returncode == 0, errors
    report = json.loads(out)
    assert final["acknowledged"] == DEVICES
    assert final["queued"] == final["pushed"] == final["sent"] == 0
    assert detail["pushed_at"] is not None
    assert detail["push_token_invalid_at"] is None
    assert by_hand.status_code == 202
    assert by_hand.json()["push_certificate"] is True
    # Devices only ever checked in when pushed: one session per push at most, none else.
    assert report["enrolled"] == DEVICES
    assert report["pushes"] >= DEVICES + 1
    assert DEVICES <= report["sessions"] <= report["pushes"]
    assert report["commands"] == DEVICES


def _pushed_since(base: str, headers: dict[str, str], device: str, before: str) -> bool:
    detail = httpx.get(f"{base}/api/v1/devices/{device}", headers=headers).json()
    return bool(detail["pushed_at"] and detail["pushed_at"] > before)
