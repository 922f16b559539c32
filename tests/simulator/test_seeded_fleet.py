"""A fleet seeded straight into the database (`orchardist simulate seed`) runs through the
real server: `simulate --fleet` plays its live devices in one process, woken only by pushes
from the local APNs peer, which runs in a process of its own and feeds them the pushes it
accepts (`--apns-feed`, as `make bench`'s scale scenario runs them). Two commands sent to
every device reach each live one once and are acknowledged once; the devices seeded
without a certificate are pushed but never answer. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.db import backends
from tests.mdm.test_killed_server import database_env
from tests.push.identity import apns_peer, push_identity, subscribed
from tests.server import ORCHARDIST, free_port, orchardist, running_server

DEVICES = 250  # seeded
LIVE = 200  # of them with a certificate, run by the simulator
STATIC = "seeded-fleet-static-challenge"


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.mark.parametrize("backend", backends())
def test_seeded_fleet_answers_a_fan_out_through_the_server(backend: str, tmp_path: Path) -> None:
    with database_env(backend, tmp_path) as database:
        data_dir = tmp_path / "data"
        admin = json.loads(
            orchardist(data_dir, "init", "--hostname", "localhost", "--json", env=database)
        )
        headers = {"Authorization": f"Bearer {admin['admin_token']}"}
        identity = push_identity(tmp_path / "apple")
        orchardist(data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
                   "--key", str(identity.key_file), env=database)  # fmt: skip
        client_ca, feed_port = tmp_path / "push-identity-ca.pem", free_port()
        client_ca.write_bytes(identity.ca_pem)
        with apns_peer(client_ca, tmp_path, feed_port=feed_port) as peer:
            env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC, **peer.env, **database}
            profile, fleet_file = tmp_path / "enroll.mobileconfig", tmp_path / "fleet.json"
            orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)
            seed = ["simulate", "seed", "--devices", str(DEVICES), "--live", str(LIVE),
                    "--profile", str(profile), "--out", str(fleet_file), "--json"]  # fmt: skip
            seeded = json.loads(orchardist(data_dir, *seed, env=env))
            # Before any server: the seed evaluated each device, as its TokenUpdate would.
            stored = json.loads(orchardist(data_dir, "device", "list", "--json", env=env))
            with running_server(data_dir, http=True, env=env) as base:
                fleet = subprocess.Popen(
                    [*ORCHARDIST, "simulate", "--fleet", str(fleet_file), "--server", base,
                     "--apns-feed", f"127.0.0.1:{feed_port}", "--duration", "300", "--json"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                try:
                    with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
                        listed = api.get("/api/v1/devices", params={"limit": DEVICES}).json()
                        _wait(lambda: subscribed(feed_port), "the simulator on the peer's feed")
                        kinds = ("DeviceLock", "SecurityInfo")
                        counts = [_send_to_all(api, kind) for kind in kinds]
                        for count in counts:
                            _wait(lambda c=count: c()["acknowledged"] == LIVE, f"{LIVE} answers")
                        final = [count() for count in counts]
                finally:
                    fleet.terminate()
                    out, errors = fleet.communicate(timeout=60)
    assert (seeded["devices"], seeded["live"]) == (DEVICES, LIVE)
    assert sum(1 for device in listed if device["enrolled"]) == DEVICES
    assert len(stored) == DEVICES
    assert all(device["compliance"]["evaluated_at"] for device in stored)
    assert fleet.returncode == 0, errors
    report = json.loads(out)
    assert (report["enrolled"], report["failures"]) == (LIVE, [])
    # Each live device was sent each command once and answered it once; the rest only wait.
    assert report["commands"] == 2 * LIVE
    # The peer accepted a push for every seeded device (the live ones' reached them).
    assert peer.tally["tokens"] == DEVICES
    assert report["pushes"] >= LIVE
    for count in final:
        assert count["acknowledged"] == LIVE
        assert count.get("error", 0) == count.get("not_now", 0) == 0


def _send_to_all(api: httpx.Client, request_type: str) -> Callable[[], dict[str, int]]:
    queued = api.post("/api/v1/commands", json={"request_type": request_type,
                                                "targets": {"all": True}})  # fmt: skip
    assert queued.status_code == 201, queued.text
    uuid = queued.json()["command_uuid"]

    def counts() -> dict[str, int]:
        found: dict[str, int] = api.get(f"/api/v1/commands/{uuid}").json()["counts"]
        return found

    return counts
