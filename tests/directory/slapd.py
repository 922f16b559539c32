"""A real OpenLDAP server (Debian's slapd) on a loopback port, for the directory tests:
users alice (groups staff, sales), bob (staff) and carol, locked by the password-policy
overlay's pwdAccountLockedTime; groups as groupOfNames (the memberOf overlay is off, so the
group search path is exercised too)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ldap
import ldap.modlist
from cryptography.hazmat.primitives import serialization

from orchardist.pki.ca import CertificateAuthority, generate_ca
from tests.server import free_port

SLAPD = "/usr/sbin/slapd"
BASE = "dc=example,dc=com"
ADMIN_DN, ADMIN_PASSWORD = f"cn=admin,{BASE}", "admin-secret"
SERVICE_DN, SERVICE_PASSWORD = f"cn=orchardist,ou=services,{BASE}", "service-secret"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

CONFIG = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {dir}/db
overlay ppolicy
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
"""


@dataclass(frozen=True)
class Slapd:
    url: str  # ldap:// (StartTLS offered)
    ldaps_url: str
    ca_file: Path  # the CA of its TLS certificate
    base: str = BASE


def _entries() -> list[tuple[str, dict[str, list[bytes]]]]:
    def attrs(**values: str | list[str]) -> dict[str, list[bytes]]:
        return {k: [v.encode()] if isinstance(v, str) else [x.encode() for x in v]
                for k, v in values.items()}  # fmt: skip

    people = [
        ("alice", "Alice Liddell", "alice@example.com"),
        ("bob", "Bob Builder", "bob@example.com"),
        ("carol", "Carol Locked", "carol@example.com"),
    ]
    entries = [
        (BASE, attrs(objectClass=["top", "dcObject", "organization"], dc="example", o="Example")),
        (f"ou=people,{BASE}", attrs(objectClass="organizationalUnit", ou="people")),
        (f"ou=groups,{BASE}", attrs(objectClass="organizationalUnit", ou="groups")),
        (f"ou=services,{BASE}", attrs(objectClass="organizationalUnit", ou="services")),
        (SERVICE_DN, attrs(objectClass=["person", "simpleSecurityObject"], cn="orchardist",
                           sn="service", userPassword=SERVICE_PASSWORD)),
    ]  # fmt: skip
    for uid, name, mail in people:
        entries.append((
            f"uid={uid},ou=people,{BASE}",
            attrs(objectClass=["inetOrgPerson"], uid=uid, cn=name, sn=name.split()[-1],
                  mail=mail, userPassword=PASSWORDS[uid]),
        ))  # fmt: skip
    for group, members in (("staff", ["alice", "bob"]), ("sales", ["alice"])):
        entries.append((
            f"cn={group},ou=groups,{BASE}",
            attrs(objectClass="groupOfNames", cn=group,
                  member=[f"uid={m},ou=people,{BASE}" for m in members]),
        ))  # fmt: skip
    return entries


@contextmanager
def running_slapd(directory: Path) -> Iterator[Slapd]:
    (directory / "db").mkdir(parents=True)
    config = directory / "slapd.conf"
    config.write_text(
        CONFIG.format(dir=directory, base=BASE, admin=ADMIN_DN, password=ADMIN_PASSWORD)
    )
    _tls_files(directory)
    url, ldaps_url = f"ldap://127.0.0.1:{free_port()}", f"ldaps://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [SLAPD, "-f", str(config), "-h", f"{url}/ {ldaps_url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        admin = _connect(url, process)
        for dn, entry in _entries():
            admin.add_s(dn, ldap.modlist.addModlist(entry))
        # carol is locked by an administrator (the password policy's permanent lock).
        locked = [(ldap.MOD_ADD, "pwdAccountLockedTime", [b"000001010000Z"])]
        admin.modify_s(f"uid=carol,ou=people,{BASE}", locked)
        admin.unbind_s()
        yield Slapd(url, ldaps_url, directory / "ca.pem")
    finally:
        process.terminate()
        process.communicate(timeout=10)


def _tls_files(directory: Path) -> None:
    ca = CertificateAuthority(*generate_ca("LDAP Test CA", "Orchardist tests"))
    cert, key = ca.issue_server_certificate("ldap.test")  # also names 127.0.0.1
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.certificate.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _connect(url: str, process: subprocess.Popen[bytes]) -> ldap.ldapobject.LDAPObject:
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = ldap.initialize(url)
            conn.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
            return conn
        except ldap.SERVER_DOWN:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
