"""Replaying pre-built requests over kept-alive connections, to load a server.

The bench's client shares the machine's cores with the server; httpx plus signing each
request cost more CPU than the server's Idle. Requests signed once and replayed byte for
byte cost the client little, so the server is what runs out of CPU. The server checks no
freshness in an Mdm-Signature (neither does Apple's protocol), so a replayed Idle is an
Idle. `wrk` (Debian's; `make bench` installs it) replays them for a few microseconds of
CPU each, which leaves a second core to a second server process; without it a Python
client does, at about as much CPU per request as the server spends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def http_request(url: str, body: bytes, headers: dict[str, str], method: str = "PUT") -> bytes:
    """The bytes of one HTTP/1.1 request with a keep-alive connection."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@dataclass
class Replayed:
    seconds: float = 0.0
    count: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    statuses: dict[int, int] = field(default_factory=dict)
    fixed: tuple[float, float] | None = None  # (p50, p99) when only those are known

    def percentile(self, share: float) -> float:
        if self.fixed is not None:
            return self.fixed[0] if share <= 0.5 else self.fixed[1]
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def replay(base: str, requests: Sequence[bytes], *, total: int, connections: int) -> Replayed:
    """Send `total` requests, taken from `requests` in turn, over `connections` kept-alive
    connections, each waiting for its answer before the next request."""
    remaining = [total]

    def another() -> bool:
        remaining[0] -= 1
        return remaining[0] >= 0

    result = await replay_while(base, requests, another, connections=connections)
    result.count = total
    return result


async def replay_while(
    base: str,
    requests: Sequence[bytes],
    another: Callable[[], bool],
    *,
    connections: int,
    every: float = 0.0,
) -> Replayed:
    """As `replay`, for as long as `another()` says so before each request; with `every`,
    each connection sends one request per that many seconds (an open load: a late answer
    does not slow the next one down) instead of back to back, the connections spread
    evenly over that interval: a fleet's devices are not in step, and connections sending
    together made each wait for the ones before it (bench reports' Idle p99 alone was
    ~3 ms so, ~1 ms spread)."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    turn: Iterator[bytes] = itertools.cycle(requests)
    result = Replayed()

    async def connection(place: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        due = time.perf_counter() + every * place / connections
        try:
            while another():
                if every:
                    due += every
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                started = time.perf_counter()
                writer.write(next(turn))
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(place) for place in range(connections)))
    result.seconds = time.perf_counter() - started
    result.count = len(result.latencies)
    return result


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of an answer with a Content-Length (or none)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length) if length else b""


WRK_SCRIPT = Path(__file__).with_name("replay.lua")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def replay_with_wrk(
    base: str, requests: Sequence[Request], *, seconds: float, connections: int, threads: int = 1
) -> Replayed:
    """`wrk` sending the requests in turn for `seconds`; latencies as its p50/p99 only."""
    with tempfile.NamedTemporaryFile("w", suffix=".requests", delete=False) as listing:
        for request in requests:
            fields = [request.method, request.path]
            fields += [f"{name}: {value}".encode().hex() for name, value in request.headers.items()]
            fields.append(request.body.hex())
            listing.write("\t".join(fields) + "\n")
    try:
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command += ["-s", str(WRK_SCRIPT), base, "--", listing.name]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        os.unlink(listing.name)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    result = Replayed(seconds=summary["duration_us"] / 1e6, count=summary["requests"])
    result.fixed = (summary["p50_us"] / 1e6, summary["p99_us"] / 1e6)
    result.statuses = {200: summary["requests"] - summary["errors"]}
    if summary["errors"]:
        result.statuses[0] = summary["errors"]
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL backend processes serving connections to `database`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            found.append(int(entry.name))
    return found
