"""A real Active Directory domain controller (Debian's Samba AD DC) on loopback, for the
directory and OTA tests: domain EXAMPLE.TEST, user alice (group sales) signing in with her
UPN, user dave disabled. It refuses simple binds without TLS, so it gets a TLS certificate
from a test CA that names its address.

Samba's LDAP ports are fixed (389, 636), so each DC listens on a loopback address of its
own (127.0.0.2 and up; all of 127/8 reaches lo on Linux): xdist workers, or two test runs
on one machine, each run theirs side by side. One DC serves a whole session (the `samba`
fixture in tests/conftest.py): provisioning one takes a dozen CPU seconds."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import tempfile
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


def _listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((address, port)) == 0


@contextmanager
def _own_loopback_address() -> Iterator[str]:
    """A loopback address no other Samba of ours uses, held (an flock on a file named after
    it, shared by every process on the machine) until the block ends. One with something
    already listening on 389 or 636 (a DC left running by a killed run) is passed over."""
    locks = Path(tempfile.gettempdir()) / "orchardist-test-samba"
    locks.mkdir(exist_ok=True)
    for last in range(2, 255):
        address = f"127.0.0.{last}"
        with (locks / f"{address}.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if _listening(address, 389) or _listening(address, 636):
                continue
            yield address
            return
    raise AssertionError("every loopback address 127.0.0.2-254 has a Samba DC on it")


@contextmanager
def running_samba(directory: Path) -> Iterator[SambaDc]:
    with _own_loopback_address() as address, _samba_on(address, directory) as samba:
        yield samba


@contextmanager
def _samba_on(address: str, directory: Path) -> Iterator[SambaDc]:
    provision = subprocess.run(
        ["samba-tool", "domain", "provision", f"--realm={REALM}", "--domain=EXAMPLE",
         "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}",
         f"--targetdir={directory}", f"--option=interfaces={address}/8",
         "--option=bind interfaces only=yes"],
        capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip
    assert provision.returncode == 0, provision.stderr
    ca = CertificateAuthority(*generate_ca("AD Test CA", "Orchardist tests"))
    cert, key = ca.issue_server_certificate(address)
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
        while not (_listening(address, 636) and _listening(address, 389)):
            assert process.poll() is None, "samba exited while starting"
            assert time.monotonic() < deadline, "samba did not start listening"
            time.sleep(0.1)
        yield SambaDc(f"ldaps://{address}:636", f"ldap://{address}:389", directory / "tls-ca.pem")
    finally:
        process.terminate()
        process.wait(timeout=30)
