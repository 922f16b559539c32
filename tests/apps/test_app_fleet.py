"""Issue 13 end to end: 50 virtual devices that never poll (each check-in is a push through
the local APNs peer) enroll into the group `sales`; an in-house app uploaded with the CLI
and assigned to the group is installed by MDM on all of them — each device fetches the
signed manifest over HTTPS, checks the .ipa's hash, bundle id and version, and reports the
app managed; a new version uploaded through the API reaches all 50 with no other step, a
paced batch at a time; and a renewed provisioning profile replaces the one the app brought
on every phone that holds it."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.apps.factory import TEAM_ID, build_ipa, build_mobileprovision
from tests.push.identity import push_identity, simulated_apns
from tests.server import ORCHARDIST, free_port, orchardist, running_server

DEVICES = 50
# Devices a minute: 50 devices need two batches at least. Just under 50, as the pace is
# most of this test's time (the two versions' 100 installs, less the first full minute,
# go at PACE a minute).
PACE = 49
BUNDLE = "com.example.expenses"
STATIC = "app-fleet-static-challenge"


def wait(check: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@contextmanager
def fleet(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """A server answering HTTPS at its public address (the manifest's links point there),
    and DEVICES push-woken virtual devices, all enrolled; an admin API client."""
    data_dir = tmp_path / "data"
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    identity = push_identity(tmp_path / "apple")
    orchardist(data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
               "--key", str(identity.key_file))  # fmt: skip
    apns, port = simulated_apns(identity, tmp_path), free_port()
    env = {
        "ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC,
        "ORCHARDIST_PUBLIC_URL": f"https://localhost:{port}",
        "ORCHARDIST_APPS__ROLLOUT_PER_MINUTE": str(PACE),
        # A phone that could not fetch under load (the 2604 a busy server causes) is sent
        # the install again soon, as [apps] retry_after_seconds says: not in 15 minutes.
        "ORCHARDIST_APPS__RETRY_AFTER_SECONDS": "10",
        **apns.env,
    }
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)
    with running_server(data_dir, http=False, env=env, port=port) as base:
        devices = subprocess.Popen(
            [*ORCHARDIST, "simulate", "--devices", str(DEVICES), "--profile", str(profile),
             "--server", base, *apns.simulate_args, "--duration", "600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        trust = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.pem"))
        headers = {"Authorization": f"Bearer {admin['admin_token']}"}
        try:
            with httpx.Client(base_url=base, headers=headers, verify=trust, timeout=60) as api:
                wait(lambda: len(enrolled(api)) == DEVICES, f"{DEVICES} enrollments")
                yield api, data_dir
        finally:
            devices.terminate()
            _, errors = devices.communicate(timeout=30)
            assert "Traceback" not in errors, errors


def enrolled(api: httpx.Client) -> list[str]:
    return sorted(d["udid"] for d in api.get("/api/v1/devices").json() if d["enrolled"])


def states(api: httpx.Client) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/apps/{BUNDLE}/status")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def managed_at(api: httpx.Client, version_id: int) -> int:
    rows = states(api)
    final = [row for row in rows if row["state"] == "failed" and row["next_attempt_at"] is None]
    assert final == [], final  # failed for good (a passing failure is retried)
    return sum(r["state"] == "managed" and r["installed_version_id"] == version_id for r in rows)


def installs_sent(api: httpx.Client, udids: list[str]) -> dict[str, int]:
    """InstallApplication commands by CommandUUID, with how many devices each went to."""
    sent: dict[str, int] = {}
    for udid in udids:
        for command in api.get(f"/api/v1/devices/{udid}/commands").json():
            if command["request_type"] == "InstallApplication":
                sent[command["command_uuid"]] = sent.get(command["command_uuid"], 0) + 1
    return sent


def test_fifty_phones_in_sales_get_the_app_its_update_and_its_renewed_profile(
    tmp_path: Path,
) -> None:
    version_one = build_ipa(tmp_path / "expenses-1.0.ipa", version="1.0", build="10")
    version_two = build_ipa(tmp_path / "expenses-1.1.ipa", version="1.1", build="11")
    with fleet(tmp_path) as (api, data_dir):
        udids = enrolled(api)
        assert api.put("/api/v1/groups/sales", json={"devices": udids}).status_code == 200

        printed = orchardist(data_dir, "app", "upload", str(version_one))
        assert BUNDLE in printed
        assert "1.0" in printed
        assigned = api.post(f"/api/v1/apps/{BUNDLE}/assignments", json={"groups": ["sales"]})
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["installs"] == DEVICES
        wait(lambda: managed_at(api, 1) == DEVICES, "version 1 managed on every phone")
        first = installs_sent(api, udids)
        assert sum(first.values()) >= DEVICES  # one each, and again where a fetch failed

        with version_two.open("rb") as ipa:
            stored = api.post("/api/v1/apps", files={"file": ("expenses-1.1.ipa", ipa)})
        assert stored.status_code == 201, stored.text
        assert (stored.json()["version_id"], stored.json()["updating"]) == (2, DEVICES)
        wait(lambda: managed_at(api, 2) == DEVICES, "version 2 on every phone, unasked")
        second = {uuid: n for uuid, n in installs_sent(api, udids).items() if uuid not in first}
        assert sum(second.values()) >= DEVICES
        # The pace: no batch larger than a minute's worth, so 50 phones took several.
        assert max(second.values()) <= PACE
        assert len(second) >= 2
        listed = api.get("/api/v1/apps").json()
        assert [(a["bundle_id"], a["version"]) for a in listed] == [(BUNDLE, "1.1")]

        renew_profile(api, tmp_path, udids)


def renew_profile(api: httpx.Client, tmp_path: Path, udids: list[str]) -> None:
    """The app brought its embedded profile to each phone; a newer one for the same app id
    goes to every holder, and the old ones are removed once the new one is in."""
    newer = build_mobileprovision(
        app_id=f"{TEAM_ID}.{BUNDLE}", expires_at=datetime.now(UTC) + timedelta(days=700)
    )
    path = tmp_path / "renewed.mobileprovision"
    path.write_bytes(newer)
    uploaded = api.post("/api/v1/provisioning-profiles", content=newer)
    assert uploaded.status_code == 201, uploaded.text
    new_uuid = uploaded.json()["uuid"]

    def renewed_everywhere() -> bool:
        detail = api.get(f"/api/v1/provisioning-profiles/{new_uuid}").json()
        return sorted(d["udid"] for d in detail["devices"] if d["state"] == "installed") == udids

    wait(renewed_everywhere, "the renewed profile on every phone")
    # Each version's .ipa brought a profile of its own: both are renewed by the new one.
    olds = [p for p in api.get("/api/v1/provisioning-profiles").json() if p["uuid"] != new_uuid]
    assert len(olds) == 2
    assert {p["replaced_by"] for p in olds} == {new_uuid}

    def old_ones_gone() -> bool:
        held: set[str] = set()
        for old in olds:
            rows = api.get(f"/api/v1/provisioning-profiles/{old['uuid']}").json()["devices"]
            if any(row["state"] != "removed" for row in rows):
                return False
            held.update(row["udid"] for row in rows)
        return sorted(held) == udids

    wait(old_ones_gone, "the old profiles removed from every phone")
