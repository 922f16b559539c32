"""`orchardist enrollment-profile`: what a device installs, checked by OpenSSL and the schema."""

from __future__ import annotations

import json
import plistlib
import subprocess
from pathlib import Path

from cryptography import x509

from orchardist.mdm.enrollment import profile_problems
from tests.server import ORCHARDIST, orchardist


def test_signed_and_unsigned_profiles(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "mdm.example.test")
    signed, unsigned = tmp_path / "signed.mobileconfig", tmp_path / "plain.mobileconfig"
    made = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "enrollment-profile", "-o", str(signed)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "apns_topic is not set" in made.stderr
    orchardist(data_dir, "enrollment-profile", "--unsigned", "-o", str(unsigned))

    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed), "-binary",
         "-CAfile", str(data_dir / "pki" / "ca.pem"), "-purpose", "any"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    profile = plistlib.loads(verified.stdout)
    plain = plistlib.loads(unsigned.read_bytes())
    assert profile_problems(profile) == []
    root, scep, mdm = profile["PayloadContent"]
    ca = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == ca
    assert scep["PayloadContent"]["URL"] == "https://mdm.example.test:8443/scep"
    assert mdm["IdentityCertificateUUID"] == scep["PayloadUUID"]
    assert (mdm["ServerURL"], mdm["CheckInURL"]) == (
        "https://mdm.example.test:8443/mdm/connect",
        "https://mdm.example.test:8443/mdm/checkin",
    )
    assert (mdm["SignMessage"], mdm["AccessRights"], mdm["CheckOutWhenRemoved"]) == (
        True,
        8191,
        True,
    )
    # Each profile carries its own one-time challenge.
    challenges = {p["PayloadContent"][1]["PayloadContent"]["Challenge"] for p in (profile, plain)}
    assert len(challenges) == 2


def test_enroll_token_prints_a_one_time_link(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "mdm.example.test")
    made = json.loads(orchardist(data_dir, "enroll", "token", "--json"))
    assert made["url"].startswith("https://mdm.example.test:8443/mdm/enroll?token=")
    other = orchardist(data_dir, "enroll", "token").strip()
    assert other != made["url"]
