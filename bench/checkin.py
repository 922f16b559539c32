"""Scenario `checkin`: K virtual devices doing signed Idle → command → Acknowledged cycles
against `orchardist serve --http`, on SQLite and (when reachable) PostgreSQL.

Every request is signed like a device's (SHA-1 Mdm-Signature), so the client shares the
machine's two cores with the server; its CPU is reported beside the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tests.server import orchardist, running_server

from bench.scep import _cpu_seconds, _row, _server_pids
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.profile import read_profile

STATIC = "bench-static-challenge"
POSTGRES = os.environ.get(
    "ORCHARDIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend in ("sqlite", "postgres"):
        database = None if backend == "sqlite" else _postgres_database()
        if backend == "postgres" and database is None:
            rows.append(_row("postgres", 0, "", "PostgreSQL not reachable: not measured"))
            continue
        try:
            rows += _measure(args, backend, database)
        finally:
            if database is not None:
                _drop(database)
    for row in rows:
        row["scenario"] = "checkin"
    return rows


def _measure(args: argparse.Namespace, backend: str, database: str | None) -> list[dict[str, Any]]:
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
            return asyncio.run(_cycles(args, plan, base, admin["admin_token"], backend))


async def _cycles(
    args: argparse.Namespace, plan: Any, base: str, token: str, backend: str
) -> list[dict[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    async with httpx.AsyncClient(timeout=60) as http:
        keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for _ in range(args.devices)
        ]
        devices = [VirtualDevice(plan, index, keys[index], http) for index in range(args.devices)]
        await asyncio.gather(*(d.enroll() for d in devices))
        pids = _server_pids(base)
        # Idle only: the hot path of a fleet that has nothing to do.
        idle = await _timed(
            pids, lambda: asyncio.gather(*(_idles(d, args.cycles) for d in devices))
        )
        idle_trips = args.devices * args.cycles
        # Commands: after the Idle, every answer's request brings the next command.
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(args.cycles):
            body = {"request_type": "SecurityInfo", "targets": {"all": True}}
            (
                await http.post(f"{base}/api/v1/commands", json=body, headers=headers)
            ).raise_for_status()
        busy = await _timed(pids, lambda: asyncio.gather(*(_drain(d) for d in devices)))
        busy_trips = sum(busy.result)
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    note = f"{args.devices} devices"
    return [
        _row(f"signed Idle round trips/s ({label})", idle_trips / idle.seconds, "1/s", note),
        _row(f"server CPU per 1,000 Idles ({label})", idle.server_cpu / idle_trips * 1000, "s"),
        _row(
            f"command round trips/s ({label})",
            busy_trips / busy.seconds,
            "1/s",
            "each carries a result and brings a command",
        ),
        _row(
            f"server CPU per 1,000 command round trips ({label})",
            busy.server_cpu / busy_trips * 1000,
            "s",
        ),
        _row(
            f"client CPU per 1,000 round trips ({label})",
            busy.client_cpu / busy_trips * 1000,
            "s",
            "same machine",
        ),
    ]


class _Timing:
    seconds: float
    server_cpu: float
    client_cpu: float
    result: Any


async def _timed(pids: list[int], work: Any) -> _Timing:
    timing = _Timing()
    server_before = sum(_cpu_seconds(pid) for pid in pids)
    client_before = time.process_time()
    started = time.perf_counter()
    timing.result = await work()
    timing.seconds = time.perf_counter() - started
    timing.client_cpu = time.process_time() - client_before
    timing.server_cpu = sum(_cpu_seconds(pid) for pid in pids) - server_before
    return timing


async def _idles(device: VirtualDevice, count: int) -> None:
    for _ in range(count):
        await device.session()


async def _drain(device: VirtualDevice) -> int:
    """Sessions until the queue is empty; returns the HTTP round trips made."""
    stats = await device.session()
    return 1 + stats.commands  # the Idle, then one request per answer


def _postgres_database() -> str | None:
    """A fresh database on the PostgreSQL server, or None when there is none to reach."""
    name = f"orchardist_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError):
        return None
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


def _drop(url: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
