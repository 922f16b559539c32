"""Scenario `checkin`: signed Idles and command round trips against `orchardist serve --http`,
on SQLite and (when reachable) PostgreSQL.

Idles (issue 14's table): 20 enrolled virtual devices' signed Idle PUTs, signed once and
replayed over 16 kept-alive connections (bench/replay.py), so the server, not the client,
runs out of CPU. Server CPU comes from /proc, PostgreSQL's from its backends for the
bench's database; p99 is the client's view. Then the same with `serve --workers 2`.

Command round trips: every device answers SecurityInfo commands through the simulator
(each request signed as a device signs it), so the client's CPU is reported beside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tests.server import orchardist, running_server

from bench.postgres import create_database, drop_database
from bench.replay import (
    Replayed,
    Request,
    cpu_seconds,
    http_request,
    postgres_backends,
    replay,
    replay_with_wrk,
    wrk_available,
)
from bench.scep import _row, _server_pids
from bench.targets import target_row
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.profile import read_profile

STATIC = "bench-static-challenge"
CONNECTIONS = 16
# Issue 14's targets (brief P1): CPU per Idle, p99, and how far a second worker scales.
IDLE_CPU_MS = {"sqlite": 0.8, "postgres": 1.2}
IDLE_POSTGRES_CPU_MS = 0.4
IDLE_P99_MS = 20.0
WORKERS_SCALING = 1.8


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend in ("sqlite", "postgres"):
        database = None if backend == "sqlite" else create_database()
        if backend == "postgres" and database is None:
            rows.append(_row("postgres", 0, "", "PostgreSQL not reachable: not measured"))
            continue
        try:
            rows += _measure(args, backend, database)
        finally:
            if database is not None:
                drop_database(database)
    for row in rows:
        row["scenario"] = "checkin"
    return rows


def _measure(args: argparse.Namespace, backend: str, database: str | None) -> list[dict[str, Any]]:
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC}
        if database:
            env["ORCHARDIST_DATABASE_URL"] = database
        admin = json.loads(
            orchardist(data_dir, "init", "--hostname", "localhost", "--json", env=env)
        )
        profile = Path(tmp) / "enroll.mobileconfig"
        orchardist(
            data_dir, "enrollment-profile", "--static", "--unsigned", "-o", str(profile), env=env
        )
        with running_server(data_dir, http=True, env=env) as base:
            plan = retarget(read_profile(profile.read_bytes()), base)
            devices = asyncio.run(_enrolled(args, plan))
            path = urlsplit(plan.server_url).path
            idles = [Request("PUT", path, *_headers_body(d)) for d in devices]
            one = asyncio.run(_idle(args, base, idles, database))
            commands = asyncio.run(_commands(args, devices, base, admin["admin_token"], label))
        rows = _idle_rows(one, label, "1 process", backend)
        if database is not None:  # does a second worker take the second core?
            with running_server(data_dir, http=True, env=env, extra=("--workers", "2")) as base:
                two = asyncio.run(_idle(args, base, idles, database))
            rows += _idle_rows(two, label, "--workers 2", backend)
            rows.append(
                target_row(
                    "checkin",
                    f"signed Idles/s, --workers 2 ÷ 1 process ({label})",
                    two.per_second / one.per_second,
                    "times",
                    target=WORKERS_SCALING,
                    better="higher",
                    note=f"{two.per_second:,.0f}/s against {one.per_second:,.0f}/s",
                )
            )
            # What bounds the ratio: the server, PostgreSQL and the client share the cores.
            spent = two.server_cpu + (two.postgres_cpu or 0.0) + two.client_cpu
            cores = os.cpu_count() or 1
            rows.append(
                _row(
                    f"cores busy, --workers 2 ({label})",
                    spent / two.seconds,
                    "cores",
                    f"server + PostgreSQL + client, of {cores}",
                )
            )
            rows.append(
                _row(
                    f"the most --workers 2 ÷ 1 process could be on this machine ({label})",
                    cores / (spent / two.count) / one.per_second,
                    "times",
                    "all cores busy at this CPU per Idle (server + PostgreSQL + client)",
                )
            )
    return rows + commands


def _headers_body(device: VirtualDevice) -> tuple[dict[str, str], bytes]:
    body, headers = device.signed({"Status": "Idle"})
    return headers, body


async def _enrolled(args: argparse.Namespace, plan: Any) -> list[VirtualDevice]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    async with httpx.AsyncClient(timeout=60) as http:
        keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for _ in range(args.devices)
        ]
        devices = [VirtualDevice(plan, index, keys[index], http) for index in range(args.devices)]
        await asyncio.gather(*(d.enroll() for d in devices))
    return devices


@dataclass
class _Idles:
    count: int
    per_second: float
    server_cpu: float
    postgres_cpu: float | None
    client_cpu: float
    client: str
    seconds: float
    p50: float
    p99: float


async def _idle(
    args: argparse.Namespace, base: str, requests: list[Request], database: str | None
) -> _Idles:
    # Warm up: connections, pools and the signature cache, as on a server that has run.
    await _send(args, base, requests, warm_up=True)
    pids = _server_pids(base)
    name = None if database is None else database.rsplit("/", 1)[1]
    backends = [] if name is None else postgres_backends(name)
    server_before = sum(cpu_seconds(pid) for pid in pids)
    postgres_before = {pid: cpu_seconds(pid) for pid in backends}
    client_before = _client_cpu()
    done = await _send(args, base, requests, warm_up=False)
    client_cpu = _client_cpu() - client_before
    server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_before
    postgres_cpu = None
    if name is not None:
        postgres_cpu = sum(
            cpu_seconds(pid) - postgres_before.get(pid, 0.0) for pid in postgres_backends(name)
        )
    if set(done.statuses) != {200}:
        raise RuntimeError(f"Idles answered {done.statuses}")
    return _Idles(
        count=done.count,
        per_second=done.count / done.seconds,
        server_cpu=server_cpu,
        postgres_cpu=postgres_cpu,
        client_cpu=client_cpu,
        client="wrk" if wrk_available() else "Python client",
        seconds=done.seconds,
        p50=done.percentile(0.50),
        p99=done.percentile(0.99),
    )


async def _send(
    args: argparse.Namespace, base: str, requests: list[Request], *, warm_up: bool
) -> Replayed:
    if wrk_available():
        seconds = 2.0 if warm_up else args.idle_seconds
        return await asyncio.to_thread(
            replay_with_wrk, base, requests, seconds=seconds, connections=CONNECTIONS
        )
    raw = [http_request(base + r.path, r.body, r.headers, r.method) for r in requests]
    total = len(raw) * 10 if warm_up else args.idles
    return await replay(base, raw, total=total, connections=CONNECTIONS)


def _client_cpu() -> float:
    """This process's CPU and its finished children's (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _idle_rows(idles: _Idles, label: str, processes: str, backend: str) -> list[dict[str, Any]]:
    where = f"{label}, {processes}"
    note = (
        f"{idles.count:,} Idles, {CONNECTIONS} connections ({idles.client}),"
        f" p50 {idles.p50 * 1000:.1f} ms"
    )
    rows = [
        _row(f"signed Idles/s ({where})", idles.per_second, "1/s", note),
        target_row(
            "checkin",
            f"server CPU per Idle ({where})",
            idles.server_cpu / idles.count * 1000,
            "ms",
            target=IDLE_CPU_MS[backend],
            better="lower",
        ),
    ]
    if idles.postgres_cpu is not None:
        rows.append(
            target_row(
                "checkin",
                f"PostgreSQL CPU per Idle ({where})",
                idles.postgres_cpu / idles.count * 1000,
                "ms",
                target=IDLE_POSTGRES_CPU_MS,
                better="lower",
            )
        )
    rows.append(
        _row(
            f"client CPU per Idle ({where})",
            idles.client_cpu / idles.count * 1000,
            "ms",
            f"{idles.client}, same machine",
        )
    )
    rows.append(
        target_row(
            "checkin",
            f"Idle p99 latency ({where})",
            idles.p99 * 1000,
            "ms",
            target=IDLE_P99_MS,
            better="lower",
        )
    )
    return rows


async def _commands(
    args: argparse.Namespace, devices: list[VirtualDevice], base: str, token: str, label: str
) -> list[dict[str, Any]]:
    """Every answer's request brings the next command: the devices drain their queues."""
    async with httpx.AsyncClient(timeout=60) as http:
        for device in devices:
            device.http = http
        pids = _server_pids(base)
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(args.cycles):
            body = {"request_type": "SecurityInfo", "targets": {"all": True}}
            (
                await http.post(f"{base}/api/v1/commands", json=body, headers=headers)
            ).raise_for_status()
        server_before = sum(cpu_seconds(pid) for pid in pids)
        client_before = time.process_time()
        started = time.perf_counter()
        trips = sum(await asyncio.gather(*(_drain(d) for d in devices)))
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_before
    return [
        _row(
            f"command round trips/s ({label})",
            trips / seconds,
            "1/s",
            "each carries a result and brings a command",
        ),
        _row(f"server CPU per command round trip ({label})", server_cpu / trips * 1000, "ms"),
        _row(
            f"client CPU per command round trip ({label})",
            client_cpu / trips * 1000,
            "ms",
            "same machine: signing, httpx",
        ),
    ]


async def _drain(device: VirtualDevice) -> int:
    """Sessions until the queue is empty; returns the HTTP round trips made."""
    stats = await device.session()
    return 1 + stats.commands  # the Idle, then one request per answer
