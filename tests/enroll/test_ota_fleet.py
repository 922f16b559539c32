"""End to end over the air: directory user alice signs in on /enroll, accepts, and a
virtual device walks the whole path (Profile Service, attributes signed by its device
certificate, SCEP identity, encrypted final profile, check-in); it ends up enrolled,
recorded with alice, and receives the profile assigned to her directory group: with slapd,
and with an Active Directory (Samba) user signing in with her UPN."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.directory.samba import ADMIN_PASSWORD as AD_ADMIN_PASSWORD
from tests.directory.samba import ADMIN_UPN, SambaDc
from tests.directory.samba import PASSWORDS as AD_PASSWORDS
from tests.directory.slapd import BASE, PASSWORDS, SERVICE_DN, SERVICE_PASSWORD, running_slapd
from tests.keys import rsa_key
from tests.server import ORCHARDIST, orchardist, running_server

SPEC = """
identifier = "com.example.sales-wifi"
name = "Sales Wi-Fi"
[[payloads]]
type = "wifi"
SSID_STR = "Sales"
EncryptionType = "WPA2"
Password = "sales-secret"
"""


def device_ca(directory: Path) -> tuple[Path, Path]:
    """A CA playing Apple's iPhone Device CA for virtual devices."""
    key, now = rsa_key(200), datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test iPhone Device CA")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "device-ca.pem", directory / "device-ca.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def _directory(
    kind: str, directory: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, str, str, list[str]]]:
    """(the [directory] table, the login, the password, alice's groups) for each kind; the
    Samba DC is the session's (tests/conftest.py), asked for only when this kind needs it."""
    if kind == "slapd":
        with running_slapd(directory) as slapd:
            yield (
                f'url = "{slapd.url}"\nbase_dn = "{BASE}"\n'
                f'bind_dn = "{SERVICE_DN}"\nbind_password = "{SERVICE_PASSWORD}"\n',
                "alice", PASSWORDS["alice"], ["sales", "staff"],
            )  # fmt: skip
        return
    samba: SambaDc = request.getfixturevalue("samba")
    yield (
        f'url = "{samba.ldaps_url}"\nbase_dn = "{samba.base}"\nbind_dn = "{ADMIN_UPN}"\n'
        f'bind_password = "{AD_ADMIN_PASSWORD}"\nca_file = "{samba.ca_file}"\n'
        "active_directory = true\n",
        "alice@example.test", AD_PASSWORDS["alice"], ["sales"],
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["slapd", "samba"])
def test_alice_enrolls_over_the_air_and_gets_her_groups_profile(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data_dir = tmp_path / "data"
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    headers = {"Authorization": f"Bearer {admin['admin_token']}"}
    ca_file, ca_key = device_ca(tmp_path)
    (tmp_path / "sales.toml").write_text(SPEC)
    orchardist(data_dir, "profile", "upload", str(tmp_path / "sales.toml"))
    orchardist(
        data_dir, "profile", "assign", "com.example.sales-wifi", "--group", "directory:sales"
    )
    with _directory(kind, tmp_path / kind, request) as (table, login, password, groups):
        with (data_dir / "orchardist.toml").open("a") as config:
            config.write(f'\nota_device_anchor_files = ["{ca_file}"]\n\n[directory]\n{table}')
        with running_server(data_dir, http=True) as base:
            # The sign-in page, as a phone loads it.
            assert "Sign in with your work account" in httpx.get(f"{base}/enroll").text
            walked = subprocess.run(
                [*ORCHARDIST, "simulate", "--devices", "1", "--ota", base, "--user", login,
                 "--password", password, "--device-ca", str(ca_file),
                 "--device-ca-key", str(ca_key), "--rounds", "3", "--interval", "0.3", "--json"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert walked.returncode == 0, walked.stderr + walked.stdout
            report = json.loads(walked.stdout)
            assert (report["enrolled"], report["failures"]) == (1, [])
            with httpx.Client(base_url=base, headers=headers) as http:
                (device,) = http.get("/api/v1/devices").json()
                assert device["enrolled"]

                def installed() -> bool:
                    rows = http.get("/api/v1/profiles/com.example.sales-wifi/status").json()
                    return [r["state"] for r in rows] == ["installed"]

                _wait(installed, "alice's group profile")
                shown = http.get(f"/api/v1/devices/{device['udid']}").json()
                assert shown["enrolled_by"]["user"] == login
                assert shown["enrolled_by"]["groups"] == groups
                listed = http.get("/api/v1/groups").json()
                assert listed["directory:sales"] == [device["udid"]]
