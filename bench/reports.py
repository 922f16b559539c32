"""Scenario `reports`: InstalledApplicationList and CertificateList answers of ~1 MB each,
parsed and stored by `orchardist serve --http`, on SQLite and (when reachable) PostgreSQL.

Four phases on one server:
1. Idle alone: a few other devices do signed Idles back to back; their p99 is the reference.
2. Reports alone: well-stocked devices (`simulator.library.Stock`) answer the two queries,
   several rounds; MB of report bodies per server CPU second is the throughput figure.
3. Both at once, for as long as phase 1: the Idle p99 while the reports flow, as a ratio
   to phase 1.
4. No reports; two processes spinning at nice 0 beside the server (a backup, a neighbour),
   as long as phase 1: the Idle p99 as a ratio to phase 1. The server's event loop asks
   for short scheduler slices so as to preempt such work when a request wakes it
   (orchardist/sched_slices.py); this row shows what that gives.

Phases 1 and 3 are also given as the server timed each Idle (its log), which leaves out
what an Idle waits outside the server's handler: for a core before the event loop reads
it, and in the client (which shares the cores).

Each round's lists are the same, as a device mostly answers: the server stores each answer
and rewrites no inventory rows (storage/sql/inventory.py; a changed list of 1,000 apps
costs ~3 ms more). Before phase 1 each reporter answers once: the server starts the
worker processes that read large reports (mdm/report_pool.py) at the first one, and that
start-up is no report's work. Server CPU is that of the `serve` process and all its
descendants (the fork server and the report workers), from /proc.

The Idle devices run in a child process with their own event loop, so what the report
senders spend building and signing a megabyte plist never shows as Idle latency.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import math
import multiprocessing
import operator
import os
import plistlib
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from tests.server import orchardist, running_server

from bench.checkin import STATIC
from bench.postgres import create_database as _postgres_database
from bench.postgres import drop_database as _drop
from bench.replay import http_request, replay_while
from bench.scep import _row, _server_pids
from bench.targets import target_row
from orchardist.pki import cms
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.library import Stock
from orchardist.simulator.profile import read_profile

REPORTERS = 2  # devices answering with large reports, each one report at a time
IDLERS = 4  # devices doing Idles, each one request at a time
IDLE_EVERY = 0.02  # each Idler's pace in seconds: 200 Idles a second in all, as a busy fleet
# (the Idlers spread over it, not in step: bench/replay.replay_while)
ROUNDS = 4  # InstalledApplicationList + CertificateList per reporter per round
# Phase 3 lasts as long as phase 1 (IDLE_SECONDS), in as many rounds as phase 2's pace
# says, and at least this many: its p99 is of the Idles answered meanwhile, and over the
# ~100 that four rounds last it would be the slowest one or two, whichever met a GC pause.
ROUNDS_DURING = 12
STOCK = Stock(apps=1000, certificates=840)  # ~1.0 MB per answer, either list
IDLE_SECONDS = 6.0
LARGE = 64 * 1024  # a body this big is a report, not an Idle or a small answer
BUSY = 2  # processes spinning beside the server in phase 4, one per core here


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend in ("sqlite", "postgres"):
        database = None if backend == "sqlite" else _postgres_database()
        if backend == "postgres" and database is None:
            rows.append(_row("postgres", 0, "", "PostgreSQL not reachable: not measured"))
            continue
        try:
            rows += _measure(backend, database)
        finally:
            if database is not None:
                _drop(database)
    for row in rows:
        row["scenario"] = "reports"
    return rows


def _measure(backend: str, database: str | None) -> list[dict[str, Any]]:
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
            idlers = _Idlers(profile.read_bytes(), base)
            try:
                rows, windows = asyncio.run(
                    _phases(profile.read_bytes(), base, admin["admin_token"], backend, idlers)
                )
            finally:
                idlers.close()
        # Read once the server has stopped: its log, written to a file, is block-buffered.
        return rows + _inside_the_server(data_dir, windows, _label(backend))


async def _phases(
    profile: bytes, base: str, token: str, backend: str, idlers: _Idlers
) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    """The rows, and when (time.time()) phases 1 and 3 ran."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    sent = _Sent()
    async with httpx.AsyncClient(timeout=120, event_hooks={"request": [sent.count]}) as http:
        plan = retarget(read_profile(profile), base)
        keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(REPORTERS)
        ]
        reporters = [
            _Reporter(plan, 1000 + n, keys[n], http, stock=STOCK) for n in range(REPORTERS)
        ]
        await asyncio.gather(*(d.enroll() for d in reporters))
        queue = _Queue(http, base, token, [d.udid for d in reporters])
        await queue.reports(rounds=1)  # the warm-up: see the module's docstring
        await asyncio.gather(*(d.session() for d in reporters))
        idlers.wait_ready()
        pids = _server_pids(base)
        loop = _LoopWaits(pids)
        started_alone = time.time()
        alone = idlers.measure(IDLE_SECONDS)
        alone_wait = loop.since()
        windows = {"alone": (started_alone, time.time())}
        await queue.reports()
        cpu_before, own_before = _server_cpu(pids), _own_cpu(pids)
        sent.bytes = 0
        started = time.perf_counter()
        await asyncio.gather(*(d.session() for d in reporters))
        seconds = time.perf_counter() - started
        cpu, own = _server_cpu(pids) - cpu_before, _own_cpu(pids) - own_before
        megabytes = sent.bytes / 1e6
        await queue.reports(rounds=max(ROUNDS_DURING, math.ceil(ROUNDS * IDLE_SECONDS / seconds)))
        started_during = time.time()
        idlers.start()
        await asyncio.gather(*(d.session() for d in reporters))
        during = idlers.stop()
        windows["during"] = (started_during, time.time())
        beside, beside_wait = await asyncio.to_thread(_beside_busy_processes, idlers, loop)
    label = _label(backend)
    note = f"{REPORTERS} devices, {megabytes / (2 * ROUNDS * REPORTERS):.2f} MB each"
    ratio = _p99(during) / _p99(alone)
    throughput = f"report MB per server CPU second ({label})"
    rows = [
        target_row(
            "reports", throughput, megabytes / cpu, "MB/s", target=30, better="higher", note=note
        ),
        _row(f"report MB/s, wall clock ({label})", megabytes / seconds, "MB/s"),
        _row(
            f"serve process's own CPU per report MB ({label})",
            own * 1000 / megabytes,
            "ms",
            "the event loop's process; its report workers left out",
        ),
        _row(f"Idle p99 alone ({label})", _p99(alone) * 1000, "ms", f"{len(alone)} Idles"),
        _row(f"Idle p99 during reports ({label})", _p99(during) * 1000, "ms", f"{len(during)}"),
        target_row(
            "reports",
            f"Idle p99 during / alone ({label})",
            ratio,
            "times",
            target=2.0,
            better="lower",
            note=f"{IDLERS} devices Idling",
        ),
        _row(
            f"Idle p99 beside {BUSY} busy processes ÷ alone ({label})",
            _p99(beside) / _p99(alone),
            "times",
            f"{_p99(beside) * 1000:.2f} ms, {len(beside)} Idles; p90 {_p90(beside) * 1000:.2f} "
            f"ms against {_p90(alone) * 1000:.2f} alone",
        ),
        _row(
            f"event loop's wait for a core per Idle, alone ({label})",
            alone_wait * 1e6 / len(alone),
            "µs",
            "its thread's time runnable but not running (/proc schedstat)",
        ),
        _row(
            f"event loop's wait for a core per Idle, beside {BUSY} busy processes ({label})",
            beside_wait * 1e6 / len(beside),
            "µs",
        ),
    ]
    return rows, windows


def _label(backend: str) -> str:
    return "SQLite" if backend == "sqlite" else "PostgreSQL"


def _inside_the_server(
    data_dir: Path, windows: dict[str, tuple[float, float]], label: str
) -> list[dict[str, Any]]:
    """The Idle p99 as the server itself timed each Idle (its log's `mdm_exchange` lines:
    from the request reaching the MDM handler to the answer sent), alone and during
    reports. Beside the p99 the Idling devices see, it tells the server's stretch from
    the waits outside it: for a core before the loop reads a request, in the client."""
    inside: dict[str, list[float]] = {name: [] for name in windows}
    for log in data_dir.glob("serve-*.log"):
        for line in log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("event") != "mdm_exchange" or entry.get("status") != "Idle":
                continue
            at = datetime.fromisoformat(entry["timestamp"]).timestamp()
            for name, (start, end) in windows.items():
                if start <= at <= end:
                    inside[name].append(entry["ms"] / 1000)
    alone, during = inside["alone"], inside["during"]
    if not alone or not during:
        return [_row(f"Idle p99 inside the server ({label})", 0, "", "no Idle in its log")]
    return [
        _row(
            f"Idle p99 inside the server, alone ({label})",
            _p99(alone) * 1000,
            "ms",
            f"{len(alone)} Idles, as the server timed them (its log)",
        ),
        _row(
            f"Idle p99 inside the server, during reports ({label})",
            _p99(during) * 1000,
            "ms",
            f"{_p99(during) / _p99(alone):.2f} times alone; {len(during)} Idles",
        ),
    ]


def _beside_busy_processes(idlers: _Idlers, loop: _LoopWaits) -> tuple[list[float], float]:
    """Idle latencies for IDLE_SECONDS while BUSY processes spin at nice 0, and the
    seconds the event loop's thread waited for a core meanwhile."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY)]
    try:
        time.sleep(0.3)  # they run before the Idles start
        loop.since()
        latencies = idlers.measure(IDLE_SECONDS)
        return latencies, loop.since()
    finally:
        for process in busy:
            process.kill()
            process.wait()


class _Reporter(VirtualDevice):
    """A stocked device that writes each large answer once and only swaps the CommandUUID
    in later: building a megabyte plist takes the client ~50 ms of CPU, which on a small
    machine would crowd the server and the Idling devices and show as their latency."""

    written: dict[str, bytes]

    async def _put(self, url: str, fields: dict[str, Any], content_type: str) -> bytes:
        uuid = fields.get("CommandUUID")
        large = [key for key in ("InstalledApplicationList", "CertificateList") if key in fields]
        if not large or self.identity is None:
            return await super()._put(url, fields, content_type)
        if not hasattr(self, "written"):
            self.written = {}
        if large[0] not in self.written:
            template = {"UDID": self.udid, **fields, "CommandUUID": _PLACEHOLDER}
            self.written[large[0]] = plistlib.dumps(template)
        body = self.written[large[0]].replace(_PLACEHOLDER.encode(), str(uuid).encode())
        signature = cms.sign(
            body, self.identity.certificate, self.key, digest="sha1", detached=True
        )
        headers = {
            "Content-Type": content_type,
            "Mdm-Signature": base64.b64encode(signature).decode(),
        }
        response = await self.http.put(url, content=body, headers=headers)
        response.raise_for_status()
        return response.content


_PLACEHOLDER = "PLACEHOLDER-COMMAND-UUID"


class _Sent:
    """Bytes of the report bodies the reporters PUT (Idles and small answers left out)."""

    bytes = 0

    async def count(self, request: httpx.Request) -> None:
        if request.method == "PUT" and len(request.content) >= LARGE:
            self.bytes += len(request.content)


class _Queue:
    def __init__(self, http: httpx.AsyncClient, base: str, token: str, udids: list[str]):
        self.http, self.base, self.udids = http, base, udids
        self.headers = {"Authorization": f"Bearer {token}"}

    async def reports(self, rounds: int = ROUNDS) -> None:
        for _ in range(rounds):
            for request_type in ("InstalledApplicationList", "CertificateList"):
                body = {"request_type": request_type, "targets": self.udids}
                url = f"{self.base}/api/v1/commands"
                reply = await self.http.post(url, json=body, headers=self.headers)
                reply.raise_for_status()


def _server_cpu(pids: list[int]) -> float:
    """The CPU seconds of these processes and of all their descendants, those still running
    and those ended and waited for (cutime and cstime of the one that waited)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stat = _stat(pid)
        if stat:
            total += sum(int(field) for field in stat[11:15]) / os.sysconf("SC_CLK_TCK")
        todo += children.get(pid, [])
    return total


def _own_cpu(pids: list[int]) -> float:
    """The CPU seconds of the `serve` processes themselves, children left out."""
    serving = _serving(pids)
    return sum(sum(int(field) for field in _stat(pid)[11:13]) for pid in serving) / os.sysconf(
        "SC_CLK_TCK"
    )


def _serving(pids: list[int]) -> list[int]:
    """The `serve` processes among these (their report workers and fork server left out)."""
    return [pid for pid in pids if b"serve" in _cmdline(pid)]


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _p99(latencies: list[float]) -> float:
    return _quantile(latencies, 0.99)


def _p90(latencies: list[float]) -> float:
    return _quantile(latencies, 0.90)


def _quantile(latencies: list[float], share: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class _LoopWaits:
    """The time the `serve` process's event loop (its main thread) spent runnable but not
    running, from the kernel's schedstat: what a scheduler setting changes, apart from
    what a shared virtual machine's own pauses add to every latency."""

    def __init__(self, pids: list[int]) -> None:
        (self.pid,) = _serving(pids)
        self.last = self._waited()

    def since(self) -> float:
        """Seconds waited since the last call (or since this was made)."""
        now = self._waited()
        waited, self.last = now - self.last, now
        return waited

    def _waited(self) -> float:
        stat = Path(f"/proc/{self.pid}/task/{self.pid}/schedstat").read_text().split()
        return int(stat[1]) / 1e9


class _Idlers:
    """The Idle devices, in a child process: measure for some seconds, or from start to
    stop; each answer is the list of Idle latencies in seconds."""

    def __init__(self, profile: bytes, base: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_idler_main, args=(profile, base, child))
        self.process.start()

    def wait_ready(self) -> None:
        assert self.pipe.recv() == "ready"

    def measure(self, seconds: float) -> list[float]:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def start(self) -> None:
        self.pipe.send("start")

    def stop(self) -> list[float]:
        self.pipe.send("stop")
        latencies: list[float] = self.pipe.recv()
        return latencies

    def close(self) -> None:
        self.pipe.send("exit")
        self.process.join(10)


def _idler_main(profile: bytes, base: str, pipe: Connection) -> None:
    asyncio.run(_idle(profile, base, pipe))


async def _idle(profile: bytes, base: str, pipe: Connection) -> None:
    """Enroll the Idle devices, then replay their signed Idles (signed once: signing every
    request with httpx cost the client more CPU than the server's Idle, and the client's
    waits for a core showed as Idle latency)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    async with httpx.AsyncClient(timeout=120) as http:
        plan = retarget(read_profile(profile), base)
        keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(IDLERS)
        ]
        devices = [VirtualDevice(plan, n, keys[n], http) for n in range(IDLERS)]
        await asyncio.gather(*(d.enroll() for d in devices))
    idles = [http_request(plan.server_url, *d.signed({"Status": "Idle"})) for d in devices]
    pipe.send("ready")
    while (order := await asyncio.to_thread(pipe.recv)) == "start":
        running = [True]
        keep_going = functools.partial(operator.getitem, running, 0)
        loops = asyncio.create_task(
            replay_while(base, idles, keep_going, connections=IDLERS, every=IDLE_EVERY)
        )
        assert await asyncio.to_thread(pipe.recv) == "stop"
        running[0] = False
        done = await loops
        if set(done.statuses) != {200}:
            raise RuntimeError(f"Idles answered {done.statuses}")
        pipe.send(done.latencies)
    assert order == "exit"
