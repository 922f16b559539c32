"""Pushing from the CLI through the local APNs peer: a queued command is pushed at once,
`device push` wakes a device by hand, `command show` counts the pushed devices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_device_cli import cli, enroll_phone
from tests.push.identity import push_identity
from tests.server import orchardist, running_server


def test_commands_are_pushed_and_devices_can_be_pushed_by_hand(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    no_cert = cli(data_dir, "device", "push", "UDID-NOPE")
    assert (no_cert.returncode, "no device UDID-NOPE" in no_cert.stderr) == (1, True)
    identity = push_identity(tmp_path / "apple")
    with running_server(data_dir, http=True) as base:
        phone = enroll_phone(base, data_dir, "UDID-PUSH-1")
    # The server is gone: only this CLI pushes, so what it reports is all there was.
    refused = cli(data_dir, "device", "push", phone.udid)
    assert (refused.returncode, "no push certificate" in refused.stderr) == (1, True)
    orchardist(
        data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
        "--key", str(identity.key_file), "--force",
    )  # fmt: skip
    client_ca, peer_ca = tmp_path / "apple-ca.pem", tmp_path / "peer-ca.pem"
    client_ca.write_bytes(identity.ca_pem)
    peer = subprocess.Popen(
        [
            sys.executable, "-m", "orchardist.simulator.apns_peer",
            "--client-ca", str(client_ca), "--ca-out", str(peer_ca),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert peer.stdout is not None
        env = {"ORCHARDIST_APNS_URL": peer.stdout.readline().strip(),
               "ORCHARDIST_APNS_CA_FILE": str(peer_ca)}  # fmt: skip
        locked = json.loads(orchardist(data_dir, "device", "lock", phone.udid, "--json", env=env))
        assert (locked["targets"], locked["pushed"]) == (1, 1)
        shown = json.loads(
            orchardist(data_dir, "command", "show", locked["command_uuid"], "--json", env=env)
        )
        assert (shown["counts"]["pushed"], shown["counts"]["queued"]) == (1, 0)
        by_hand = json.loads(orchardist(data_dir, "device", "push", phone.udid, "--json", env=env))
        assert by_hand == {"udid": phone.udid, "accepted": True}
        said = orchardist(data_dir, "device", "push", phone.udid, env=env)
        assert "APNs accepted it" in said
    finally:
        peer.terminate()
        out, _ = peer.communicate(timeout=30)
    tally = json.loads(out.strip().splitlines()[-1])
    assert (tally["accepted"], tally["tokens"], tally["refused"]) == (3, 1, {})
