"""A forwarded client certificate (`mdm_client_cert_header`) speaks for a device only when
the peer that sent it is in `trusted_proxies`: a device's certificate is public (every
signed message carries it), so anyone else could name it. In process, through what
`serve` runs (web/proxy.py around the app), with the peer's address set per request."""

from __future__ import annotations

import plistlib
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.web.app import create_app, served
from orchardist.web.proxy import behind_proxies
from tests.db import backends
from tests.web.mdm_server import Device, Server, running

pytestmark = pytest.mark.anyio
HEADER = "X-SSL-Client-Cert"


def _forwarded(device: Device) -> dict[str, str]:
    """What nginx sends for a device that presented its certificate: $ssl_client_escaped_cert."""
    return {HEADER: quote(device.cert.public_bytes(Encoding.PEM).decode(), safe="")}


async def _idle_from(server: Server, peer: str, device: Device) -> httpx.Response:
    """An unsigned Idle with the device's certificate in the header, from `peer`."""
    settings = server.services.settings
    app = behind_proxies(served(create_app(settings, server.services)), settings)
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    body = plistlib.dumps({"Status": "Idle", "UDID": device.udid})
    async with httpx.AsyncClient(transport=transport, base_url="http://mdm.test") as http:
        return await http.put("/mdm/connect", content=body, headers=_forwarded(device))


@pytest.mark.parametrize("backend", backends())
async def test_only_a_trusted_proxy_forwards_a_certificate(backend: str, tmp_path: Path) -> None:
    async with running(backend, tmp_path, mdm_client_cert_header=HEADER,
                       trusted_proxies=["127.0.0.1", "10.0.0.0/8"]) as server:  # fmt: skip
        device = await server.device("UDID-PROXIED", 90)
        await server.enroll(device)
        assert (await _idle_from(server, "127.0.0.1", device)).status_code == 200
        assert (await _idle_from(server, "10.20.30.40", device)).status_code == 200
        stranger = await _idle_from(server, "203.0.113.9", device)
    assert stranger.status_code == 403  # the header was dropped: neither it nor a signature
    assert "no Mdm-Signature header and no client certificate" in stranger.text
