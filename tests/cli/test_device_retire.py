"""`orchardist device retire`: confirmation; a device that is there removes its enrollment
profile; --forget ends the enrollment now and revokes the certificate."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

from tests.cli.test_device_cli import cli, enroll_phone
from tests.server import orchardist, running_server


def test_retire_needs_yes_then_takes_the_device_out(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True) as base:
        phone = enroll_phone(base, data_dir, "UDID-RETIRE")
        refused = cli(data_dir, "device", "retire", phone.udid)
        assert (refused.returncode, "--yes" in refused.stderr) == (1, True)
        assert phone.put("/mdm/connect", {"Status": "Idle"}).status_code == 200  # untouched

        leaving = json.loads(
            orchardist(data_dir, "device", "retire", phone.udid, "--yes", "--json")
        )
        assert leaving["state"] == "enrolled"  # until the device has removed its profile
        offered = plistlib.loads(phone.put("/mdm/connect", {"Status": "Idle"}).content)
        assert offered["CommandUUID"] == leaving["command_uuid"]
        assert offered["Command"]["RequestType"] == "RemoveProfile"

        retired = json.loads(
            orchardist(data_dir, "device", "retire", phone.udid, "--yes", "--forget", "--json")
        )
        assert retired == {"udid": phone.udid, "state": "retired", "command_uuid": None}
        shown = json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))
        assert (shown["enrolled"], shown["state"]) == (False, "retired")
        revoked = phone.put("/mdm/connect", {"Status": "Idle"})
        assert (revoked.status_code, "revoked" in revoked.text) == (403, True)

        gone = cli(data_dir, "device", "retire", phone.udid, "--yes")
        assert (gone.returncode, "--forget" in gone.stderr) == (1, True)
        missing = cli(data_dir, "device", "retire", "NOPE", "--yes")
        assert (missing.returncode, "no device NOPE" in missing.stderr) == (1, True)
