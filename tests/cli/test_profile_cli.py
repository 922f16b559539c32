"""`orchardist profile build SPEC -o OUT --sign` and `profile validate FILE`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.test_device_cli import cli
from tests.server import orchardist

SPEC = """
identifier = "com.example.office"
name = "Office"
organization = "Example Corp"

[[payloads]]
type = "wifi"
SSID_STR = "Office"
EncryptionType = "WPA2"
Password = { env = "OFFICE_WIFI_PASSWORD" }

[[payloads]]
type = "root-certificate"
PayloadContent = { file = "ca.pem" }
"""


def test_build_sign_and_validate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    (tmp_path / "ca.pem").write_bytes((data_dir / "pki" / "ca.pem").read_bytes())
    (tmp_path / "office.toml").write_text(SPEC)
    out = tmp_path / "office.mobileconfig"
    env = {"OFFICE_WIFI_PASSWORD": "wifi-secret-123"}
    said = orchardist(
        data_dir, "profile", "build", str(tmp_path / "office.toml"), "-o", str(out), "--sign",
        env=env,
    )  # fmt: skip
    assert "com.example.office (2 payloads, signed)" in said
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(out), "-CAfile",
         str(tmp_path / "ca.pem"), "-purpose", "any", "-binary"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert b"<string>Office</string>" in verified.stdout
    checked = json.loads(orchardist(data_dir, "profile", "validate", str(out), "--json"))
    assert checked["errors"] == []
    assert checked["signed_by"].startswith("CN=localhost")
    assert checked["payloads"] == ["com.apple.wifi.managed", "com.apple.security.root"]

    # A signed profile altered afterwards does not verify: refused, not read.
    tampered = bytearray(out.read_bytes())
    spot = tampered.find(b"Office")
    tampered[spot] = ord("X")
    (tmp_path / "tampered.mobileconfig").write_bytes(bytes(tampered))
    refused = cli(data_dir, "profile", "validate", str(tmp_path / "tampered.mobileconfig"))
    assert (refused.returncode, "does not verify" in refused.stderr) == (1, True)

    # Without the secret, nothing is built and the message says what is missing.
    missing = cli(data_dir, "profile", "build", str(tmp_path / "office.toml"), "-o",
                  str(tmp_path / "x.mobileconfig"))  # fmt: skip
    assert missing.returncode == 1
    assert "OFFICE_WIFI_PASSWORD is not set" in missing.stderr
    assert not (tmp_path / "x.mobileconfig").exists()


def test_validate_reports_problems_with_their_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mobileconfig"
    bad.write_text(
        """<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.bad</string>
<key>PayloadUUID</key><string>A</string>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.webClip.managed</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>com.example.bad.clip</string>
  <key>PayloadUUID</key><string>B</string>
  <key>URL</key><integer>5</integer>
  <key>Label</key><string>Intranet</string>
  <key>VendorExtra</key><true/>
</dict></array>
</dict></plist>"""
    )
    result = cli(tmp_path / "data", "profile", "validate", str(bad))
    assert result.returncode == 1
    assert "error: PayloadContent[0].URL: must be a string, not integer" in result.stderr
    # Keys the schema lacks are warnings when checking someone else's profile.
    assert "warning: PayloadContent[0].VendorExtra: is not a key Apple defines" in result.stderr
    garbage = tmp_path / "garbage.mobileconfig"
    garbage.write_bytes(b"<?xml version='1.0'?><plist><dict><key>x")
    unreadable = cli(tmp_path / "data", "profile", "validate", str(garbage))
    assert (unreadable.returncode, "malformed plist" in unreadable.stderr) == (1, True)


def test_library_commands(tmp_path: Path) -> None:
    from tests.cli.test_device_cli import enroll_phone
    from tests.server import running_server

    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True) as base:
        phone = enroll_phone(base, data_dir, "UDID-PROFILE-1")
    (tmp_path / "ca.pem").write_bytes((data_dir / "pki" / "ca.pem").read_bytes())
    (tmp_path / "office.toml").write_text(SPEC)
    env = {"OFFICE_WIFI_PASSWORD": "wifi-secret-123"}
    stored = json.loads(
        orchardist(data_dir, "profile", "upload", str(tmp_path / "office.toml"), "--json", env=env)
    )
    assert (stored["identifier"], stored["version"], stored["installs"]) == (
        "com.example.office", 1, 0
    )  # fmt: skip
    # The same spec again: no version 2, nothing reinstalled.
    again = orchardist(data_dir, "profile", "upload", str(tmp_path / "office.toml"), env=env)
    assert again.startswith("unchanged: version 1 of com.example.office")
    again_json = json.loads(orchardist(data_dir, "profile", "upload", str(tmp_path / "office.toml"),
                                       "--json", env=env))  # fmt: skip
    assert (again_json["version"], again_json["unchanged"]) == (1, True)
    assert "com.example.office  v1  Office" in orchardist(data_dir, "profile", "list")
    assert "group sales: 1 device(s)" in orchardist(data_dir, "group", "set", "sales", phone.udid)
    groups = json.loads(orchardist(data_dir, "group", "list", "--json"))
    assert groups == {"sales": [phone.udid]}
    assigned = json.loads(
        orchardist(
            data_dir, "profile", "assign", "com.example.office", "--group", "sales", "--json"
        )
    )
    assert assigned == {"installs": 1, "removals": 0, "skipped": []}
    (row,) = json.loads(orchardist(data_dir, "profile", "status", "com.example.office", "--json"))
    assert (row["udid"], row["state"], row["overdue"]) == (phone.udid, "pending", False)
    table = orchardist(data_dir, "profile", "status", "com.example.office").splitlines()
    header = next(line for line in table if "device" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "device", "state", "installed", "wanted", "why"
    ]  # fmt: skip
    assert any(phone.udid in line and "pending" in line and "v1" in line for line in table)
    shown = json.loads(orchardist(data_dir, "profile", "show", "com.example.office", "--json"))
    assert shown["assignments"] == ["group:sales"]
    assert "wifi-secret-123" not in json.dumps(shown)
    unassigned = json.loads(orchardist(
        data_dir, "profile", "unassign", "com.example.office", "--group", "sales", "--json"
    ))  # fmt: skip
    assert unassigned["removals"] == 1
    unknown = cli(data_dir, "profile", "assign", "com.example.none", "--all")
    assert (unknown.returncode, "no profile com.example.none" in unknown.stderr) == (1, True)
    bad_group = cli(data_dir, "group", "set", "g", "NOPE")
    assert (bad_group.returncode, "unknown device NOPE" in bad_group.stderr) == (1, True)
    assert "deleted com.example.office" in orchardist(
        data_dir, "profile", "delete", "com.example.office"
    )


WIFI = SPEC.rsplit("[[payloads]]", 1)[0]  # the Wi-Fi payload alone: no file to read
WIFI_WITHOUT_SSID = WIFI.replace('SSID_STR = "Office"\n', "")
PLAIN_PASSWORD = WIFI.replace('{ env = "OFFICE_WIFI_PASSWORD" }', '"hunter2"')


def test_validate_a_spec(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = tmp_path / "office.toml"
    spec.write_text(WIFI)
    checked = cli(data_dir, "profile", "validate", str(spec))
    assert checked.returncode == 0, checked.stderr
    assert "com.example.office: 1 payloads, spec" in checked.stdout
    assert "valid against Apple's schema" in checked.stdout
    # The secret is not needed to check the spec: said, not refused.
    assert "OFFICE_WIFI_PASSWORD is not set here" in checked.stderr
    as_json = json.loads(orchardist(data_dir, "profile", "validate", str(spec), "--json"))
    assert (as_json["kind"], as_json["payloads"]) == ("spec", ["com.apple.wifi.managed"])
    # Any name: a TOML file is read as a spec, not as a signed profile.
    (tmp_path / "office.spec").write_text(spec.read_text())
    assert cli(data_dir, "profile", "validate", str(tmp_path / "office.spec")).returncode == 0
    (tmp_path / "notes.txt").write_text("this is = not [ a profile")
    unknown = cli(data_dir, "profile", "validate", str(tmp_path / "notes.txt"))
    assert (unknown.returncode, "is not a profile" in unknown.stderr) == (1, True)


def test_a_wifi_spec_without_ssid_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = tmp_path / "nossid.toml"
    spec.write_text(WIFI_WITHOUT_SSID)
    env = {"OFFICE_WIFI_PASSWORD": "wifi-secret-123"}
    for command in (["validate"], ["build", "-o", str(tmp_path / "x.mobileconfig")]):
        refused = cli(data_dir, "profile", *command, str(spec), env=env)
        assert refused.returncode == 1, command
        assert "PayloadContent[0].SSID_STR: is required" in refused.stderr
        assert "wifi-secret-123" not in refused.stderr
    assert not (tmp_path / "x.mobileconfig").exists()


def test_a_password_written_in_the_spec_is_warned_about(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spec = tmp_path / "plain.toml"
    spec.write_text(PLAIN_PASSWORD)
    built = cli(data_dir, "profile", "build", str(spec), "-o", str(tmp_path / "p.mobileconfig"))
    assert built.returncode == 0, built.stderr
    warning = " ".join(built.stderr.split())
    assert "warning: payloads[0].Password: a secret written in the spec" in warning
    assert '{ env = "NAME" } or { file = "path" }' in warning
    assert "hunter2" not in built.stderr
    checked = json.loads(orchardist(data_dir, "profile", "validate", str(spec), "--json"))
    assert checked["errors"] == []
    assert [w.split(":")[0] for w in checked["warnings"]] == ["payloads[0].Password"]
