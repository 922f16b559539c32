"""`orchardist init`, `ca export`, `token create`, `scep challenge` as a user runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from tests.server import ORCHARDIST, orchardist


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    summary = json.loads(orchardist(data_dir, "init", "--hostname", "mdm.example.test", "--json"))
    return data_dir, summary


def test_init_creates_everything(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, summary = initialised
    assert (data_dir / "orchardist.toml").read_text().strip() == 'hostname = "mdm.example.test"'
    assert (data_dir / "orchardist.db").exists()
    for secret in ("pki/ca.key", "pki/server.key", "orchardist.toml"):
        mode = stat.S_IMODE((data_dir / secret).stat().st_mode)
        assert mode == 0o600, f"{secret} is readable by others: {oct(mode)}"
    assert summary["ca"] == "created"
    assert summary["admin_token"].startswith("orch_")


def test_ca_is_a_proper_root(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, _ = initialised
    pem = orchardist(data_dir, "ca", "export")
    ca = x509.load_pem_x509_certificate(pem.encode())
    assert ca == x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    ca.verify_directly_issued_by(ca)


def test_server_certificate_names(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, _ = initialised
    pems = (data_dir / "pki" / "server.pem").read_bytes()
    server, chain = x509.load_pem_x509_certificates(pems)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mdm.example.test", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    server.verify_directly_issued_by(chain)


def test_rerun_keeps_the_ca_and_the_admin_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = json.loads(orchardist(data_dir, "init", "--hostname", "a.test", "--json"))
    again = json.loads(orchardist(data_dir, "init", "--hostname", "b.test", "--json"))
    assert again["ca"] == "kept"
    assert again["ca_sha256"] == first["ca_sha256"]
    assert again["admin_token"] is None
    assert 'hostname = "b.test"' in (data_dir / "orchardist.toml").read_text()
    forced = json.loads(orchardist(data_dir, "init", "--hostname", "b.test", "--force", "--json"))
    assert forced["ca"] == "created"
    assert forced["ca_sha256"] != first["ca_sha256"]


def test_token_create(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, _ = initialised
    token = orchardist(data_dir, "token", "create", "--name", "ci").strip()
    assert token.startswith("orch_")
    assert len(token) > 40
    again = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "token", "create", "--name", "ci"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr
    stored = b"".join(p.read_bytes() for p in data_dir.glob("orchardist.db*"))
    assert token.encode() not in stored


def test_scep_challenge(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, _ = initialised
    first = json.loads(orchardist(data_dir, "scep", "challenge", "--json"))
    second = orchardist(data_dir, "scep", "challenge").strip()
    assert first["challenge"] != second
    expires = datetime.fromisoformat(first["expires_at"])
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)


def test_data_dir_from_environment(initialised: tuple[Path, dict[str, str]]) -> None:
    data_dir, _ = initialised
    done = subprocess.run(
        [*ORCHARDIST, "ca", "export"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ORCHARDIST_DATA_DIR": str(data_dir)},
    )
    assert done.stdout == (data_dir / "pki" / "ca.pem").read_text()


@pytest.mark.parametrize("command", [["scep", "challenge"], ["ca", "export"], ["serve"]])
def test_commands_on_an_empty_folder_say_what_to_do(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchardist", "--data-dir", str(tmp_path / "none"), *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "init --hostname" in done.stderr
