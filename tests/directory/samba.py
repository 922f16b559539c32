"""A real Active Directory domain controller (Debian's Samba AD DC) on loopback, for the
directory and OTA tests: domain EXAMPLE.TEST, user alice (group sales) signing in with her
UPN, user dave disabled. Samba's LDAP ports are fixed (389, 636); it refuses simple binds
without TLS, so it gets a TLS certificate from a test CA that names 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from orchardist.pki.ca import CertificateAuthority, generate_ca

REALM, BASE = "EXAMPLE.TEST", "DC=example,DC=test"
ADMIN_UPN, ADMIN_PASSWORD = "Administrator@example.test", "Admin-Passw0rd!"
PASSWORDS = {"alice": "Alice-Passw0rd!", "dave": "Dave-Passw0rd!"}


@dataclass(frozen=True)
class SambaDc:
    ldaps_url: str
    ldap_url: str  # StartTLS
    ca_file: Path
    base: str = BASE


def _tool(config: Path, *args: str) -> None:
    done = subprocess.run(["samba-tool", *args, "-s", str(config)], capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, f"samba-tool {args[0]} {args[1]}: {done.stderr}"


@contextmanager
def running_samba(directory: Path) -> Iterator[SambaDc]:
    for port in (389, 636):
        with socket.socket() as probe:
            busy = probe.connect_ex(("127.0.0.1", port)) == 0
        assert not busy, f"port {port} is taken: Samba AD needs it for the AD tests"
    provision = subprocess.run(
        ["samba-tool", "domain", "provision", f"--realm={REALM}", "--domain=EXAMPLE",
         "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}",
         f"--targetdir={directory}", "--option=interfaces=lo",
         "--option=bind interfaces only=yes"],
        capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip
    assert provision.returncode == 0, provision.stderr
    ca = CertificateAuthority(*generate_ca("AD Test CA", "Orchardist tests"))
    cert, key = ca.issue_server_certificate("dc.example.test")  # also names 127.0.0.1
    pem = serialization.Encoding.PEM
    (directory / "tls-ca.pem").write_bytes(ca.certificate.public_bytes(pem))
    (directory / "tls-cert.pem").write_bytes(cert.public_bytes(pem))
    key_file = directory / "tls-key.pem"
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))  # fmt: skip
    os.chmod(key_file, 0o600)  # Samba refuses a key others can read
    (directory / "run").mkdir()
    config = directory / "etc" / "smb.conf"
    config.write_text(config.read_text().replace("[global]", (
        f"[global]\n\tpid directory = {directory}/run\n\ttls enabled = yes\n"
        f"\ttls keyfile = {key_file}\n\ttls certfile = {directory}/tls-cert.pem\n"
        f"\ttls cafile = {directory}/tls-ca.pem"
    ), 1))  # fmt: skip
    _tool(config, "user", "create", "alice", PASSWORDS["alice"], "--given-name=Alice",
          "--surname=Liddell", "--mail-address=alice@example.test")  # fmt: skip
    _tool(config, "user", "create", "dave", PASSWORDS["dave"])
    _tool(config, "user", "disable", "dave")
    _tool(config, "group", "add", "sales")
    _tool(config, "group", "addmembers", "sales", "alice")
    process = subprocess.Popen(["samba", "-i", "-s", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", 636)) == 0:
                    break
            assert process.poll() is None, "samba exited while starting"
            assert time.monotonic() < deadline, "samba did not start listening"
            time.sleep(0.1)
        yield SambaDc("ldaps://127.0.0.1:636", "ldap://127.0.0.1:389", directory / "tls-ca.pem")
    finally:
        process.terminate()
        process.wait(timeout=30)
