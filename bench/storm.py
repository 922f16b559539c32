"""Scenario `storm`: N virtual devices enroll at once (brief P6, issue 14's item 4).

Each device does what an iPhone does on a fresh enrollment: SCEP (GetCACaps, GetCACert,
PKCSReq), Authenticate, TokenUpdate, then sessions until its queue is empty. What the
server queues at TokenUpdate comes from its on_enrolled hooks (profiles, provisioning
profiles, apps, compliance); the bench assigns one profile to every device, so each one is
sent an InstallProfile encrypted to its new identity, as a fleet's Wi-Fi profile would be.
The server queues no inventory query (DeviceInformation) at enrollment by itself.

Device keys are made before the clock starts (key generation is the phone's cost). The
server's CPU comes from /proc, PostgreSQL's from its backends and shared writers
(bench.postgres); the client (signing, SCEP envelopes, decrypting the profile) shares the
machine, so its CPU is reported beside. `--storm-py-spy DIR` records the server with
py-spy during the storm (raw collapsed stacks, for bench/pyspy_summary.py).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.server import orchardist, running_server

from bench import postgres
from bench.replay import cpu_seconds
from bench.scep import _server_pids
from bench.targets import target_row
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.profile import EnrollmentPlan, read_profile

STATIC = "bench-static-challenge"
WARM_UP = 4  # devices enrolled before the clock: imports, pools, caches
TARGET_PER_CORE = 50.0  # brief P6: devices enrolled per second per core
SPEC = """\
identifier = "com.example.storm-wifi"
name = "Office Wi-Fi"
organization = "Bench"

[[payloads]]
type = "wifi"
SSID_STR = "Office"
EncryptionType = "WPA2"
Password = "storm-bench-password"

[[payloads]]
type = "restrictions"
allowCamera = false
"""


@dataclass(frozen=True)
class _Storm:
    devices: int
    seconds: float
    commands: int  # command round trips after enrollment, all devices
    server_cpu: float
    client_cpu: float
    postgres_cpu: float | None


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend in ("SQLite", "PostgreSQL"):
        database = None if backend == "SQLite" else postgres.create_database()
        if backend == "PostgreSQL" and database is None:
            rows.append(_row("PostgreSQL", 0, "", "not reachable: not measured"))
            continue
        try:
            storm = _storm_against_server(args, backend, database)
        finally:
            if database is not None:
                postgres.drop_database(database)
        rows += _rows(storm, backend)
    return rows


def _rows(storm: _Storm, backend: str) -> list[dict[str, Any]]:
    n = storm.devices
    note = f"{n} devices at once; SCEP + Authenticate + TokenUpdate + {storm.commands / n:.1f} "
    rows = [
        _row(f"devices enrolled/s, end to end ({backend})", n / storm.seconds, "1/s",
             note + "commands each"),
        target_row(
            "storm",
            f"devices per server CPU second ({backend})",
            n / storm.server_cpu,
            "1/s",
            target=TARGET_PER_CORE,
            better="higher",
            note=f"{storm.server_cpu / n * 1000:.1f} ms server CPU per device",
        ),
    ]  # fmt: skip
    if storm.postgres_cpu is not None:
        rows.append(
            _row(
                f"PostgreSQL CPU per device ({backend})",
                storm.postgres_cpu / n * 1000,
                "ms",
                "backends + writers, /proc",
            )
        )
    rows.append(
        _row(
            f"client CPU per device ({backend})",
            storm.client_cpu / n * 1000,
            "ms",
            "same machine: SCEP envelopes, signing, decrypting the profile",
        )
    )
    return rows


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "storm", "metric": metric, "value": value, "unit": unit, "note": note}


def _storm_against_server(args: argparse.Namespace, backend: str, database: str | None) -> _Storm:
    env = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC}
    if database:
        env["ORCHARDIST_DATABASE_URL"] = database
    count = args.storm_devices
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for _ in range(count + WARM_UP)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        orchardist(data_dir, "init", "--hostname", "localhost", env=env)
        profile = Path(tmp) / "enroll.mobileconfig"
        orchardist(
            data_dir, "enrollment-profile", "--static", "--unsigned", "-o", str(profile), env=env
        )
        spec = Path(tmp) / "wifi.toml"
        spec.write_text(SPEC)
        orchardist(data_dir, "profile", "upload", str(spec), env=env)
        orchardist(data_dir, "profile", "assign", "com.example.storm-wifi", "--all", env=env)
        with running_server(data_dir, http=True, env=env) as base:
            plan = retarget(read_profile(profile.read_bytes()), base)
            asyncio.run(_enroll_all(plan, keys[:WARM_UP], first=0))
            pids = _server_pids(base)
            spy = _py_spy(args, pids[0], backend)
            server_before = sum(cpu_seconds(pid) for pid in pids)
            postgres_before = postgres.cpu_seconds(database) if database else 0.0
            client_before = time.process_time()
            started = time.perf_counter()
            try:
                commands = asyncio.run(_enroll_all(plan, keys[WARM_UP:], first=WARM_UP))
            finally:
                _keep_log(args, data_dir, backend)
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_before
            postgres_cpu = postgres.cpu_seconds(database) - postgres_before if database else None
            if spy is not None:
                spy.wait()
    return _Storm(count, seconds, commands, server_cpu, client_cpu, postgres_cpu)


async def _enroll_all(plan: EnrollmentPlan, keys: list[rsa.RSAPrivateKey], first: int) -> int:
    """Every device at once: enroll, then sessions until the queue is empty; the command
    round trips made."""
    # A connection per request: the server closes a kept-alive connection left idle for its
    # keep-alive timeout, and a storm leaves them idle (a request sent as it closes fails).
    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:

        async def one(index: int, key: rsa.RSAPrivateKey) -> int:
            device = VirtualDevice(plan, first + index, key, http)
            await device.enroll()
            # One session: the server answers commands until its queue is empty.
            return (await device.session()).commands

        return sum(await asyncio.gather(*(one(i, k) for i, k in enumerate(keys))))


def _py_spy(args: argparse.Namespace, pid: int, backend: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server for about the storm's length, when asked for."""
    if not args.storm_py_spy:
        return None
    out = Path(args.storm_py_spy)
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    # Sized for the storm; py-spy stops at its duration (a kill loses the output).
    duration = max(5, args.storm_devices // 10)
    command = [str(spy), "record", "--pid", str(pid), "-f", "raw", "-r", "250", "--nonblocking",
               "-d", str(duration), "-o", str(out / f"storm-{backend}.txt")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches before the storm starts
    return process


def _keep_log(args: argparse.Namespace, data_dir: Path, backend: str) -> None:
    """The server's log beside the recording (the data directory is thrown away)."""
    if args.storm_py_spy:
        for log in data_dir.glob("serve-*.log"):
            shutil.copy(log, Path(args.storm_py_spy) / f"storm-{backend}.log")
