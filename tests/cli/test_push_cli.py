"""Pushes from the CLI's point of view: it queues, the running server pushes through the
local APNs peer and the CLI reports what the server did; it never talks to APNs itself, so
a CLI without the server's APNs settings cannot push to Apple's production service."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_device_cli import cli, enroll_phone
from tests.push.identity import apns_peer, push_identity
from tests.server import orchardist, running_server


def test_the_server_pushes_what_the_cli_queues(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    no_cert = cli(data_dir, "device", "push", "UDID-NOPE")
    assert (no_cert.returncode, "no push certificate" in no_cert.stderr) == (1, True)
    identity = push_identity(tmp_path / "apple")
    orchardist(
        data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
        "--key", str(identity.key_file), "--force",
    )  # fmt: skip
    client_ca = tmp_path / "apple-ca.pem"
    client_ca.write_bytes(identity.ca_pem)
    # Only the server knows where APNs is; the CLI runs without the peer's settings.
    with apns_peer(client_ca, tmp_path) as peer:
        with running_server(data_dir, http=True, env=peer.env) as base:
            phone = enroll_phone(base, data_dir, "UDID-PUSH-1")
            missing = cli(data_dir, "device", "push", "UDID-NOPE")
            assert (missing.returncode, "no device UDID-NOPE" in missing.stderr) == (1, True)
            locked = json.loads(orchardist(data_dir, "device", "lock", phone.udid, "--json"))
            assert (locked["targets"], locked["pushed"]) == (1, 1)
            shown = json.loads(
                orchardist(data_dir, "command", "show", locked["command_uuid"], "--json")
            )
            assert (shown["counts"]["pushed"], shown["counts"]["queued"]) == (1, 0)
            by_hand = json.loads(orchardist(data_dir, "device", "push", phone.udid, "--json"))
            assert by_hand == {"udid": phone.udid, "accepted": True}
            said = orchardist(data_dir, "device", "push", phone.udid)
            assert "APNs accepted it" in said
            shown_device = json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))
            assert shown_device["pushed_at"] is not None
            assert "last push" in orchardist(data_dir, "device", "show", phone.udid)
        # No server: the command waits, durably, and the CLI says who will push it.
        later = cli(data_dir, "device", "lock", phone.udid)
        assert later.returncode == 0
        assert "is `orchardist serve` running?" in later.stdout
        refused = cli(data_dir, "device", "push", phone.udid)
        assert (refused.returncode, "is `orchardist serve` running?" in refused.stderr) == (
            1,
            True,
        )
    tally = peer.tally
    assert (tally["accepted"], tally["tokens"], tally["refused"]) == (3, 1, {})
