"""End to end: a profile assigned to 20 push-woken virtual devices is installed on each
(InstallProfile acknowledged, ProfileList shows it); a new version is delivered again;
unassigning removes it; the status shows each step. Devices never poll."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.push.identity import push_identity, simulated_apns
from tests.server import ORCHARDIST, orchardist, running_server

DEVICES = 20
SPEC = """
identifier = "com.example.office-wifi"
name = "Office Wi-Fi"

[[payloads]]
type = "wifi"
SSID_STR = "{ssid}"
EncryptionType = "WPA2"
Password = {{ env = "OFFICE_WIFI_PASSWORD" }}
"""


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_twenty_devices_install_update_and_remove_a_profile(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    headers = {"Authorization": f"Bearer {admin['admin_token']}"}
    identity = push_identity(tmp_path / "apple")
    orchardist(data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
               "--key", str(identity.key_file))  # fmt: skip
    apns = simulated_apns(identity, tmp_path)
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": "profile-fleet", **apns.env,
           "OFFICE_WIFI_PASSWORD": "office-secret-1"}  # fmt: skip
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)

    def build(ssid: str) -> bytes:
        (tmp_path / "wifi.toml").write_text(SPEC.format(ssid=ssid))
        out = tmp_path / f"{ssid}.mobileconfig"
        orchardist(data_dir, "profile", "build", str(tmp_path / "wifi.toml"), "-o", str(out),
                   "--sign", env=env)  # fmt: skip
        return out.read_bytes()

    with running_server(data_dir, http=True, env=env) as base:
        fleet = subprocess.Popen(
            [*ORCHARDIST, "simulate", "--devices", str(DEVICES), "--profile", str(profile),
             "--server", base, *apns.simulate_args, "--duration", "120", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:

                def enrolled() -> int:
                    return sum(1 for d in http.get("/api/v1/devices").json() if d["enrolled"])

                def states() -> list[tuple[str, int | None]]:
                    rows = http.get("/api/v1/profiles/com.example.office-wifi/status").json()
                    return [(r["state"], r["installed_version"]) for r in rows]

                _wait(lambda: enrolled() == DEVICES, "20 enrollments")
                uploaded = http.post("/api/v1/profiles", content=build("Office"))
                assert uploaded.status_code == 201, uploaded.text
                assigned = http.post(
                    "/api/v1/profiles/com.example.office-wifi/assignments", json={"all": True}
                ).json()
                assert assigned == {
                    "installs": DEVICES,
                    "removals": 0,
                    "scheduled": 0,
                    "skipped": [],
                }
                _wait(lambda: states() == [("installed", 1)] * DEVICES, "20 installs")

                # ProfileList confirms it on each device.
                queued = http.post(
                    "/api/v1/commands",
                    json={"request_type": "ProfileList", "targets": {"all": True}},
                )
                uuid = queued.json()["command_uuid"]  # fmt: skip
                _wait(lambda: http.get(f"/api/v1/commands/{uuid}").json()["counts"]["acknowledged"]
                      == DEVICES, "20 profile lists")  # fmt: skip
                for device in http.get("/api/v1/devices").json():
                    shown = http.get(f"/api/v1/devices/{device['udid']}").json()
                    identifiers = {p["identifier"] for p in shown["inventory"]["profiles"]}
                    assert "com.example.office-wifi" in identifiers

                # A new version is delivered again to every device.
                second = http.post("/api/v1/profiles", content=build("Office-5G")).json()
                assert (second["version"], second["installs"]) == (2, DEVICES)
                _wait(lambda: states() == [("installed", 2)] * DEVICES, "20 updates")

                # Unassigned: removed from each.
                removed = http.request(
                    "DELETE", "/api/v1/profiles/com.example.office-wifi/assignments",
                    json={"all": True},
                ).json()  # fmt: skip
                assert removed["removals"] == DEVICES
                _wait(lambda: states() == [("removed", None)] * DEVICES, "20 removals")
        finally:
            fleet.terminate()
            out, errors = fleet.communicate(timeout=60)
    assert fleet.returncode == 0, errors
    report = json.loads(out)
    assert report["failures"] == []
    assert report["sessions"] <= report["pushes"]  # every session came from a push
