"""A fleet of enrolled devices put straight into the database, and a light asyncio load of
them answering commands, for the kill -9 tests (tests/mdm/test_killed_server.py) and
`python -m bench crash`.

Enrolling thousands of virtual devices over SCEP and OTA would take minutes, so each
device's enrollment and identity certificate are written as the server writes them after
an Authenticate and TokenUpdate. Every device gets a certificate of its own, issued by the
data dir's CA for its UDID and bound to its enrollment only (binding.py rule 2: a
certificate serves one device); they all share one RSA key, which the server cannot tell
(it verifies each Mdm-Signature against the certificate the request carries, and knows
nothing of other devices' keys). Binding one certificate to many UDIDs would have been
cheaper still, but the server never makes that state, so a test built on it would prove
less.

Each device is a coroutine: signed Idle, then Acknowledged for every command the server
sends, until the server has nothing more. A request that fails in transit (the server was
killed) is sent again, the same request, until a server answers: a device retries its
report rather than starting a new session, so a result the dead server had already stored
reaches the new one as a retransmission.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import plistlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import insert

from orchardist.config import load_settings
from orchardist.pki import cms
from orchardist.pki.store import PkiFiles
from orchardist.storage.sql.repositories import open_storage, serial_key
from orchardist.storage.sql.tables import enrollments, issued_certificates
from orchardist.wiring import key_source
from tests.keys import rsa_key

TOPIC = "com.apple.mgmt.test"
CONNECT = "application/x-apple-aspen-mdm"


@dataclass(frozen=True)
class Member:
    udid: str
    certificate: x509.Certificate


def udids(count: int) -> list[str]:
    return [f"CRASH-{n:05}" for n in range(count)]


def device_key() -> rsa.RSAPrivateKey:
    return rsa_key(0)


async def seed_fleet(data_dir: Path, url: str, count: int) -> list[Member]:
    """`count` enrolled devices, each with its own certificate from the data dir's CA."""
    # The CA key file is encrypted under the data dir's master key.
    keys = key_source(load_settings(data_dir)).load()
    ca = PkiFiles.in_data_dir(data_dir, keys).load_ca()
    public_key = device_key().public_key()
    now = datetime.now(UTC)
    members, certificate_rows, enrollment_rows = [], [], []
    for udid in udids(count):
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)]))
            .issuer_name(ca.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca.key, hashes.SHA256())
        )
        der = certificate.public_bytes(Encoding.DER)
        sha256 = hashlib.sha256(der).hexdigest()
        members.append(Member(udid, certificate))
        certificate_rows.append({
            "serial": serial_key(certificate.serial_number), "status": "valid",
            "subject": certificate.subject.rfc4514_string(),
            "not_before": certificate.not_valid_before_utc, "der": der, "sha256": sha256,
            "not_after": certificate.not_valid_after_utc, "device_id": udid,
        })  # fmt: skip
        enrollment_rows.append({
            "device_id": udid, "topic": TOPIC, "identity_sha256": sha256, "enrolled": True,
            "token": hashlib.sha256(udid.encode()).digest(), "push_magic": f"magic-{udid}",
            "authenticated_at": now, "enrolled_at": now,
        })  # fmt: skip
    storage = await open_storage(url)
    try:
        await storage.database.write(
            lambda conn: (
                conn.execute(insert(issued_certificates), certificate_rows),
                conn.execute(insert(enrollments), enrollment_rows),
            )
        )
    finally:
        await storage.close()
    return members


@dataclass
class Tally:
    """What the devices saw: every command each one was sent, and what went wrong."""

    received: dict[str, list[str]] = field(default_factory=dict)  # udid -> CommandUUIDs
    acknowledged: dict[str, set[str]] = field(default_factory=dict)  # udid -> reported
    answered: int = 0  # reports a server answered 200
    retried: int = 0  # requests sent again after failing in transit
    refused: Counter[int] = field(default_factory=Counter)  # status -> count, besides 200
    finished: int = 0  # devices whose session ended with nothing more to do

    @property
    def deliveries(self) -> int:
        return sum(len(sent) for sent in self.received.values())

    @property
    def duplicates(self) -> int:
        """Commands sent again to a device that had already acknowledged them."""
        return sum(
            sent.count(uuid) - 1
            for udid, sent in self.received.items()
            for uuid in set(sent)
            if uuid in self.acknowledged.get(udid, set())
        )


class Fleet:
    """The devices of `members` against the server at `base` (which may die and return), or
    spread over several servers (`base` a list): a device whose server is gone goes on with
    the next, as a load balancer would send it."""

    def __init__(
        self, base: str | Sequence[str], members: Sequence[Member], *, connections: int = 24
    ) -> None:
        self.bases = [base] if isinstance(base, str) else list(base)
        self.members = members
        self.tally = Tally()
        self._key = device_key()
        self._gate = asyncio.Semaphore(connections)
        self._home = {m.udid: n % len(self.bases) for n, m in enumerate(members)}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=2.0),
            limits=httpx.Limits(max_connections=connections),
        )

    async def run(self) -> None:
        """Every device through one session: Idle, then an answer to each command."""
        try:
            await asyncio.gather(*(self._device(member) for member in self.members))
        finally:
            await self._client.aclose()

    async def _device(self, member: Member) -> None:
        async with self._gate:
            received = self.tally.received.setdefault(member.udid, [])
            acknowledged = self.tally.acknowledged.setdefault(member.udid, set())
            reply = await self._put(member, {"Status": "Idle"})
            while reply:
                command_uuid = str(plistlib.loads(reply)["CommandUUID"])
                received.append(command_uuid)
                acknowledged.add(command_uuid)  # from here on, sending it again is a duplicate
                report = {"Status": "Acknowledged", "CommandUUID": command_uuid}
                reply = await self._put(member, report)
                self.tally.answered += 1
            self.tally.finished += 1

    async def _put(self, member: Member, fields: dict[str, Any]) -> bytes:
        body = plistlib.dumps({"UDID": member.udid, **fields})
        # iOS signs with SHA-1 (Apple, "Mdm-Signature").
        signature = cms.sign(body, member.certificate, self._key, digest="sha1", detached=True)
        headers = {"Content-Type": CONNECT, "Mdm-Signature": base64.b64encode(signature).decode()}
        while True:
            url = f"{self.bases[self._home[member.udid]]}/mdm/connect"
            try:
                response = await self._client.put(url, content=body, headers=headers)
            except httpx.TransportError:
                self.tally.retried += 1
                self._home[member.udid] = (self._home[member.udid] + 1) % len(self.bases)
                await asyncio.sleep(0.2)  # the server is down: the same request again
                continue
            if response.status_code >= 500:  # counted (the tests want none), and retried
                self.tally.refused[response.status_code] += 1
                await asyncio.sleep(0.2)
                continue
            if response.status_code != 200:
                self.tally.refused[response.status_code] += 1
                return b""
            return response.content
