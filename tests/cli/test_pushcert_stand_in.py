"""`pushcert test-cert`: a stand-in push certificate that the local APNs peer accepts, and
devices enrolled under a placeholder topic that do not block the first real import."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from orchardist.config import Settings, load_settings
from orchardist.push.stand_in import STAND_IN_TOPIC
from orchardist.storage import DeviceFacts
from orchardist.wiring import open_services
from tests.cli.test_device_cli import cli, enroll_phone
from tests.cli.test_pushcert import _files
from tests.push.identity import apns_peer
from tests.push.test_certificate import TOPIC
from tests.server import orchardist, running_server

PLACEHOLDER = str(Settings.model_fields["apns_topic"].default)


def _enroll(data_dir: Path, udid: str, topic: str, *, token: bytes = b"t") -> None:
    async def work() -> None:
        services = await open_services(load_settings(data_dir))
        now = datetime.now(UTC)
        await services.storage.authenticate(DeviceFacts(udid, topic), udid.ljust(64, "0"), now)
        await services.storage.token_update(
            udid, token=token, push_magic="m", unlock_token=None, now=now
        )
        await services.close()

    asyncio.run(work())


def test_a_stand_in_certificate_wakes_a_device_through_the_local_peer(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    said = orchardist(data_dir, "pushcert", "test-cert", "--dir", str(tmp_path))
    assert "--apns-client-ca" in said
    assert json.loads(orchardist(data_dir, "pushcert", "show", "--json"))["topic"] == (
        STAND_IN_TOPIC
    )
    again = cli(data_dir, "pushcert", "test-cert", "--dir", str(tmp_path))
    assert (again.returncode, "--force" in again.stderr) == (1, True)

    with (
        apns_peer(tmp_path / "apns-test-ca.pem", tmp_path) as peer,
        running_server(data_dir, http=True, env=peer.env) as base,
    ):
        phone = enroll_phone(base, data_dir, "UDID-STAND-IN")
        locked = json.loads(orchardist(data_dir, "device", "lock", phone.udid, "--json"))
        deadline = time.monotonic() + 30
        while True:
            shown = orchardist(data_dir, "command", "show", locked["command_uuid"], "--json")
            if json.loads(shown)["counts"]["pushed"] == 1:
                break
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
    tally = peer.tally
    assert (tally["tokens"], tally["refused"]) == (1, {})


def test_placeholder_topics_do_not_block_the_first_real_import(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    _enroll(data_dir, "UDID-EARLY", PLACEHOLDER)
    orchardist(data_dir, "pushcert", "test-cert", "--dir", str(tmp_path))
    _enroll(data_dir, "UDID-TRIED", STAND_IN_TOPIC)
    cert, key = _files(tmp_path, 115, TOPIC)
    imported = cli(data_dir, "pushcert", "import", "--cert", str(cert), "--key", str(key))
    assert imported.returncode == 0, imported.stderr
    assert f"1 device(s) enrolled with the placeholder topic {PLACEHOLDER}" in imported.stderr
    assert f"1 device(s) enrolled with the placeholder topic {STAND_IN_TOPIC}" in imported.stderr
    assert json.loads(orchardist(data_dir, "pushcert", "show", "--json"))["topic"] == TOPIC
    # Now a real certificate is in use: another topic is refused as before.
    _enroll(data_dir, "UDID-REAL", TOPIC)
    other, other_key = _files(tmp_path, 116, STAND_IN_TOPIC)
    refused = cli(data_dir, "pushcert", "import", "--cert", str(other), "--key", str(other_key))
    assert (refused.returncode, "enrolled devices use topic" in refused.stderr) == (1, True)
