"""The shipped deploy/nginx.conf, run by Debian's nginx, in front of two `orchardist serve
--http` processes on one database (PostgreSQL when the run has it, else one SQLite file):
virtual devices enroll over SCEP and check in through it, a command queued through the
API reaches each device once whichever process answers, both processes serve, the servers
see the devices' own address (from nginx's X-Forwarded-For) and never one a client made
up, and a device that shows its certificate in the TLS handshake (mTLS) is known by it,
while a client that only writes a certificate into the header is not."""

from __future__ import annotations

import asyncio
import json
import plistlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from orchardist.simulator.device import CONNECT, SessionStats, VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.profile import read_profile
from tests.db import backends
from tests.deploy.nginx import Ports, Tls, make_tls, running_nginx
from tests.keys import rsa_key
from tests.mdm.test_killed_server import database_env
from tests.server import free_port, orchardist, running_server

DEVICES = 6
CLIENT = "127.0.0.2"  # the devices' address; nginx reaches the servers from 127.0.0.1
FORGED = "198.51.100.7"  # what a client claims in its own X-Forwarded-For
HEADER = "X-SSL-Client-Cert"  # what deploy/nginx.conf forwards the client certificate in
SETTINGS = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": "nginx-fleet",
            "ORCHARDIST_MDM_CLIENT_CERT_HEADER": HEADER}  # fmt: skip


@dataclass
class Run:
    first: list[SessionStats]  # each device's session after the command was queued
    second: list[SessionStats]  # and the one after it
    targets: list[dict[str, Any]]  # the command's targets, from the API
    mtls: int  # an unsigned Idle from a device that showed its certificate to nginx
    forged: int  # the same, the certificate only written into the header


@pytest.mark.parametrize("backend", backends())
def test_devices_through_nginx_reach_both_servers(backend: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = Ports(free_port(), free_port(), (free_port(), free_port()))
    with database_env(backend, tmp_path) as database, ExitStack() as stack:
        env = {**database, **SETTINGS}
        admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json",
                                      env=env))  # fmt: skip
        profile = tmp_path / "enroll.mobileconfig"
        orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=env)
        for port in ports.backends:
            stack.enter_context(running_server(data_dir, http=True, env=env, port=port))
        tls = make_tls(tmp_path / "tls")
        base = stack.enter_context(running_nginx(tmp_path / "nginx", ports, tls))
        run = asyncio.run(_devices(base, profile.read_bytes(), tls, admin["admin_token"]))
        redirect = httpx.get(f"http://127.0.0.1:{ports.http}/mdm/checkin")
    assert [stats.commands for stats in run.first] == [1] * DEVICES
    assert [stats.commands for stats in run.second] == [0] * DEVICES  # none sent twice
    assert len(run.targets) == DEVICES
    assert {target["status"] for target in run.targets} == {"acknowledged"}
    exchanges = [_events(data_dir / f"serve-{port}.log", "mdm_exchange") for port in ports.backends]
    assert all(exchanges), "one of the two servers answered no device"
    api = [event for port in ports.backends
           for event in _events(data_dir / f"serve-{port}.log", "http_request")
           if event["path"].startswith("/api/")]  # fmt: skip
    assert {event["client"] for event in api} == {CLIENT}  # and there were some
    assert (run.mtls, run.forged) == (200, 403)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://127.0.0.1/mdm/checkin"


async def _devices(base: str, profile: bytes, tls: Tls, token: str) -> Run:
    plan = retarget(read_profile(profile), base)
    api = {"Authorization": f"Bearer {token}", "X-Forwarded-For": FORGED}
    transport = httpx.AsyncHTTPTransport(verify=tls.client(), local_address=CLIENT)
    async with httpx.AsyncClient(transport=transport, timeout=30) as http:
        devices = [VirtualDevice(plan, n, rsa_key(300 + n), http) for n in range(DEVICES)]
        await asyncio.gather(*(device.enroll() for device in devices))
        lock = {"request_type": "DeviceLock", "params": {"Message": "Through nginx"},
                "targets": {"all": True}}  # fmt: skip
        queued = await http.post(f"{base}/api/v1/commands", json=lock, headers=api)
        assert queued.status_code == 201, queued.text
        first = await asyncio.gather(*(device.session() for device in devices))
        second = await asyncio.gather(*(device.session() for device in devices))
        command = await http.get(f"{base}/api/v1/commands/{queued.json()['command_uuid']}",
                                 headers=api)  # fmt: skip
        mtls, forged = await _unsigned_idles(devices[0], tls, plan.server_url)
    return Run(first, second, command.json()["targets"], mtls, forged)


async def _unsigned_idles(device: VirtualDevice, tls: Tls, url: str) -> tuple[int, int]:
    """An Idle without Mdm-Signature: shown in the TLS handshake, then only in the header."""
    assert device.identity is not None
    cert = device.identity.certificate.public_bytes(Encoding.PEM)
    folder = tls.cert.parent
    cert_file, key_file = folder / "device.pem", folder / "device-key.pem"
    cert_file.write_bytes(cert)
    key_file.write_bytes(
        device.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    body = plistlib.dumps({"Status": "Idle", "UDID": device.udid})
    headers = {"Content-Type": CONNECT}
    async with httpx.AsyncClient(verify=tls.client((cert_file, key_file))) as http:
        shown = await http.put(url, content=body, headers=headers)
    forged_headers = {**headers, HEADER: quote(cert.decode(), safe="")}
    async with httpx.AsyncClient(verify=tls.client()) as http:
        written = await http.put(url, content=body, headers=forged_headers)
    return shown.status_code, written.status_code


def _events(log: Path, event: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]
