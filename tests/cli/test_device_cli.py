"""The device and command CLI against a real server and a device enrolled over SCEP."""

from __future__ import annotations

import base64
import json
import os
import plistlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

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
    unknown = cli(data_dir, "device", "query", phone.udid, "everything")
    assert unknown.returncode == 1
