"""`orchardist pushcert`: import, the topic guard, show, and the topic in new profiles."""

from __future__ import annotations

import asyncio
import json
import plistlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from orchardist.config import load_settings
from orchardist.storage import DeviceFacts
from orchardist.wiring import open_services
from tests.keys import rsa_key
from tests.push.test_certificate import TOPIC, push_certificate
from tests.server import ORCHARDIST, orchardist


def _files(tmp_path: Path, index: int, topic: str) -> tuple[Path, Path]:
    key = rsa_key(index)
    cert = push_certificate(key, topic=topic)
    cert_path, key_path = tmp_path / f"push{index}.pem", tmp_path / f"push{index}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_import_show_and_profile_topic(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    cert, key = _files(tmp_path, 113, TOPIC)
    imported = json.loads(
        orchardist(data_dir, "pushcert", "import", "--cert", str(cert), "--key", str(key), "--json")
    )
    assert imported["topic"] == TOPIC
    shown = json.loads(orchardist(data_dir, "pushcert", "show", "--json"))
    assert shown["days_left"] == 364
    assert shown["warning"] is None
    profile_path = tmp_path / "p.mobileconfig"
    made = subprocess.run(
        [
            *ORCHARDIST,
            "--data-dir",
            str(data_dir),
            "enrollment-profile",
            "--unsigned",
            "-o",
            str(profile_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "apns_topic is not set" not in made.stderr
    mdm = plistlib.loads(profile_path.read_bytes())["PayloadContent"][2]
    assert mdm["Topic"] == TOPIC


def test_a_different_topic_is_refused_while_devices_are_enrolled(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")

    async def enroll_one() -> None:
        services = await open_services(load_settings(data_dir))
        now = datetime.now(UTC)
        await services.storage.authenticate(DeviceFacts("D1", TOPIC), "a" * 64, now)
        await services.storage.token_update(
            "D1", token=b"t", push_magic="m", unlock_token=None, now=now
        )
        await services.close()

    asyncio.run(enroll_one())
    other_cert, other_key = _files(
        tmp_path, 114, "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000"
    )
    args = ["pushcert", "import", "--cert", str(other_cert), "--key", str(other_key)]
    refused = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "enrolled devices use topic" in refused.stderr
    assert "renew the existing certificate" in refused.stderr
    assert not (data_dir / "pki" / "push.pem").exists()
    orchardist(data_dir, *args, "--force")
    assert (data_dir / "pki" / "push.pem").exists()
    assert oct((data_dir / "pki" / "push.key").stat().st_mode & 0o777) == "0o600"


def test_show_before_any_import(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    missing = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "pushcert", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (missing.returncode, "pushcert csr" in missing.stderr) == (1, True)


def test_csr_writes_a_private_key_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    key, csr = tmp_path / "push.key", tmp_path / "push.csr"
    args = [*ORCHARDIST, "pushcert", "csr", "--key-out", str(key), "--csr-out", str(csr)]
    made = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "orchardist pushcert import" in made.stdout
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert csr.read_text().startswith("-----BEGIN CERTIFICATE REQUEST-----")
    again = subprocess.run(args, capture_output=True, text=True, check=False)
    assert (again.returncode, "exists" in again.stderr) == (1, True)
