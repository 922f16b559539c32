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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.config import load_settings
from orchardist.keys.sources import key_source
from orchardist.pki import cms
from orchardist.pki.store import PkiFiles
from orchardist.simulator.seeded import certify
from orchardist.storage import DeviceFacts
from orchardist.storage.sql.repositories import open_storage
from orchardist.storage.sql.seeding import SeededDevice, issued, write_seeded
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
    """`count` enrolled devices, each with its own certificate from the data dir's CA
    (written as `orchardist simulate seed` writes its fleet)."""
    # The CA key file is encrypted under the data dir's master key.
    keys = key_source(load_settings(data_dir)).load()
    ca = PkiFiles.in_data_dir(data_dir, keys).load_ca()
    key, now = device_key(), datetime.now(UTC)
    members = [
        Member(udid, certify(ca, key, udid, validity_days=365, now=now)) for udid in udids(count)
    ]
    certificates = [issued(member.certificate, member.udid) for member in members]
    enrolled = [
        SeededDevice(
            DeviceFacts(device_id=member.udid, topic=TOPIC),
            identity_sha256=cert.sha256,
            token=hashlib.sha256(member.udid.encode()).digest(),
            push_magic=f"magic-{member.udid}",
        )
        for member, cert in zip(members, certificates, strict=True)
    ]
    storage = await open_storage(url)
    try:
        await write_seeded(storage, enrolled, certificates, now)
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
