"""Scenario `scep`: PKCSReq → CertRep enrollments against `orchardist serve --http`.

Requests are built before the clock starts and checked after it stops, so the figure is
the server's: each enrollment costs it three RSA private-key operations (decrypt the
envelope, sign the certificate, sign the CertRep). The machine's RSA-2048 private-key rate
is measured in the same run, on all cores and on one; the ratios compare enrollments/s
with a third of each. Run with one server process, and with `--workers` processes, on SQLite and
on PostgreSQL (a fresh database, when a server answers; its CPU is read from /proc too);
the client shares the machine, so its CPU is reported as well.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from rich.progress import track
from tests.server import orchardist, running_server

from bench import postgres
from bench.replay import cpu_seconds as _cpu_seconds
from bench.replay import http_request, read_response
from bench.targets import target_row
from orchardist.config import load_settings
from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from orchardist.wiring import open_services


def rsa_private_ops_per_second(threads: int = 1, seconds: float = 2.0) -> float:
    """RSA-2048 signatures per second on `threads` threads; cryptography releases the GIL
    while OpenSSL works, so threads measure the cores."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    counts = [0] * threads

    def sign(index: int) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            key.sign(b"benchmark", padding.PKCS1v15(), hashes.SHA256())
            counts[index] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sign, range(threads)))
    return sum(counts) / (time.perf_counter() - started)


async def _challenges(data_dir: Path, count: int, database: str | None) -> list[str]:
    overrides = {"database_url": database} if database else {}
    services = await open_services(load_settings(data_dir, **overrides))
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


def _posts(url: str, bodies: list[bytes]) -> list[bytes]:
    """The HTTP requests carrying the bodies, formatted before the clock starts."""
    headers = {"Content-Type": "application/x-pki-message", "Connection": "close"}
    return [http_request(url, body, headers, method="POST") for body in bodies]


async def _fire(url: str, requests: list[bytes], concurrency: int) -> list[bytes]:
    """Send each request on a new connection, as devices do (it also spreads the load over
    `serve --workers` processes, which kept-alive connections would pin to one), and
    return the answers' bodies. Raw streams, not httpx: httpx cost the client about as much
    CPU per enrollment as the server's work besides RSA, on the cores the server needs."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    replies: list[bytes] = [b""] * len(requests)
    queue = list(enumerate(requests))

    async def worker() -> None:
        while queue:
            index, request = queue.pop()
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                status, replies[index] = await read_response(reader)
            finally:
                writer.close()
            if status != 200:
                raise RuntimeError(f"enrollment {index}: HTTP {status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return replies


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    cores = os.cpu_count() or 1
    per_core = rsa_private_ops_per_second(1)
    machine = rsa_private_ops_per_second(cores)
    rows: list[dict[str, Any]] = [
        _row("RSA-2048 private ops/s, 1 core", per_core, "1/s"),
        _row(f"RSA-2048 private ops/s, machine ({cores} cores)", machine, "1/s"),
    ]
    for backend in BACKENDS:
        database = None if backend == "SQLite" else postgres.create_database()
        if backend == "PostgreSQL" and database is None:
            rows.append(_row("PostgreSQL", 0, "", "not reachable: not measured"))
            continue
        try:
            for workers in sorted({1, args.workers}):
                run_ = _enrol_against_server(args, workers, database)
                rows += _rows(args, backend, workers, run_, (per_core, machine))
        finally:
            if database is not None:
                postgres.drop_database(database)
    return rows


BACKENDS = ("SQLite", "PostgreSQL")
# Issue 14's targets: CPU per certificate, the app's and PostgreSQL's.
APP_CPU_TARGET_MS = {"SQLite": 2.5, "PostgreSQL": 3.0}
POSTGRES_CPU_TARGET_MS = 0.3
MACHINE_LIMIT_TARGET = 0.75  # the brief's P3: enrollments/s against the RSA-2048 limit


@dataclass(frozen=True)
class _Run:
    rate: float  # enrollments per second
    server_ms: float  # the app's CPU per enrollment
    client_ms: float
    postgres_ms: float | None  # PostgreSQL's, when it is the backend


def _rows(
    args: argparse.Namespace,
    backend: str,
    workers: int,
    run_: _Run,
    limits: tuple[float, float],
) -> list[dict[str, Any]]:
    per_core, machine = limits
    label = f"{backend}, {workers} server process{'es' if workers > 1 else ''}"
    note = f"{args.enrollments} enrollments, {args.concurrency} in flight"
    rows = [
        _row(f"enrollments/s ({label})", run_.rate, "1/s", note),
        target_row(
            "scep",
            f"server CPU per enrollment ({label})",
            run_.server_ms,
            "ms",
            target=APP_CPU_TARGET_MS[backend],
            better="lower",
        ),
    ]
    if run_.postgres_ms is not None:
        rows.append(
            target_row(
                "scep",
                f"PostgreSQL CPU per enrollment ({label})",
                run_.postgres_ms,
                "ms",
                target=POSTGRES_CPU_TARGET_MS,
                better="lower",
                note="backends + writers, /proc",
            )
        )
    spent_ms = run_.server_ms + run_.client_ms + (run_.postgres_ms or 0.0)
    return [
        *rows,
        _row(f"client CPU per enrollment ({label})", run_.client_ms, "ms", "same machine"),
        target_row(
            "scep",
            f"ratio to the machine's RSA limit ({label})",
            run_.rate / (machine / 3),
            "",
            target=MACHINE_LIMIT_TARGET,
            better="higher",
            note="enrollments/s ÷ (RSA ops/s ÷ 3)",
        ),
        _row(
            f"the most the RSA-limit ratio could be on this machine ({label})",
            (os.cpu_count() or 1) * 1000 / spent_ms / (machine / 3),
            "",
            "all cores busy at this CPU per enrollment (server + PostgreSQL + client)",
        ),
        _row(f"ratio to one core's limit ({label})", run_.rate / (per_core / 3), ""),
    ]


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "scep", "metric": metric, "value": value, "unit": unit, "note": note}


def _enrol_against_server(args: argparse.Namespace, workers: int, database: str | None) -> _Run:
    """Enrollments per second, and CPU milliseconds per enrollment."""
    env = {"ORCHARDIST_DATABASE_URL": database} if database else {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        orchardist(data_dir, "init", "--hostname", "localhost", env=env)
        ca = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
        built = _requests(ca, asyncio.run(_challenges(data_dir, args.enrollments, database)))
        extra = ("--workers", str(workers))
        with running_server(data_dir, http=True, env=env, extra=extra) as base:
            url = f"{base}/scep?operation=PKIOperation"
            asyncio.run(_fire(url, _posts(url, [d for _, d in built[:8]]), 8))  # imports
            built = built[8:]
            posts = _posts(url, [d for _, d in built])
            pids = _server_pids(base)
            cpu_before = sum(_cpu_seconds(pid) for pid in pids)
            postgres_before = postgres.cpu_seconds(database) if database else 0.0
            client_before = time.process_time()
            started = time.perf_counter()
            replies = uvloop.run(_fire(url, posts, args.concurrency))
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
            postgres_cpu = postgres.cpu_seconds(database) - postgres_before if database else None
    for (requester, _), reply in zip(built, replies, strict=True):
        rep = client.read_cert_rep(reply, requester, ca)
        assert rep.status == PkiStatus.SUCCESS, rep.fail_text
    count = len(built)
    return _Run(
        rate=count / elapsed,
        server_ms=cpu / count * 1000,
        client_ms=client_cpu / count * 1000,
        postgres_ms=None if postgres_cpu is None else postgres_cpu / count * 1000,
    )


def _server_pids(base: str) -> list[int]:
    """The `serve` process listening on the base URL's port, and its worker processes."""
    port = base.rsplit(":", 1)[1].encode()
    parents: dict[int, int] = {}
    servers = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(stat[1])
        if b"serve" in cmdline and port in cmdline:
            servers.append(int(entry))
    return servers + [pid for pid, parent in parents.items() if parent in servers]
