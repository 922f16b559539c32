"""End to end: `orchardist simulate` enrolls 50 devices through the enrollment profile and
SCEP; a DeviceLock and a DeviceInformation sent to all through the API complete."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.server import ORCHARDIST, orchardist, running_server

DEVICES = 50
STATIC = "fleet-static-challenge"


def _wait(predicate: object, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_fifty_devices_enroll_and_run_commands(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    headers = {"Authorization": f"Bearer {admin['admin_token']}"}
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC}
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)
    with running_server(data_dir, http=True, env=env) as base:
        fleet = subprocess.Popen(
            [
                *ORCHARDIST,
                "simulate",
                "--devices",
                str(DEVICES),
                "--profile",
                str(profile),
                "--server",
                base,
                "--duration",
                "60",
                "--interval",
                "0.5",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def devices() -> list[dict[str, object]]:
                listed: list[dict[str, object]] = httpx.get(
                    f"{base}/api/v1/devices", headers=headers
                ).json()
                return listed

            _wait(lambda: sum(1 for d in devices() if d["enrolled"]) == DEVICES, "50 enrollments")
            sent = []
            for body in (
                {"request_type": "DeviceLock", "params": {"Message": "Fleet drill"}},
                {
                    "request_type": "DeviceInformation",
                    "params": {"Queries": ["SerialNumber", "OSVersion", "Model", "ModelName"]},
                },
            ):
                queued = httpx.post(
                    f"{base}/api/v1/commands",
                    json={**body, "targets": {"all": True}},
                    headers=headers,
                )
                assert queued.status_code == 201, queued.text
                assert queued.json()["targets"] == DEVICES
                sent.append(queued.json()["command_uuid"])

            def finished(command_uuid: str) -> bool:
                detail = httpx.get(f"{base}/api/v1/commands/{command_uuid}", headers=headers).json()
                return all(t["status"] == "acknowledged" for t in detail["targets"])

            for command_uuid in sent:
                _wait(lambda uuid=command_uuid: finished(uuid), f"command {command_uuid}")
            # The inventory lands just after the status: wait for the last device's answer.
            _wait(lambda: all(d["model"] for d in devices()), "models from DeviceInformation")
            listed = devices()
            info = httpx.get(f"{base}/api/v1/commands/{sent[1]}", headers=headers).json()
        finally:
            fleet.terminate()
            _, errors = fleet.communicate(timeout=30)
    assert "failed" not in errors, errors
    assert len(listed) == DEVICES
    for device in listed:  # model and model name come from the DeviceInformation answers
        assert device["serial_number"]
        assert device["os_version"]
        assert device["product_name"]
        assert device["model"]
        assert device["model_name"] in {"iPhone", "iPad"}
    answers = {t["udid"]: t["result"]["QueryResponses"] for t in info["targets"]}
    by_udid = {d["udid"]: d for d in listed}
    for udid, response in answers.items():
        assert response["SerialNumber"] == by_udid[udid]["serial_number"]
        assert response["OSVersion"] == by_udid[udid]["os_version"]
