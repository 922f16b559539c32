"""The device and command CLI against a real server and a device enrolled over SCEP."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import plistlib
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.mdm import builders
from orchardist.pki import cms
from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from tests.keys import rsa_key
from tests.server import ORCHARDIST, orchardist, running_server


@dataclass
class Phone:
    """Just enough of a device: a SCEP identity and signed MDM requests."""

    base: str
    udid: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def put(self, path: str, fields: dict[str, Any]) -> httpx.Response:
        body = plistlib.dumps({"UDID": self.udid, **fields})
        signature = cms.sign(body, self.cert, self.key, digest="sha1", detached=True)
        headers = {"Mdm-Signature": base64.b64encode(signature).decode()}
        return httpx.put(f"{self.base}{path}", content=body, headers=headers)


def enroll_phone(base: str, data_dir: Path, udid: str) -> Phone:
    ca = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
    key = rsa_key(100)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, udid)])
    requester = client.Requester(client.self_signed_signer(key, name), key, ca)
    challenge = orchardist(data_dir, "scep", "challenge").strip()
    csr = client.make_csr(key, udid, challenge).public_bytes(Encoding.DER)
    der = client.pki_message(requester, MessageType.PKCS_REQ, csr, udid)
    reply = httpx.post(f"{base}/scep?operation=PKIOperation", content=der)
    rep = client.read_cert_rep(reply.content, requester, ca)
    assert rep.status == PkiStatus.SUCCESS
    phone = Phone(base, udid, key, rep.certificates[0])
    topic = {"Topic": "com.apple.mgmt.test"}
    assert (
        phone.put(
            "/mdm/checkin",
            {
                "MessageType": "Authenticate",
                **topic,
                "SerialNumber": "F17X",
                "OSVersion": "4.3.5",
                "ProductName": "iPhone3,1",
            },
        ).status_code
        == 200
    )
    token_update = {
        "MessageType": "TokenUpdate",
        **topic,
        "Token": b"\x02" * 32,
        "PushMagic": "PM",
        "UnlockToken": b"UNLOCK",
    }
    assert phone.put("/mdm/checkin", token_update).status_code == 200
    return phone


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Phone]]:
    data_dir = tmp_path_factory.mktemp("cli-mdm") / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True) as base:
        yield data_dir, enroll_phone(base, data_dir, "UDID-CLI-1")


def cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_device_list_and_show(fleet: tuple[Path, Phone]) -> None:
    data_dir, phone = fleet
    (device,) = json.loads(orchardist(data_dir, "device", "list", "--json"))
    assert (device["udid"], device["serial_number"], device["os_version"], device["enrolled"]) == (
        phone.udid, "F17X", "4.3.5", True,
    )  # fmt: skip
    assert "F17X" in orchardist(data_dir, "device", "list")
    assert (
        json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))["topic"]
        == "com.apple.mgmt.test"
    )
    missing = cli(data_dir, "device", "show", "NOPE")
    assert (missing.returncode, "no device NOPE" in missing.stderr) == (1, True)


def test_lock_runs_when_the_phone_checks_in(fleet: tuple[Path, Phone]) -> None:
    data_dir, phone = fleet
    queued = json.loads(
        orchardist(data_dir, "device", "lock", phone.udid, "--message", "Found? Call IT", "--json")
    )
    sent = plistlib.loads(phone.put("/mdm/connect", {"Status": "Idle"}).content)
    assert sent["CommandUUID"] == queued["command_uuid"]
    assert sent["Command"] == {"RequestType": "DeviceLock", "Message": "Found? Call IT"}
    assert (
        phone.put(
            "/mdm/connect", {"Status": "Acknowledged", "CommandUUID": sent["CommandUUID"]}
        ).content
        == b""
    )
    shown = json.loads(orchardist(data_dir, "command", "show", queued["command_uuid"], "--json"))
    assert [t["status"] for t in shown["targets"]] == ["acknowledged"]


def test_erase_needs_yes(fleet: tuple[Path, Phone]) -> None:
    data_dir, phone = fleet
    refused = cli(data_dir, "device", "erase", phone.udid)
    assert (refused.returncode, "--yes" in refused.stderr) == (1, True)
    assert (
        json.loads(orchardist(data_dir, "device", "erase", phone.udid, "--yes", "--json"))[
            "targets"
        ]
        == 1
    )


def test_clear_passcode_uses_the_unlock_token(fleet: tuple[Path, Phone]) -> None:
    data_dir, phone = fleet
    queued = json.loads(orchardist(data_dir, "device", "clear-passcode", phone.udid, "--json"))
    shown = cli(data_dir, "command", "show", queued["command_uuid"])
    assert "ClearPasscode" in shown.stdout


def test_query_and_generic_send(fleet: tuple[Path, Phone]) -> None:
    data_dir, phone = fleet
    info = json.loads(orchardist(data_dir, "device", "query", phone.udid, "info", "--json"))
    assert info["targets"] == 1
    generic = json.loads(
        orchardist(
            data_dir,
            "command",
            "send",
            "Settings",
            "--all",
            "--json",
            'Settings=[{"Item": "DataRoaming", "Enabled": false}]',
        )
    )
    assert generic["targets"] == 1
    bad = cli(data_dir, "command", "send", "DeviceLock", "--all", "Message=5")
    assert (bad.returncode, "Message: must be a string" in bad.stderr) == (1, True)
    nobody = cli(data_dir, "command", "send", "DeviceLock")
    assert (nobody.returncode, "--target UDID" in nobody.stderr) == (1, True)
    orchardist(data_dir, "group", "set", "phones", phone.udid)
    grouped = orchardist(data_dir, "command", "send", "ProfileList", "--group", "phones", "--json")
    assert json.loads(grouped)["targets"] == 1
    no_group = cli(data_dir, "command", "send", "ProfileList", "--group", "tablets")
    assert (no_group.returncode, "no group 'tablets'" in no_group.stderr) == (1, True)
    unknown = cli(data_dir, "device", "query", phone.udid, "everything")
    assert unknown.returncode == 1


# An iPhone UDID of the older kind: 40 hex digits, longer than a narrow table allows.
LONG_UDID = "0123456789abcdef0123456789abcdef01234567"


def _certificate(name: str, valid_for: timedelta) -> bytes:
    key = rsa_key(101)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + valid_for)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(Encoding.DER)


ANSWERS: dict[str, dict[str, Any]] = {
    "DeviceInformation": {"QueryResponses": {
        "BatteryLevel": 0.42, "DeviceCapacity": 64.0, "AvailableDeviceCapacity": 20.5,
        "DeviceName": "Ana's [work] iPhone", "ModelName": "iPhone", "OSVersion": "17.5"}},
    "SecurityInfo": {"SecurityInfo": {
        "HardwareEncryptionCaps": 3, "PasscodePresent": True, "PasscodeCompliant": True}},
    "InstalledApplicationList": {"InstalledApplicationList": [
        {"Identifier": f"com.example.app{n}", "Name": f"App {n}"} for n in range(3)]},
    "CertificateList": {"CertificateList": [
        {"CommonName": "wifi.example.com", "IsIdentity": True,
         "Data": _certificate("wifi.example.com", timedelta(days=10, hours=1))},
        {"CommonName": "Long Lived CA", "IsIdentity": False,
         "Data": _certificate("Long Lived CA", timedelta(days=400))}]},
    "ProfileList": {"ProfileList": []},
}  # fmt: skip


def _answer_everything(phone: Phone) -> list[dict[str, Any]]:
    """Check in and answer each command as a real device would; the commands received."""
    received = []
    reply = phone.put("/mdm/connect", {"Status": "Idle"})
    while reply.content:
        sent = plistlib.loads(reply.content)
        received.append(sent["Command"])
        answer = ANSWERS.get(sent["Command"]["RequestType"], {})
        reply = phone.put(
            "/mdm/connect", {"Status": "Acknowledged", "CommandUUID": sent["CommandUUID"], **answer}
        )
    return received


def test_query_the_inventory_and_show_it(fleet: tuple[Path, Phone]) -> None:
    data_dir, first = fleet
    phone = enroll_phone(first.base, data_dir, LONG_UDID)
    shown = orchardist(data_dir, "device", "show", phone.udid)
    assert f"orchardist device query {phone.udid}" in shown  # nothing reported yet: say how

    queued = json.loads(orchardist(data_dir, "device", "query", phone.udid, "--json"))
    assert [c["request_type"] for c in queued["commands"]] == [
        "DeviceInformation", "SecurityInfo", "InstalledApplicationList", "CertificateList",
        "ProfileList",
    ]  # fmt: skip
    received = _answer_everything(phone)
    assert received[0]["Queries"] == list(builders.DEVICE_INFORMATION_QUERIES)

    summary = json.loads(orchardist(data_dir, "device", "show", phone.udid, "--json"))["summary"]
    assert {k: summary[k] for k in ("battery_percent", "storage_capacity_gb",
            "storage_available_gb", "passcode_present", "passcode_compliant", "encryption",
            "app_count")} == {"battery_percent": 42, "storage_capacity_gb": 64.0,
            "storage_available_gb": 20.5, "passcode_present": True, "passcode_compliant": True,
            "encryption": "data protection", "app_count": 3}  # fmt: skip
    (expiring,) = summary["expiring_certificates"]
    assert (expiring["common_name"], expiring["days_left"]) == ("wifi.example.com", 10)

    text = " ".join(orchardist(data_dir, "device", "show", phone.udid).split())
    expected = [
        "Ana's [work] iPhone", "battery 42 %", "storage 20.5 GB free of 64.0 GB",
        "passcode set, compliant", "encryption data protection", "apps 3",
        "certificates 1 expiring within 30 days: wifi.example.com:", "(in 10 day(s))",
    ]  # fmt: skip
    assert [line for line in expected if line not in text] == []
    assert "Long Lived CA" not in text


def test_query_every_device_and_one_kind(fleet: tuple[Path, Phone]) -> None:
    data_dir, _ = fleet
    everyone = json.loads(orchardist(data_dir, "device", "query", "--all", "apps", "--json"))
    assert everyone["targets"] == len(json.loads(orchardist(data_dir, "device", "list", "--json")))
    both = cli(data_dir, "device", "query", "--all", "UDID-CLI-1", "apps")
    assert (both.returncode, "give no UDID" in both.stderr) == (1, True)
    nobody = cli(data_dir, "device", "query")
    assert (nobody.returncode, "give a UDID, or --all" in nobody.stderr) == (1, True)


def test_device_information_without_queries_asks_the_usual_list(
    fleet: tuple[Path, Phone],
) -> None:
    data_dir, phone = fleet
    _answer_everything(phone)  # what the other tests left
    orchardist(data_dir, "command", "send", "DeviceInformation", "--target", phone.udid)
    (received,) = _answer_everything(phone)
    assert received == {"RequestType": "DeviceInformation",
                        "Queries": list(builders.DEVICE_INFORMATION_QUERIES)}  # fmt: skip
    orchardist(data_dir, "command", "send", "DeviceInformation", "--target", phone.udid,
               'Queries=["BatteryLevel"]')  # fmt: skip
    assert _answer_everything(phone)[0]["Queries"] == ["BatteryLevel"]


def test_a_misspelled_request_type_gets_suggestions(fleet: tuple[Path, Phone]) -> None:
    data_dir, _ = fleet
    typo = cli(data_dir, "command", "send", "DeviceInfo", "--all")
    assert typo.returncode == 1
    assert "unknown RequestType 'DeviceInfo' (did you mean DeviceInformation" in typo.stderr
    assert "orchardist command types" in typo.stderr
    case = cli(data_dir, "command", "send", "devicelock", "--all")
    assert "did you mean DeviceLock" in case.stderr


def test_command_types_lists_apples_schema(tmp_path: Path) -> None:
    listed = json.loads(orchardist(tmp_path, "command", "types", "--json"))
    assert len(listed) == 66
    by_name = {row["request_type"]: row for row in listed}
    assert by_name["DeviceInformation"]["required"] == ["Queries"]
    assert "Message" in by_name["DeviceLock"]["optional"]
    text = orchardist(tmp_path, "command", "types")
    assert "66 commands" in text
    assert "UnlockToken*" in text  # ClearPasscode's one required parameter


def _in_terminal(data_dir: Path, *args: str, columns: int) -> str:
    """The command's output as a terminal `columns` wide shows it (rich sees a TTY)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([*ORCHARDIST, "--data-dir", str(data_dir), *args], stdout=terminal,
                            stderr=subprocess.DEVNULL, env={**env, "TERM": "xterm"})  # fmt: skip
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=60)
    os.close(controller)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", output.decode())


def test_full_udids_when_piped_or_wide(fleet: tuple[Path, Phone]) -> None:
    data_dir, _ = fleet
    devices = json.loads(orchardist(data_dir, "device", "list", "--json"))
    if LONG_UDID not in [d["udid"] for d in devices]:
        pytest.skip("needs the device test_query_the_inventory_and_show_it enrolls")
    seen = next(d["last_seen_at"] for d in devices if d["udid"] == LONG_UDID)[:19]
    piped = orchardist(data_dir, "device", "list")
    assert LONG_UDID in piped  # a script reads them: never shortened
    assert seen in piped
    narrow = _in_terminal(data_dir, "device", "list", columns=70)
    assert LONG_UDID in narrow  # the UDID stays whole; the other cells give way
    assert seen not in narrow
    wide = _in_terminal(data_dir, "device", "list", "--wide", columns=70)
    assert LONG_UDID in wide
    assert seen in wide.replace("\r\n", "")  # the terminal wraps the long line
