"""Debian's `scepclient` (micromdm/scep) enrolls against a real `orchardist serve`, and
`openssl verify` checks what it got: two independent implementations agree with ours."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.server import orchardist, running_server

STATIC_CHALLENGE = "static-challenge-for-tests"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("peer") / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    return data_dir


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC_CHALLENGE}
    with running_server(data_dir, http=True, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def ca_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_text(orchardist(data_dir, "ca", "export"))
    return path


def scepclient(
    workdir: Path, server: str, challenge: str, cn: str
) -> subprocess.CompletedProcess[str]:
    """One scepclient run in `workdir`; an existing cert.pem there makes it renew."""
    return subprocess.run(
        [
            "scepclient",
            "-server-url",
            f"{server}/scep",
            "-challenge",
            challenge,
            "-cn",
            cn,
            "-private-key",
            str(workdir / "key.pem"),
            "-certificate",
            str(workdir / "cert.pem"),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def openssl_verify(ca_file: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca_file), "-purpose", "sslclient", str(cert)],
        capture_output=True,
        text=True,
        check=False,
    )


def _enrol(tmp_path: Path, server: str, challenge: str) -> tuple[Path, x509.Certificate, str]:
    cn = f"peer-{uuid.uuid4().hex[:12]}"
    done = scepclient(tmp_path, server, challenge, cn)
    assert done.returncode == 0, done.stdout + done.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    return tmp_path / "cert.pem", cert, cn


def test_one_time_challenge(tmp_path: Path, server: str, data_dir: Path, ca_file: Path) -> None:
    challenge = orchardist(data_dir, "scep", "challenge").strip()
    cert_path, cert, cn = _enrol(tmp_path, server, challenge)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == cn
    verified = openssl_verify(ca_file, cert_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith(": OK")


def test_one_time_challenge_cannot_be_used_twice(
    tmp_path: Path, server: str, data_dir: Path
) -> None:
    challenge = orchardist(data_dir, "scep", "challenge").strip()
    (tmp_path / "first").mkdir()
    _enrol(tmp_path / "first", server, challenge)
    (tmp_path / "second").mkdir()
    again = scepclient(tmp_path / "second", server, challenge, "peer-again")
    assert again.returncode != 0
    assert not (tmp_path / "second" / "cert.pem").exists()


def test_static_challenge(tmp_path: Path, server: str, ca_file: Path) -> None:
    cert_path, _, _ = _enrol(tmp_path, server, STATIC_CHALLENGE)
    assert openssl_verify(ca_file, cert_path).returncode == 0


def test_wrong_challenge_is_refused(tmp_path: Path, server: str) -> None:
    done = scepclient(tmp_path, server, "not-a-valid-challenge", "peer-wrong")
    assert done.returncode != 0
    assert not (tmp_path / "cert.pem").exists()


def test_renewal_with_the_issued_certificate(
    tmp_path: Path, server: str, data_dir: Path, ca_file: Path
) -> None:
    challenge = orchardist(data_dir, "scep", "challenge").strip()
    cert_path, first, cn = _enrol(tmp_path, server, challenge)
    # A second run finds cert.pem and sends a RenewalReq signed with it; no challenge is
    # needed for a renewal, so a wrong one must not matter.
    done = scepclient(tmp_path, server, "ignored-for-renewal", cn)
    assert done.returncode == 0, done.stdout + done.stderr
    renewed = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert renewed.serial_number != first.serial_number
    assert renewed.subject == first.subject
    assert openssl_verify(ca_file, cert_path).returncode == 0


def test_enrollment_through_a_registration_authority(tmp_path: Path) -> None:
    """With an RA configured, GetCACert returns CA and RA, scepclient encrypts to the RA,
    and the certificate it gets is still issued by the CA."""
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    orchardist(data_dir, "ca", "create-ra")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(orchardist(data_dir, "ca", "export"))
    (tmp_path / "client").mkdir()
    with running_server(data_dir, http=True) as base:
        caps = httpx.get(f"{base}/scep", params={"operation": "GetCACert"})
        assert caps.headers["content-type"] == "application/x-x509-ca-ra-cert"
        assert len(pkcs7.load_der_pkcs7_certificates(caps.content)) == 2
        challenge = orchardist(data_dir, "scep", "challenge").strip()
        cert_path, cert, _ = _enrol(tmp_path / "client", base, challenge)
    ra = x509.load_pem_x509_certificate((data_dir / "pki" / "ra.pem").read_bytes())
    assert cert.issuer == ra.issuer
    assert openssl_verify(ca_file, cert_path).returncode == 0


def test_manual_approval_with_scepclient_waiting(tmp_path: Path) -> None:
    """scepclient gets PENDING, waits (it retries after 30 s), and receives the certificate
    an administrator approved with `orchardist scep approve` meanwhile."""
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    env = {"ORCHARDIST_SCEP_MANUAL_APPROVAL": "true"}
    (tmp_path / "client").mkdir()
    with running_server(data_dir, http=True, env=env) as base:
        challenge = orchardist(data_dir, "scep", "challenge").strip()
        waiting = subprocess.Popen(
            [
                "scepclient",
                "-server-url",
                f"{base}/scep",
                "-challenge",
                challenge,
                "-cn",
                "held-device",
                "-private-key",
                str(tmp_path / "client" / "key.pem"),
                "-certificate",
                str(tmp_path / "client" / "cert.pem"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            pending = _wait_for_pending(data_dir)
            assert "CN=held-device" in pending["subject"]
            orchardist(data_dir, "scep", "approve", pending["transaction_id"])
            output, _ = waiting.communicate(timeout=90)
        finally:
            waiting.kill()
    assert waiting.returncode == 0, output
    assert "PENDING" in output
    cert = x509.load_pem_x509_certificate((tmp_path / "client" / "cert.pem").read_bytes())
    assert orchardist(data_dir, "scep", "pending", "--json").strip() == "[]"
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "held-device"


def _wait_for_pending(data_dir: Path) -> dict[str, str]:
    for _ in range(100):
        rows = json.loads(orchardist(data_dir, "scep", "pending", "--json"))
        if rows:
            row: dict[str, str] = rows[0]
            return row
        time.sleep(0.2)
    raise AssertionError("the request never showed as pending")
