"""`orchardist device list --non-compliant` and compliance in `device show`, against a real
server that evaluated the rules when the device enrolled."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.cli.test_device_cli import enroll_phone
from tests.server import orchardist, running_server

RULES = {"ORCHARDIST_COMPLIANCE__MIN_OS_VERSION__IOS": "17.0"}


def test_non_compliant_devices_and_why(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True, env=RULES) as base:
        phone = enroll_phone(base, data_dir, "UDID-OLD-IOS")  # an iPhone3,1 on iOS 4.3.5
        listed = json.loads(orchardist(data_dir, "device", "list", "--non-compliant", "--json"))
        assert [(d["udid"], d["compliance"]["status"]) for d in listed] == [
            (phone.udid, "non_compliant")
        ]
        reason = "iOS 4.3.5 is below the minimum 17.0"
        assert listed[0]["compliance"]["reasons"] == [reason]
        table = orchardist(data_dir, "device", "list", "--non-compliant")
        assert reason in table
        assert "non-compliant" in table
        shown = orchardist(data_dir, "device", "show", phone.udid)
        assert "compliance" in shown
        assert reason in shown
        as_json = json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))
        assert as_json["compliance"]["reasons"] == [reason]
    # Served again without the rule: the pass at start-up redoes the verdict under the new
    # rules (nothing left to break).
    with running_server(data_dir, http=True):
        for _ in range(100):
            listed = json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))
            if listed["compliance"]["status"] == "compliant":
                break
            time.sleep(0.1)
        assert listed["compliance"] == {
            **listed["compliance"],
            "status": "compliant",
            "reasons": [],
        }
        assert "No device breaks" in orchardist(data_dir, "device", "list", "--non-compliant")
