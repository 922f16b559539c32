"""Scenario `scep`: PKCSReq → CertRep enrollments against `orchardist serve --http`.

Requests are built before the clock starts and checked after it stops, so the figure is
the server's: each enrollment costs it three RSA private-key operations (decrypt the
envelope, sign the certificate, sign the CertRep). The machine's RSA-2048 private-key rate
is measured in the same run on one core; the ratio compares the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from rich.progress import track
from tests.server import orchardist, running_server

from orchardist.config import load_settings
from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from orchardist.wiring import open_services


def rsa_private_ops_per_second(seconds: float = 2.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.sign(b"benchmark", padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - started)


async def _challenges(data_dir: Path, count: int) -> list[str]:
    services = await open_services(load_settings(data_dir))
    try:
        return [(await services.challenges.issue())[0] for _ in range(count)]
    finally:
        await services.close()


def _requests(ca: x509.Certificate, challenges: list[str]) -> list[tuple[client.Requester, bytes]]:
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8)]
    built = []
    for index, challenge in enumerate(track(challenges, description="building requests")):
        key = keys[index % len(keys)]
        cn = f"bench-{index}"
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
        requester = client.Requester(client.self_signed_signer(key, subject), key, ca)
        csr = client.make_csr(key, cn, challenge).public_bytes(Encoding.DER)
        der = client.pki_message(requester, MessageType.PKCS_REQ, csr, os.urandom(16).hex())
        built.append((requester, der))
    return built


async def _fire(url: str, bodies: list[bytes], concurrency: int) -> list[bytes]:
    replies: list[bytes] = [b""] * len(bodies)
    queue = list(enumerate(bodies))
    headers = {"content-type": "application/x-pki-message"}
    async with httpx.AsyncClient(timeout=60) as http:

        async def worker() -> None:
            while queue:
                index, body = queue.pop()
                response = await http.post(url, content=body, headers=headers)
                response.raise_for_status()
                replies[index] = response.content

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return replies


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        orchardist(data_dir, "init", "--hostname", "localhost")
        ca = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
        built = _requests(ca, asyncio.run(_challenges(data_dir, args.enrollments)))
        with running_server(data_dir, http=True) as base:
            pid = int(next(Path(f"/proc/{p}") for p in _server_pids(base)).name)
            cpu_before = _cpu_seconds(pid)
            started = time.perf_counter()
            replies = asyncio.run(
                _fire(
                    f"{base}/scep?operation=PKIOperation", [d for _, d in built], args.concurrency
                )
            )
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(pid) - cpu_before
    for (requester, _), reply in zip(built, replies, strict=True):
        rep = client.read_cert_rep(reply, requester, ca)
        assert rep.status == PkiStatus.SUCCESS, rep.fail_text
    rate = len(built) / elapsed
    ops = rsa_private_ops_per_second()
    note = f"{len(built)} enrollments, {args.concurrency} in flight"
    return [
        {"scenario": "scep", "metric": "enrollments/s", "value": rate, "unit": "1/s", "note": note},
        {
            "scenario": "scep",
            "metric": "server CPU per enrollment",
            "value": cpu / len(built) * 1000,
            "unit": "ms",
        },
        {
            "scenario": "scep",
            "metric": "RSA-2048 private ops/s (1 core)",
            "value": ops,
            "unit": "1/s",
        },
        {
            "scenario": "scep",
            "metric": "ratio enrollments/s ÷ (ops/s ÷ 3)",
            "value": rate / (ops / 3),
            "unit": "",
            "note": "target ≥ 0.75",
        },
    ]


def _server_pids(base: str) -> list[str]:
    port = base.rsplit(":", 1)[1]
    return [p for p in os.listdir("/proc") if p.isdigit() and _is_server(p, port)]


def _is_server(pid: str, port: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmdline and port.encode() in cmdline
