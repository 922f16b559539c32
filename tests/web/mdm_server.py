"""A server with SQL storage and signing devices, for the /mdm and /api tests."""

from __future__ import annotations

import base64
import functools
import plistlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.config import load_settings
from orchardist.mdm.commands import new_command
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.pki.store import PkiFiles
from orchardist.scep.client import make_csr
from orchardist.scep.issuance import Binding, record_of
from orchardist.storage import NewCommand
from orchardist.web.app import create_app
from orchardist.wiring import Services, open_services
from tests.db import fresh_database
from tests.keys import rsa_key

CHECKIN = "application/x-apple-aspen-mdm-checkin"


@dataclass
class Device:
    udid: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def headers(
        self, body: bytes, content_type: str = "application/x-apple-aspen-mdm"
    ) -> dict[str, str]:
        signature = cms.sign(body, self.cert, self.key, digest="sha1", detached=True)
        return {"Mdm-Signature": base64.b64encode(signature).decode(), "Content-Type": content_type}


@dataclass
class Server:
    services: Services
    http: httpx.AsyncClient
    ca: CertificateAuthority

    async def device(
        self, udid: str, index: int, *, days: int = 30, ago: int = 0, binding: Binding | None = None
    ) -> Device:
        """A device with an identity from our CA, recorded as SCEP issuance would (with
        `binding`: issued for a device, or renewing a certificate)."""
        key = rsa_key(index)
        now = datetime.now(UTC) - timedelta(days=ago)
        cert = self.ca.issue_client_certificate(make_csr(key, udid), validity_days=days, now=now)
        await self.services.storage.add_certificate(record_of(cert, binding))
        return Device(udid, key, cert)

    async def checkin(
        self, device: Device, message: str, path: str = "/mdm/checkin", **fields: Any
    ) -> httpx.Response:
        body = plistlib.dumps({"MessageType": message, "UDID": device.udid, **fields})
        return await self.http.put(path, content=body, headers=device.headers(body, CHECKIN))

    async def report(self, device: Device, status: str, **fields: Any) -> httpx.Response:
        body = plistlib.dumps({"Status": status, "UDID": device.udid, **fields})
        return await self.http.put("/mdm/connect", content=body, headers=device.headers(body))

    async def enroll(self, device: Device) -> None:
        assert (
            await self.checkin(
                device,
                "Authenticate",
                Topic="com.apple.mgmt.t",
                SerialNumber="S1",
                OSVersion="18.1",
            )
        ).status_code == 200
        assert (
            await self.checkin(
                device,
                "TokenUpdate",
                Topic="com.apple.mgmt.t",
                Token=b"\x01" * 32,
                PushMagic="M",
                UnlockToken=b"U",
            )
        ).status_code == 200

    async def queue(self, request_type: str, params: dict[str, Any], *devices: Device) -> str:
        command = new_command(request_type, params)
        body = plistlib.dumps(command.as_plist())
        record = NewCommand(command.command_uuid, request_type, body)
        await self.services.storage.enqueue(record, [d.udid for d in devices], datetime.now(UTC))
        return command.command_uuid


@functools.cache
def _test_pki() -> tuple[CertificateAuthority, tuple[x509.Certificate, rsa.RSAPrivateKey]]:
    """The servers' CA and TLS certificate, made once per run as tests/keys.py makes keys
    (RSA key generation is slow); a test that needs a stranger CA makes its own."""
    ca = CertificateAuthority(*generate_ca("MDM Test CA", "Orchardist tests"))
    return ca, ca.issue_server_certificate("mdm.test")


@asynccontextmanager
async def running(backend: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Server]:
    """A server on a fresh database of this backend, with a CA in tmp_path; `settings`
    override the defaults."""
    ca, (server_cert, server_key) = _test_pki()
    files = PkiFiles.in_data_dir(tmp_path)
    files.save_ca(ca)
    files.save_server(server_cert, server_key, ca.certificate)
    async with fresh_database(backend, tmp_path) as url:
        options = {"database_url": url, "mdm_max_body_bytes": 65536, **settings}
        loaded = load_settings(tmp_path, **options)
        services = await open_services(loaded)
        transport = httpx.ASGITransport(app=create_app(loaded, services))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="https://mdm.test") as http:
                yield Server(services, http, ca)
        finally:
            await services.close()
